package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

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
	rev, err := h.s.writeSchema(ctx, []byte(req.GetSchema()))
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

// writeSchema is WriteSchema on domain types; serve uses it to load a schema at start.
func (s *Server) writeSchema(ctx context.Context, text []byte) (tuples.Revision, error) {
	if len(text) > MaxSchemaBytes {
		return 0, &limitError{field: "schema", msg: fmt.Sprintf("schema: %d bytes is more than the limit of %d", len(text), MaxSchemaBytes)}
	}
	if len(text) == 0 {
		return 0, required("schema")
	}
	next, err := compileSchema(text)
	if err != nil {
		return 0, err
	}
	for range maxWriteSchemaRetry {
		r, err := s.headReader(ctx)
		if err != nil {
			return 0, err
		}
		var prev *schema.Schema
		switch oldText, _, err := r.Schema(ctx); {
		case errors.Is(err, tuples.ErrNoSchema):
		case err != nil:
			return 0, err
		case bytes.Equal(oldText, text):
			// The schema already in force: write nothing, answer the head revision.
			return r.Revision(), nil
		default:
			if prev, err = compileSchema(oldText); err != nil {
				return 0, fmt.Errorf("server: compiling the stored schema: %w", err)
			}
		}
		removals := orphanRemovals(prev, next)
		rev, err := s.cfg.Store.WriteSchema(ctx, text, schema.Preconditions(removals))
		var perr *tuples.PreconditionError
		switch {
		case errors.As(err, &perr):
			return 0, &orphanError{tuple: perr.Tuple, removal: removalOf(removals, perr.Tuple)}
		case errors.Is(err, tuples.ErrSchemaChanged):
			continue
		case err == nil:
			s.revs.observe(rev)
		}
		return rev, err
	}
	return 0, fmt.Errorf("server: schema write raced other schema writes %d times: %w", maxWriteSchemaRetry, tuples.ErrSchemaChanged)
}

// orphanError reports a schema change that would orphan a stored tuple.
type orphanError struct {
	tuple   tuples.Tuple
	removal string // what the schema change removes, e.g. "relation flow#denied removed"
}

func (e *orphanError) Error() string {
	return fmt.Sprintf("schema: cannot write the schema: %s, but tuple %s still uses it; delete such tuples first", e.removal, e.tuple)
}

// schemaCache holds the compiled schema most recently used on the write path, keyed by
// the revision that wrote it.
type schemaCache struct {
	mu struct {
		sync.Mutex
		rev    tuples.Revision
		schema *schema.Schema
	}
}

// get returns the compiled schema r sees and the revision that wrote it.
func (c *schemaCache) get(ctx context.Context, r tuples.Reader) (*schema.Schema, tuples.Revision, error) {
	text, rev, err := r.Schema(ctx)
	if err != nil {
		return nil, 0, err
	}
	c.mu.Lock()
	if c.mu.schema != nil && c.mu.rev == rev {
		s := c.mu.schema
		c.mu.Unlock()
		return s, rev, nil
	}
	c.mu.Unlock()
	s, err := compileSchema(text)
	if err != nil {
		return nil, 0, fmt.Errorf("server: compiling the stored schema of revision %d: %w", rev, err)
	}
	c.mu.Lock()
	if rev >= c.mu.rev {
		c.mu.rev, c.mu.schema = rev, s
	}
	c.mu.Unlock()
	return s, rev, nil
}

// WriteSchema compiles text and stores it as the schema, exactly as the WriteSchema RPC
// does (refusing a change that would orphan tuples), and returns the new revision.
// `relata serve` uses it to load --schema, --model or the default model at start.
func (s *Server) WriteSchema(ctx context.Context, text []byte) (tuples.Revision, error) {
	return s.writeSchema(ctx, text)
}
