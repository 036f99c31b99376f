package server

import (
	"context"
	"fmt"
	"math"

	"github.com/relata/relata/internal/tupleproto"
	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/server/writes"
	"github.com/relata/relata/tuples"
)

// relationshipService implements relatav1.RelationshipServiceServer.
type relationshipService struct {
	relatav1.UnsafeRelationshipServiceServer
	s *Server
}

// Write validates every update against the schema at the head and writes them
// atomically; see writes.Writer.Write.
func (h *relationshipService) Write(ctx context.Context, req *relatav1.WriteRequest) (*relatav1.WriteResponse, error) {
	wr, err := writeRequestFromProto(req)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	rev, err := h.s.writes.Write(ctx, wr)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	return &relatav1.WriteResponse{WrittenAt: h.s.Zookie(rev)}, nil
}

func writeRequestFromProto(req *relatav1.WriteRequest) (tuples.WriteRequest, error) {
	if n := len(req.GetUpdates()); n == 0 {
		return tuples.WriteRequest{}, required("updates")
	} else if n > tuples.MaxUpdatesPerWrite {
		return tuples.WriteRequest{}, &writes.LimitError{Field: "updates", Msg: fmt.Sprintf("updates: %d is more than the limit of %d a write", n, tuples.MaxUpdatesPerWrite)}
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
	query := queryKey("Read", f.ObjectType, f.ObjectID, f.Relation, f.SubjectType, f.SubjectID, f.SubjectRelation)
	r, last, err := h.s.streamReader(ctx, req.GetConsistency(), req.GetCursor(), query)
	if err != nil {
		return err
	}
	if err := h.s.writes.CheckFilterNames(ctx, r, "filter", f); err != nil {
		return err
	}
	var after *tuples.Tuple
	if last != "" {
		t, err := tuples.ParseTuple(last)
		if err != nil {
			return invalidCursor("bad position")
		}
		after = &t
	}
	rev := r.Revision()
	zookie := h.s.Zookie(rev)
	limit, n := int(req.GetLimit()), 0
	emit := func(t tuples.Tuple) error {
		return send(&relatav1.ReadResponse{Tuple: tupleproto.Tuple(t), ReadAt: zookie, Cursor: encodeCursor(rev, query, t.String())})
	}
	var b *batcher[*relatav1.ReadResult]
	if req.GetBatchResults() {
		b = newBatcher(h.s, func(last string) string { return encodeCursor(rev, query, last) }, func(results []*relatav1.ReadResult, cursor string) error {
			return send(&relatav1.ReadResponse{ReadAt: zookie, Cursor: cursor, Results: results})
		})
		emit = func(t tuples.Tuple) error {
			return b.add(&relatav1.ReadResult{Tuple: tupleproto.Tuple(t)}, t.String())
		}
	}
	err = func() error {
		for t, err := range r.Read(ctx, f, after) {
			if err != nil {
				return err
			}
			if err := emit(t); err != nil {
				return err
			}
			if n++; limit > 0 && n >= limit {
				break
			}
		}
		return nil
	}()
	if b != nil {
		return b.close(err)
	}
	return err
}

// Delete deletes every tuple matching the filter, which must name an object type.
func (h *relationshipService) Delete(ctx context.Context, req *relatav1.DeleteRequest) (*relatav1.DeleteResponse, error) {
	f, err := filterFromProto("filter", req.GetFilter())
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	preconds, err := preconditionsFromProto(req.GetPreconditions())
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	rev, n, err := h.s.writes.Delete(ctx, f, preconds)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	return &relatav1.DeleteResponse{DeletedAt: h.s.Zookie(rev), Deleted: uint32(min(n, math.MaxUint32))}, nil
}

// checkFilterNamesAtHead refuses a filter naming a type or relation the schema at
// the head does not define (see writes.Writer.CheckFilterNames).
func (s *Server) checkFilterNamesAtHead(ctx context.Context, f tuples.Filter) error {
	head, err := s.cfg.Store.HeadRevision(ctx)
	if err != nil {
		return err
	}
	r, err := s.cfg.Store.ReaderAt(ctx, head)
	if err != nil {
		return err
	}
	return s.writes.CheckFilterNames(ctx, r, "filter", f)
}
