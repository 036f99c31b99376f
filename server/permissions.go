package server

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"

	"github.com/relata/relata/check"
	"github.com/relata/relata/internal/tupleproto"
	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/tuples"
)

// permissionService implements relatav1.PermissionServiceServer.
type permissionService struct {
	relatav1.UnsafePermissionServiceServer
	s *Server
}

// checkRequestFromProto converts and validates the three parts of a check.
func checkRequestFromProto(prefix string, object *relatav1.ObjectRef, permission string, subject *relatav1.SubjectRef) (check.CheckRequest, error) {
	obj, err := objectFromProto(prefix+"object", object)
	if err != nil {
		return check.CheckRequest{}, err
	}
	if err := tuples.ValidateName(prefix+"permission", permission); err != nil {
		return check.CheckRequest{}, err
	}
	sub, err := subjectFromProto(prefix+"subject", subject)
	if err != nil {
		return check.CheckRequest{}, err
	}
	return check.CheckRequest{Object: obj, Permission: permission, Subject: sub}, nil
}

// Check answers one permission question at the requested consistency.
func (h *permissionService) Check(ctx context.Context, req *relatav1.CheckRequest) (*relatav1.CheckResponse, error) {
	creq, err := checkRequestFromProto("", req.GetObject(), req.GetPermission(), req.GetSubject())
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	creq.Explain = req.GetExplain()
	creq.Context = contextFromProto(req.GetContext())
	r, err := h.s.reader(ctx, req.GetConsistency())
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	res, err := h.s.check(ctx, r, creq)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	h.s.metrics.observeCheck(res.Stats)
	return &relatav1.CheckResponse{
		Allowed:        res.Allowed,
		CheckedAt:      h.s.Zookie(r.Revision()),
		Explanation:    explanationToProto(res.Explanation),
		Conditional:    res.Conditional,
		MissingContext: res.MissingContext,
	}, nil
}

// checkBulkConcurrency bounds the items of one CheckBulk evaluated at once.
const checkBulkConcurrency = 8

