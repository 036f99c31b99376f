package server

// Bulk RPCs: Import (client stream), Export and Watch (server streams).
//
// Import hands the stream's batches to the write path (writes.Writer.Import), which
// validates and commits them; this file converts the tuples and maps the error.
//
// Errors name the tuple by its index in the whole stream (`tuples[N]…`) and carry, in
// the ErrorInfo metadata, "index" (that N) and "imported" (how many tuples of this
// stream were committed before the failure), so a client can point at the input line
// and say how far the import got.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/relata/relata/internal/tupleproto"
	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/server/writes"
	"github.com/relata/relata/tuples"
)

// Bulk limits.
const (
	// exportBatch is the number of tuples in one ExportResponse.
	exportBatch = 2000
	// watchBatch is the number of changes after which a WatchResponse is sent at the
	// next revision boundary; maxWatchBatch splits a single huge revision.
	watchBatch    = 1000
	maxWatchBatch = 10000
	// watchPoll is how often Watch polls a store that cannot signal new revisions.
	watchPoll = 100 * time.Millisecond
)

// Metadata keys of an Import error's ErrorInfo.
const (
	// ImportIndexKey is the index, in the whole stream, of the tuple that failed.
	ImportIndexKey = "index"
	// ImportImportedKey is how many tuples of the stream were committed before the error.
	ImportImportedKey = "imported"
)

// Import writes a stream of tuple batches with TOUCH semantics through the write path.
func (h *relationshipService) Import(stream relatav1.RelationshipService_ImportServer) error {
	ctx := stream.Context()
	var n uint64 // tuples received so far: the stream index of the next one
	next := func() ([]tuples.Tuple, error) {
		req, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		ts := make([]tuples.Tuple, len(req.GetTuples()))
		for i, t := range req.GetTuples() {
			if ts[i], err = importTupleFromProto(t); err != nil {
				return nil, writes.TupleError(n+uint64(i), err)
			}
		}
		n += uint64(len(ts))
		return ts, nil
	}
	imported, rev, err := h.s.writes.Import(ctx, next)
	if err != nil {
		return h.s.importStatus(ctx, err, imported)
	}
	if rev == 0 {
		if rev, err = h.s.cfg.Store.HeadRevision(ctx); err != nil {
			return h.s.importStatus(ctx, err, imported)
		}
	}
	return stream.SendAndClose(&relatav1.ImportResponse{Imported: imported, WrittenAt: h.s.Zookie(rev)})
}

// importStatus converts an import failure to a status carrying the index of the bad
// tuple and the number of tuples committed before it.
func (s *Server) importStatus(ctx context.Context, err error, imported uint64) error {
	index := int64(-1)
	var ie *writes.ImportError
	if errors.As(err, &ie) {
		index, imported, err = ie.Index, ie.Imported, ie.Err
	}
	code, reason, md := classify(err)
	msg := err.Error()
	if code == codes.Internal {
		s.log.ErrorContext(ctx, "import: internal error", "err", err)
		msg = "internal error"
	}
	if md == nil {
		md = map[string]string{}
	}
	md[ImportImportedKey] = strconv.FormatUint(imported, 10)
	if index >= 0 {
		md[ImportIndexKey] = strconv.FormatInt(index, 10)
	}
	return newStatus(code, reason, msg, md)
}

// importTupleFromProto converts and validates a tuple without building field names
// unless it fails (the import hot path).
func importTupleFromProto(t *relatav1.Tuple) (tuples.Tuple, error) {
	if t.GetObject() == nil || t.GetSubject().GetObject() == nil {
		return tupleFromProto("", t) // names the missing field
	}
	out := tuples.Tuple{
		Object:   tuples.ObjectRef{Type: t.Object.Type, ID: t.Object.Id},
		Relation: t.Relation,
		Subject: tuples.SubjectRef{
			Object:   tuples.ObjectRef{Type: t.Subject.Object.Type, ID: t.Subject.Object.Id},
			Relation: t.Subject.Relation,
		},
	}
	if out.Subject.Relation == tuples.Ellipsis {
		out.Subject.Relation = ""
	}
	return out, out.Validate()
}

// Export streams every tuple live at one revision (the head unless `at` names one),
// optionally only those matching a filter, exportBatch tuples a response in canonical
// order. Each response's cursor resumes after it at the same revision with the same
// filter; an empty export sends one response without tuples, so the client learns
// the revision.
func (h *relationshipService) Export(req *relatav1.ExportRequest, stream relatav1.RelationshipService_ExportServer) error {
	ctx := stream.Context()
	return toStatus(ctx, h.s.log, h.s.export(ctx, req, stream.Send))
}

