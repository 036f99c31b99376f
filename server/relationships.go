package server

import (
	"context"
	"errors"
	"fmt"
	"math"

	"google.golang.org/grpc/codes"

	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/tuples"
)

// relationshipService implements relatav1.RelationshipServiceServer.
type relationshipService struct {
	relatav1.UnsafeRelationshipServiceServer
	s *Server
}

// Write validates every update against the schema at the head and writes them
// atomically; see (*Server).write.
func (h *relationshipService) Write(ctx context.Context, req *relatav1.WriteRequest) (*relatav1.WriteResponse, error) {
	wr, err := writeRequestFromProto(req)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	rev, err := h.s.write(ctx, wr)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	return &relatav1.WriteResponse{WrittenAt: tuples.EncodeZookie(rev)}, nil
}

func writeRequestFromProto(req *relatav1.WriteRequest) (tuples.WriteRequest, error) {
	if n := len(req.GetUpdates()); n == 0 {
		return tuples.WriteRequest{}, required("updates")
	} else if n > MaxUpdatesPerWrite {
		return tuples.WriteRequest{}, &limitError{field: "updates", msg: fmt.Sprintf("updates: %d is more than the limit of %d a write", n, MaxUpdatesPerWrite)}
	}
	wr := tuples.WriteRequest{Updates: make([]tuples.Update, 0, len(req.GetUpdates()))}
	for i, u := range req.GetUpdates() {
		field := fmt.Sprintf("updates[%d]", i)
		op, err := operationFromProto(field+".operation", u.GetOperation())
		if err != nil {
			return tuples.WriteRequest{}, err
		}
		t, err := tupleFromProto(field+".tuple.", u.GetTuple())
		if err != nil {
			return tuples.WriteRequest{}, err
		}
		wr.Updates = append(wr.Updates, tuples.Update{Op: op, Tuple: t})
	}
	var err error
	if wr.Preconditions, err = preconditionsFromProto(req.GetPreconditions()); err != nil {
		return tuples.WriteRequest{}, err
	}
	return wr, nil
}

// write reads the schema at the head, validates every created or touched tuple
// against it, and writes with SchemaRevision set so that a concurrent schema change
// makes the store refuse the write; then it retries.
func (s *Server) write(ctx context.Context, wr tuples.WriteRequest) (tuples.Revision, error) {
	for range maxWriteSchemaRetry {
		sch, schemaRev, err := s.headSchema(ctx)
		if err != nil {
			return 0, err
		}
		for i, u := range wr.Updates {
			if u.Op == tuples.OpDelete {
				continue
			}
			if err := sch.ValidateTuple(u.Tuple); err != nil {
				return 0, fmt.Errorf("updates[%d].tuple: %w", i, err)
			}
		}
		wr.SchemaRevision = schemaRev
		rev, err := s.cfg.Store.Write(ctx, wr)
		if errors.Is(err, tuples.ErrSchemaChanged) {
			continue
		}
		if err == nil {
			s.revs.observe(rev)
		}
		return rev, err
	}
	return 0, fmt.Errorf("server: write raced schema writes %d times: %w", maxWriteSchemaRetry, tuples.ErrSchemaChanged)
}

// Read streams the tuples matching the filter in canonical order; each response
// carries a cursor that resumes after it at the same revision.
func (h *relationshipService) Read(req *relatav1.ReadRequest, stream relatav1.RelationshipService_ReadServer) error {
	ctx := stream.Context()
	err := h.read(ctx, req, stream.Send)
	return toStatus(ctx, h.s.log, err)
}

func (h *relationshipService) read(ctx context.Context, req *relatav1.ReadRequest, send func(*relatav1.ReadResponse) error) error {
	f, err := filterFromProto("filter", req.GetFilter())
	if err != nil {
		return err
	}
	r, last, err := h.s.streamReader(ctx, req.GetConsistency(), req.GetCursor())
	if err != nil {
		return err
	}
	if err := h.s.checkFilterNames(ctx, r, "filter", f); err != nil {
		return err
	}
	var after *tuples.Tuple
	if last != "" {
		t, err := tuples.ParseTuple(last)
		if err != nil {
			return errorf(codes.InvalidArgument, ReasonInvalidCursor, "server: invalid cursor: bad position", map[string]string{"field": "cursor"})
		}
		after = &t
	}
	rev := r.Revision()
	zookie := tuples.EncodeZookie(rev)
	limit, n := int(req.GetLimit()), 0
	for t, err := range r.Read(ctx, f, after) {
		if err != nil {
			return err
		}
		if err := send(&relatav1.ReadResponse{Tuple: tupleToProto(t), ReadAt: zookie, Cursor: encodeCursor(rev, t.String())}); err != nil {
			return err
		}
		if n++; limit > 0 && n >= limit {
			break
		}
	}
	return nil
}

// Delete deletes every tuple matching the filter, which must name an object type.
func (h *relationshipService) Delete(ctx context.Context, req *relatav1.DeleteRequest) (*relatav1.DeleteResponse, error) {
	f, err := filterFromProto("filter", req.GetFilter())
	if err == nil && f.ObjectType == "" {
		err = &tuples.ValidationError{Field: "filter.object_type", Value: "", Reason: "required: a delete must name an object type"}
	}
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	preconds, err := preconditionsFromProto(req.GetPreconditions())
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	if err := h.s.checkFilterNamesAtHead(ctx, f); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	rev, n, err := h.s.cfg.Store.DeleteMatching(ctx, f, preconds)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	h.s.revs.observe(rev)
	return &relatav1.DeleteResponse{DeletedAt: tuples.EncodeZookie(rev), Deleted: uint32(min(n, math.MaxUint32))}, nil
}

// checkFilterNames refuses a filter naming a type or relation the schema at r does
// not define (NOT_FOUND), so that a typo is an error rather than an empty answer. A
// store without a schema has no tuples to match and passes.
func (s *Server) checkFilterNames(ctx context.Context, r tuples.Reader, field string, f tuples.Filter) error {
	sch, _, err := s.schemas.get(ctx, r)
	if errors.Is(err, tuples.ErrNoSchema) {
		return nil
	}
	if err != nil {
		return err
	}
	if f.ObjectType != "" {
		if f.Relation != "" {
			if _, err := sch.Relation(f.ObjectType, f.Relation); err != nil {
				return fmt.Errorf("%s: %w", field, err)
			}
		} else if _, err := sch.Definition(f.ObjectType); err != nil {
			return fmt.Errorf("%s.object_type: %w", field, err)
		}
	}
	if f.SubjectType != "" {
		if _, err := sch.Definition(f.SubjectType); err != nil {
			return fmt.Errorf("%s.subject.type: %w", field, err)
		}
		if rel := f.SubjectRelation; rel != "" && rel != tuples.Ellipsis {
			if _, err := sch.Relation(f.SubjectType, rel); err != nil {
				return fmt.Errorf("%s.subject.relation: %w", field, err)
			}
		}
	}
	return nil
}

// checkFilterNamesAtHead is checkFilterNames against the schema at the head.
func (s *Server) checkFilterNamesAtHead(ctx context.Context, f tuples.Filter) error {
	r, err := s.headReader(ctx)
	if err != nil {
		return err
	}
	return s.checkFilterNames(ctx, r, "filter", f)
}
