package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/relata/relata/internal/tupleproto"
	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

// schemaService implements relatav1.SchemaServiceServer.
type schemaService struct {
	relatav1.UnsafeSchemaServiceServer
	s *Server
}

// WriteSchema compiles the schema, refuses it when the store has tuples it would
// orphan (FAILED_PRECONDITION naming one), and stores it at a new revision. The
// schema already in force (the same text) writes nothing and answers the head
// revision.
func (h *schemaService) WriteSchema(ctx context.Context, req *relatav1.WriteSchemaRequest) (*relatav1.WriteSchemaResponse, error) {
	rev, err := h.s.writes.WriteSchema(ctx, schemaSource, []byte(req.GetSchema()))
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	return &relatav1.WriteSchemaResponse{WrittenAt: h.s.Zookie(rev)}, nil
}

// ReadSchema returns the schema text at the requested consistency, or the schema in
// force at the revision of req.at (from the store's schema history, so also past the
// GC window).
func (h *schemaService) ReadSchema(ctx context.Context, req *relatav1.ReadSchemaRequest) (*relatav1.ReadSchemaResponse, error) {
	if req.GetAt() != "" {
		if req.GetConsistency() != nil {
			return nil, toStatus(ctx, h.s.log, &tuples.ValidationError{Field: "at", Value: req.GetAt(), Reason: "cannot be combined with consistency: at names the revision"})
		}
		at, err := h.s.decodeZookie("at", req.GetAt())
		if err != nil {
			return nil, toStatus(ctx, h.s.log, err)
		}
		for v, err := range h.s.cfg.Store.SchemaHistory(ctx, at) {
			if err != nil {
				return nil, toStatus(ctx, h.s.log, err)
			}
			return &relatav1.ReadSchemaResponse{Schema: string(v.Text), ReadAt: h.s.Zookie(at)}, nil
		}
		return nil, toStatus(ctx, h.s.log, fmt.Errorf("no schema at revision %d: %w", at, tuples.ErrNoSchema))
	}
	r, err := h.s.reader(ctx, req.GetConsistency())
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	text, _, err := r.Schema(ctx)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	return &relatav1.ReadSchemaResponse{Schema: string(text), ReadAt: h.s.Zookie(r.Revision())}, nil
}

// WriteSchema compiles text and stores it as the schema through the write path,
// exactly as the WriteSchema RPC does (refusing a change that would orphan tuples),
// and returns the new revision. Error positions name source (`bad.zed:2:35: …`).
// `relata serve` uses it to load --schema, --model or the default model at start.
func (s *Server) WriteSchema(ctx context.Context, source string, text []byte) (tuples.Revision, error) {
	return s.writes.WriteSchema(ctx, source, text)
}

// DiffSchema compiles the schema and compares it with the one in force, counting the
// stored tuples each removal would orphan; it writes nothing. A schema with errors
// fails as WriteSchema does (INVALID_ARGUMENT with positions); one that would orphan
// tuples is an answer with refused set, not an error.
func (h *schemaService) DiffSchema(ctx context.Context, req *relatav1.DiffSchemaRequest) (*relatav1.DiffSchemaResponse, error) {
	d, err := h.s.writes.DiffSchema(ctx, schemaSource, []byte(req.GetSchema()))
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	resp := &relatav1.DiffSchemaResponse{Unchanged: d.Unchanged, DiffedAt: h.s.Zookie(d.Revision)}
	if d.Refusal != nil {
		resp.Refused, resp.Refusal, resp.OrphanedTuples = true, d.Refusal.Error(), d.Refusal.Total()
	}
	for _, c := range d.Changes {
		pc := &relatav1.SchemaChange{Kind: c.Kind.String(), Definition: c.Definition, Name: c.Name, Description: c.Detail, OrphanedTuples: c.Orphaned}
		if c.Example != nil {
			pc.OrphanExample = tupleproto.Tuple(*c.Example)
		}
		switch c.Op {
		case schema.Added:
			resp.Added = append(resp.Added, pc)
		case schema.Removed:
			resp.Removed = append(resp.Removed, pc)
		default:
			resp.Changed = append(resp.Changed, pc)
		}
	}
	return resp, nil
}

// ListSchemaRevisions lists the schema writes at or before the head, newest first.
func (h *schemaService) ListSchemaRevisions(ctx context.Context, req *relatav1.ListSchemaRevisionsRequest) (*relatav1.ListSchemaRevisionsResponse, error) {
	head, err := h.s.cfg.Store.HeadRevision(ctx)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	resp := &relatav1.ListSchemaRevisionsResponse{ReadAt: h.s.Zookie(head)}
	for v, err := range h.s.cfg.Store.SchemaHistory(ctx, head) {
		if err != nil {
			return nil, toStatus(ctx, h.s.log, err)
		}
		sum := sha256.Sum256(v.Text)
		rev := &relatav1.SchemaRevision{
			WrittenAt: h.s.Zookie(v.Revision),
			Revision:  uint64(v.Revision),
			Digest:    hex.EncodeToString(sum[:]),
			Size:      uint32(len(v.Text)),
		}
		if sch, err := schema.Compile(schemaSource, v.Text); err == nil {
			rev.Definitions, rev.Caveats = uint32(len(sch.Definitions)), uint32(len(sch.Caveats))
		}
		resp.Revisions = append(resp.Revisions, rev)
		if l := req.GetLimit(); l > 0 && len(resp.Revisions) >= int(l) {
			break
		}
	}
	return resp, nil
}