func (s *Server) export(ctx context.Context, req *relatav1.ExportRequest, send func(*relatav1.ExportResponse) error) error {
	f, err := filterFromProto("filter", req.GetFilter())
	if err != nil {
		return err
	}
	var (
		rev   tuples.Revision
		after *tuples.Tuple
	)
	switch {
	case req.GetCursor() != "":
		var last tuples.Tuple
		var cf tuples.Filter
		if rev, last, cf, err = decodeExportCursor(req.GetCursor()); err != nil {
			return err
		}
		if req.GetFilter() != nil && cf != f {
			return &tuples.ValidationError{Field: "filter", Value: fmt.Sprint(req.GetFilter()), Reason: "differs from the filter of the export the cursor comes from"}
		}
		f, after = cf, &last
	case req.GetAt() != "":
		if rev, err = s.decodeZookie("at", req.GetAt()); err != nil {
			return err
		}
	default:
		if rev, err = s.cfg.Store.HeadRevision(ctx); err != nil {
			return err
		}
	}
	r, err := s.cfg.Store.ReaderAt(ctx, rev)
	if err != nil {
		return err
	}
	if err := s.writes.CheckFilterNames(ctx, r, "filter", f); err != nil {
		return err // an unknown type or relation is NOT_FOUND, not an empty export
	}
	zookie := s.Zookie(rev)
	resp := newExportResponse(zookie)
	sent := false
	for t, err := range r.Read(ctx, f, after) {
		if err != nil {
			return err
		}
		resp.add(t)
		if len(resp.msg.Tuples) == exportBatch {
			if err := resp.send(send, rev, f, t); err != nil {
				return err
			}
			resp, sent = newExportResponse(zookie), true
		}
	}
	if n := len(resp.msg.Tuples); n > 0 || !sent {
		last := tuples.Tuple{}
		if n > 0 {
			last = resp.last
		} else if after != nil {
			last = *after
		}
		return resp.send(send, rev, f, last)
	}
	return nil
}

// exportResponse builds one ExportResponse, allocating its messages in slabs.
type exportResponse struct {
	msg   *relatav1.ExportResponse
	tups  []relatav1.Tuple
	objs  []relatav1.ObjectRef
	subs  []relatav1.SubjectRef
	last  tuples.Tuple
	count int
}

func newExportResponse(zookie string) *exportResponse {
	return &exportResponse{
		msg:  &relatav1.ExportResponse{ExportedAt: zookie, Tuples: make([]*relatav1.Tuple, 0, exportBatch)},
		tups: make([]relatav1.Tuple, exportBatch),
		objs: make([]relatav1.ObjectRef, 2*exportBatch),
		subs: make([]relatav1.SubjectRef, exportBatch),
	}
}

func (e *exportResponse) add(t tuples.Tuple) {
	i := e.count
	e.count++
	obj, sobj, sub, pt := &e.objs[2*i], &e.objs[2*i+1], &e.subs[i], &e.tups[i]
	obj.Type, obj.Id = t.Object.Type, t.Object.ID
	sobj.Type, sobj.Id = t.Subject.Object.Type, t.Subject.Object.ID
	sub.Object, sub.Relation = sobj, t.Subject.Relation
	pt.Object, pt.Relation, pt.Subject = obj, t.Relation, sub
	e.msg.Tuples = append(e.msg.Tuples, pt)
	e.last = t
}

func (e *exportResponse) send(send func(*relatav1.ExportResponse) error, rev tuples.Revision, f tuples.Filter, last tuples.Tuple) error {
	if last != (tuples.Tuple{}) {
		e.msg.Cursor = encodeExportCursor(rev, last, f)
	}
	return send(e.msg)
}

// An export cursor is a read cursor (consistency.go) whose last item is the last
// tuple sent followed by the six filter fields, space-separated (names and ids never
// contain spaces).
// exportQuery is the QUERY of export cursors, which carry their filter whole.
var exportQuery = queryKey("Export")

func encodeExportCursor(rev tuples.Revision, last tuples.Tuple, f tuples.Filter) string {
	return encodeCursor(rev, exportQuery, strings.Join([]string{last.String(),
		f.ObjectType, f.ObjectID, f.Relation, f.SubjectType, f.SubjectID, f.SubjectRelation}, " "))
}

func decodeExportCursor(c string) (tuples.Revision, tuples.Tuple, tuples.Filter, error) {
	rev, rest, err := decodeCursor(c, exportQuery)
	if err != nil {
		return 0, tuples.Tuple{}, tuples.Filter{}, err
	}
	bad := errorf(codes.InvalidArgument, relatav1.ErrorReason_INVALID_CURSOR, "invalid cursor: not an export cursor", map[string]string{"field": "cursor"})
	parts := strings.Split(rest, " ")
	if len(parts) != 7 {
		return 0, tuples.Tuple{}, tuples.Filter{}, bad
	}
	last, err := tuples.ParseTuple(parts[0])
	if err != nil {
		return 0, tuples.Tuple{}, tuples.Filter{}, bad
	}
	f := tuples.Filter{ObjectType: parts[1], ObjectID: parts[2], Relation: parts[3], SubjectType: parts[4], SubjectID: parts[5], SubjectRelation: parts[6]}
	if f.Validate() != nil {
		return 0, tuples.Tuple{}, tuples.Filter{}, bad
	}
	return rev, last, f, nil
}