// CheckBulk answers every item at one revision. A malformed item fails the whole
// request (INVALID_ARGUMENT); an item the engine refuses (unknown relation, max depth)
// gets its own error and the others are still answered.
func (h *permissionService) CheckBulk(ctx context.Context, req *relatav1.CheckBulkRequest) (*relatav1.CheckBulkResponse, error) {
	items := req.GetItems()
	if len(items) == 0 {
		return nil, toStatus(ctx, h.s.log, required("items"))
	}
	if len(items) > MaxCheckBulkItems {
		return nil, toStatus(ctx, h.s.log, &limitError{field: "items", msg: fmt.Sprintf("items: %d is more than the limit of %d", len(items), MaxCheckBulkItems)})
	}
	creqs := make([]check.CheckRequest, len(items))
	for i, it := range items {
		var err error
		if creqs[i], err = checkRequestFromProto(fmt.Sprintf("items[%d].", i), it.GetObject(), it.GetPermission(), it.GetSubject()); err != nil {
			return nil, toStatus(ctx, h.s.log, err)
		}
		creqs[i].Context = contextFromProto(it.GetContext())
	}
	r, err := h.s.reader(ctx, req.GetConsistency())
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	results := make([]*relatav1.CheckBulkResponseItem, len(items))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(checkBulkConcurrency)
	for i := range creqs {
		g.Go(func() error {
			res, err := h.s.check(gctx, r, creqs[i])
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				code, reason, _ := classify(err)
				msg := err.Error()
				if code == codes.Internal {
					h.s.log.ErrorContext(ctx, "internal error", "err", err)
					msg = "internal error"
				}
				results[i] = &relatav1.CheckBulkResponseItem{Error: &relatav1.ItemError{Code: codeName(code), Reason: reason.String(), Message: msg}}
				return nil
			}
			h.s.metrics.observeCheck(res.Stats)
			results[i] = &relatav1.CheckBulkResponseItem{Allowed: res.Allowed, Conditional: res.Conditional, MissingContext: res.MissingContext}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	return &relatav1.CheckBulkResponse{Results: results, CheckedAt: h.s.Zookie(r.Revision())}, nil
}

// codeName returns the canonical upper-case name of a gRPC code ("NOT_FOUND").
func codeName(c codes.Code) string {
	names := map[codes.Code]string{
		codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN",
		codes.InvalidArgument: "INVALID_ARGUMENT", codes.DeadlineExceeded: "DEADLINE_EXCEEDED",
		codes.NotFound: "NOT_FOUND", codes.AlreadyExists: "ALREADY_EXISTS",
		codes.PermissionDenied: "PERMISSION_DENIED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
		codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Aborted: "ABORTED",
		codes.OutOfRange: "OUT_OF_RANGE", codes.Unimplemented: "UNIMPLEMENTED",
		codes.Internal: "INTERNAL", codes.Unavailable: "UNAVAILABLE", codes.DataLoss: "DATA_LOSS",
		codes.Unauthenticated: "UNAUTHENTICATED",
	}
	if n, ok := names[c]; ok {
		return n
	}
	return c.String()
}

// Expand returns the userset tree of object#relation one level deep.
func (h *permissionService) Expand(ctx context.Context, req *relatav1.ExpandRequest) (*relatav1.ExpandResponse, error) {
	obj, err := objectFromProto("object", req.GetObject())
	if err == nil {
		err = tuples.ValidateName("relation", req.GetRelation())
	}
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	r, err := h.s.reader(ctx, req.GetConsistency())
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	tree, err := h.s.cfg.Engine.Expand(ctx, r, check.ExpandRequest{Object: obj, Relation: req.GetRelation()})
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	return &relatav1.ExpandResponse{Tree: expandTreeToProto(tree), ExpandedAt: h.s.Zookie(r.Revision())}, nil
}

// LookupResources streams the objects of resource_type on which the subject has the
// permission, in id order; each response's cursor resumes after it at the same revision.
func (h *permissionService) LookupResources(req *relatav1.LookupResourcesRequest, stream relatav1.PermissionService_LookupResourcesServer) error {
	ctx := stream.Context()
	return toStatus(ctx, h.s.log, h.lookupResources(ctx, req, stream.Send))
}

func (h *permissionService) lookupResources(ctx context.Context, req *relatav1.LookupResourcesRequest, send func(*relatav1.LookupResourcesResponse) error) error {
	if err := tuples.ValidateName("resource_type", req.GetResourceType()); err != nil {
		return err
	}
	if err := tuples.ValidateName("permission", req.GetPermission()); err != nil {
		return err
	}
	sub, err := subjectFromProto("subject", req.GetSubject())
	if err != nil {
		return err
	}
	query := queryKey("LookupResources", req.GetResourceType(), req.GetPermission(), sub.String())
	r, after, err := h.s.streamReader(ctx, req.GetConsistency(), req.GetCursor(), query)
	if err != nil {
		return err
	}
	rev := r.Revision()
	zookie := h.s.Zookie(rev)
	lreq := check.LookupResourcesRequest{
		ResourceType: req.GetResourceType(), Permission: req.GetPermission(), Subject: sub,
		Cursor: after, Limit: int(req.GetLimit()), Context: contextFromProto(req.GetContext()),
	}
	if req.GetBatchResults() {
		// Only a message's last result needs a cursor: the engine makes none, the
		// batcher makes the one it sends from the last result's id.
		lreq.OmitCursors = true
		b := newBatcher(h.s, func(last string) string { return encodeCursor(rev, query, check.ResourceCursor(last)) }, func(results []*relatav1.LookupResourcesResult, cursor string) error {
			return send(&relatav1.LookupResourcesResponse{LookedUpAt: zookie, Cursor: cursor, Results: results})
		})
		var slab resultSlab
		return b.close(h.s.cfg.Engine.LookupResources(ctx, r, lreq, func(res check.LookupResourcesResult) error {
			out, obj := slab.next()
			obj.Type, obj.Id = res.Object.Type, res.Object.ID
			out.Object, out.Conditional, out.MissingContext = obj, res.Conditional, res.MissingContext
			return b.addSized(out, resultSize(out), res.Object.ID)
		}))
	}
	return h.s.cfg.Engine.LookupResources(ctx, r, lreq, func(res check.LookupResourcesResult) error {
		return send(&relatav1.LookupResourcesResponse{Object: tupleproto.Object(res.Object), LookedUpAt: zookie, Cursor: encodeCursor(rev, query, res.Cursor),
			Conditional: res.Conditional, MissingContext: res.MissingContext})
	})
}

// LookupSubjects streams the subjects of subject_type that have the permission on the
// object: a granted wildcard first (with its exclusions), then the others in id order.
func (h *permissionService) LookupSubjects(req *relatav1.LookupSubjectsRequest, stream relatav1.PermissionService_LookupSubjectsServer) error {
	ctx := stream.Context()
	return toStatus(ctx, h.s.log, h.lookupSubjects(ctx, req, stream.Send))
}

func (h *permissionService) lookupSubjects(ctx context.Context, req *relatav1.LookupSubjectsRequest, send func(*relatav1.LookupSubjectsResponse) error) error {
	obj, err := objectFromProto("object", req.GetObject())
	if err != nil {
		return err
	}
	if err := tuples.ValidateName("permission", req.GetPermission()); err != nil {
		return err
	}
	if err := tuples.ValidateName("subject_type", req.GetSubjectType()); err != nil {
		return err
	}
	if rel := req.GetSubjectRelation(); rel != "" && rel != tuples.Ellipsis {
		if err := tuples.ValidateName("subject_relation", rel); err != nil {
			return err
		}
	}
	subjectRelation := req.GetSubjectRelation()
	if subjectRelation == tuples.Ellipsis {
		subjectRelation = ""
	}
	query := queryKey("LookupSubjects", obj.String(), req.GetPermission(), req.GetSubjectType(), subjectRelation)
	r, after, err := h.s.streamReader(ctx, req.GetConsistency(), req.GetCursor(), query)
	if err != nil {
		return err
	}
	rev := r.Revision()
	zookie := h.s.Zookie(rev)
	lreq := check.LookupSubjectsRequest{
		Object: obj, Permission: req.GetPermission(), SubjectType: req.GetSubjectType(),
		SubjectRelation: subjectRelation, Cursor: after, Limit: int(req.GetLimit()),
		Context: contextFromProto(req.GetContext()),
	}
	if req.GetBatchResults() {
		b := newBatcher(h.s, func(last string) string { return encodeCursor(rev, query, last) }, func(results []*relatav1.LookupSubjectsResult, cursor string) error {
			return send(&relatav1.LookupSubjectsResponse{LookedUpAt: zookie, Cursor: cursor, Results: results})
		})
		return b.close(h.s.cfg.Engine.LookupSubjects(ctx, r, lreq, func(res check.LookupSubjectsResult) error {
			out := &relatav1.LookupSubjectsResult{Subject: tupleproto.Subject(res.Subject),
				Conditional: res.Conditional, MissingContext: res.MissingContext}
			for _, e := range res.Excluded {
				out.Excluded = append(out.Excluded, tupleproto.Subject(e))
			}
			return b.add(out, res.Cursor)
		}))
	}
	return h.s.cfg.Engine.LookupSubjects(ctx, r, lreq, func(res check.LookupSubjectsResult) error {
		out := &relatav1.LookupSubjectsResponse{Subject: tupleproto.Subject(res.Subject), LookedUpAt: zookie, Cursor: encodeCursor(rev, query, res.Cursor),
			Conditional: res.Conditional, MissingContext: res.MissingContext}
		for _, e := range res.Excluded {
			out.Excluded = append(out.Excluded, tupleproto.Subject(e))
		}
		return send(out)
	})
}

// resultSlab allocates batched lookup results and their objects many at a time: a
// lookup sends thousands, and two allocations a result showed in its profile.
type resultSlab struct {
	results []relatav1.LookupResourcesResult
	objects []relatav1.ObjectRef
}

const resultSlabSize = 128

func (s *resultSlab) next() (*relatav1.LookupResourcesResult, *relatav1.ObjectRef) {
	if len(s.results) == cap(s.results) {
		s.results = make([]relatav1.LookupResourcesResult, 0, resultSlabSize)
		s.objects = make([]relatav1.ObjectRef, 0, resultSlabSize)
	}
	s.results, s.objects = s.results[:len(s.results)+1], s.objects[:len(s.objects)+1]
	return &s.results[len(s.results)-1], &s.objects[len(s.objects)-1]
}
