package server

import (
	"context"

	relatav1 "github.com/relata/relata/proto/relata/v1"
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
	return &relatav1.WriteSchemaResponse{WrittenAt: tuples.EncodeZookie(rev)}, nil
}

// ReadSchema returns the schema text at the requested consistency.
func (h *schemaService) ReadSchema(ctx context.Context, req *relatav1.ReadSchemaRequest) (*relatav1.ReadSchemaResponse, error) {
	r, err := h.s.reader(ctx, req.GetConsistency())
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	text, _, err := r.Schema(ctx)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	return &relatav1.ReadSchemaResponse{Schema: string(text), ReadAt: tuples.EncodeZookie(r.Revision())}, nil
}

// WriteSchema compiles text and stores it as the schema through the write path,
// exactly as the WriteSchema RPC does (refusing a change that would orphan tuples),
// and returns the new revision. Error positions name source (`bad.zed:2:35: …`).
// `relata serve` uses it to load --schema, --model or the default model at start.
func (s *Server) WriteSchema(ctx context.Context, source string, text []byte) (tuples.Revision, error) {
	return s.writes.WriteSchema(ctx, source, text)
}