// Watch streams the change log after `from` (the head when empty) in commit order,
// then follows new commits until the client goes away or the server shuts down
// (UNAVAILABLE: reconnect with the last changes_through). The first response carries
// no changes and changes_through = from. A revision's changes are sent together
// unless there are more than maxWatchBatch; changes_through only ever names a
// revision whose changes have all been sent.
func (h *relationshipService) Watch(req *relatav1.WatchRequest, stream relatav1.RelationshipService_WatchServer) error {
	ctx := stream.Context()
	return toStatus(ctx, h.s.log, h.s.watch(ctx, req, stream.Send))
}

func (s *Server) watch(ctx context.Context, req *relatav1.WatchRequest, send func(*relatav1.WatchResponse) error) error {
	types := map[string]bool{}
	for i, typ := range req.GetObjectTypes() {
		if err := tuples.ValidateName("object_types["+strconv.Itoa(i)+"]", typ); err != nil {
			return err
		}
		types[typ] = true
	}
	var (
		after tuples.Revision
		err   error
	)
	if req.GetFrom() != "" {
		if after, err = s.decodeZookie("from", req.GetFrom()); err != nil {
			return err
		}
		if _, err := s.cfg.Store.ReaderAt(ctx, after); err != nil {
			return err // expired (FAILED_PRECONDITION) or in the future
		}
	} else if after, err = s.cfg.Store.HeadRevision(ctx); err != nil {
		return err
	}
	for i, typ := range req.GetObjectTypes() {
		// An unknown type is NOT_FOUND, not a silent, empty watch.
		if err := s.checkFilterNamesAtHead(ctx, tuples.Filter{ObjectType: typ}); err != nil {
			return fmt.Errorf("object_types[%d]: %w", i, err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	shutdown := func(err error) error {
		select {
		case <-s.stopping:
			return errorf(codes.Unavailable, relatav1.ErrorReason_UNAVAILABLE, "shutting down; resume the watch from the last changes_through", nil)
		default:
			return err
		}
	}
	if req.GetFrom() == "" {
		// Without `from` the caller does not know where the watch starts: say so at once,
		// so that it can resume from there. With `from`, the first message carries changes.
		if err := send(&relatav1.WatchResponse{ChangesThrough: s.Zookie(after)}); err != nil {
			return err
		}
	}
	for {
		head, err := s.cfg.Store.HeadRevision(ctx)
		if err != nil {
			return shutdown(err)
		}
		if head > after {
			if after, err = s.sendChanges(ctx, after, head, types, send); err != nil {
				return shutdown(err)
			}
		}
		if err := s.waitForRevision(ctx, after); err != nil {
			return shutdown(err)
		}
	}
}

// sendChanges sends the changes after `after` and returns the revision through which
// everything has been sent: at least head, which the caller read before.
func (s *Server) sendChanges(ctx context.Context, after, head tuples.Revision, types map[string]bool, send func(*relatav1.WatchResponse) error) (tuples.Revision, error) {
	resp := &relatav1.WatchResponse{}
	var (
		cur    tuples.Revision // revision of the last change read
		zookie string
	)
	flush := func(through tuples.Revision) error {
		resp.ChangesThrough = s.Zookie(through)
		err := send(resp)
		resp = &relatav1.WatchResponse{}
		return err
	}
	for c, err := range s.cfg.Store.Changes(ctx, after) {
		if err != nil {
			return 0, err
		}
		if c.Revision != cur {
			if len(resp.Changes) >= watchBatch {
				if err := flush(cur); err != nil {
					return 0, err
				}
			}
			cur, zookie = c.Revision, s.Zookie(c.Revision)
		} else if len(resp.Changes) >= maxWatchBatch {
			if err := flush(cur - 1); err != nil {
				return 0, err
			}
		}
		if len(types) > 0 && !types[c.Tuple.Object.Type] {
			continue
		}
		resp.Changes = append(resp.Changes, &relatav1.TupleChange{
			Operation: operationToProto(c.Op), Tuple: tupleproto.Tuple(c.Tuple), Revision: zookie,
		})
	}
	through := max(cur, head)
	return through, flush(through)
}

// waitForRevision blocks until the head passes after.
func (s *Server) waitForRevision(ctx context.Context, after tuples.Revision) error {
	if w, ok := s.cfg.Store.(tuples.RevisionWaiter); ok {
		_, err := w.WaitForRevision(ctx, after)
		return err
	}
	t := time.NewTicker(watchPoll)
	defer t.Stop()
	for {
		head, err := s.cfg.Store.HeadRevision(ctx)
		if err != nil || head > after {
			return err
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
