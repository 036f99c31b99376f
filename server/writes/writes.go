// Package writes is Relata's write path, below the transports: Write, Delete,
// WriteSchema (with the diff against the stored schema and the orphan preconditions)
// and Import. The gRPC and REST handlers convert a request, call a Writer and map its
// error; `relata serve --schema/--model` and the validation-file runner call the same
// Writer, so they behave exactly as the server does. It imports no gRPC or proto.
//
// Every write validates its tuples against the compiled schema at the head (from the
// engine's schema cache, so each stored schema is compiled once for reads and writes
// alike), and passes the schema's revision to the store, which refuses the write
// (tuples.ErrSchemaChanged) when a schema write landed in between. One loop, retry,
// then validates again against the new schema.
package writes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/relata/relata/check"
	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

// Limits of the write path besides tuples.MaxUpdatesPerWrite and
// tuples.MaxPreconditions; exceeding one is a *LimitError naming the field.
const (
	// MaxSchemaBytes bounds a schema's source text.
	MaxSchemaBytes = schema.MaxInputSize
	// MaxSchemaRetries bounds how often one write is retried because a schema write
	// landed between its validation and its commit.
	MaxSchemaRetries = 10
)

// Writer is the write path over one store. It is safe for concurrent use.
type Writer struct {
	store  tuples.Store
	engine *check.Engine
	// observe is told every revision a write committed.
	observe func(tuples.Revision)
}

// Config configures New.
type Config struct {
	// Store is the store written to; required.
	Store tuples.Store
	// Engine supplies the compiled schema (its cache); nil means a new engine.
	Engine *check.Engine
	// Observe, when set, is called with the revision of every committed write (the
	// server uses it to keep minimize_latency reads at least that fresh).
	Observe func(tuples.Revision)
}

// New returns a Writer.
func New(cfg Config) *Writer {
	if cfg.Engine == nil {
		cfg.Engine = check.New(check.Options{})
	}
	if cfg.Observe == nil {
		cfg.Observe = func(tuples.Revision) {}
	}
	return &Writer{store: cfg.Store, engine: cfg.Engine, observe: cfg.Observe}
}

// LimitError reports a request over one of the write path's limits.
type LimitError struct {
	// Field is the request field over the limit ("updates", "schema").
	Field string
	Msg   string
}

func (e *LimitError) Error() string { return e.Msg }

// OrphanError reports a schema change that would orphan a stored tuple.
type OrphanError struct {
	// Tuple is a stored tuple the new schema would not allow.
	Tuple tuples.Tuple
	// Removal is what the schema change removes, e.g. "relation flow#denied removed".
	Removal string
}

func (e *OrphanError) Error() string {
	return fmt.Sprintf("schema: cannot write the schema: %s, but tuple %s still uses it; delete such tuples first", e.Removal, e.Tuple)
}

// headReader returns a reader of the store's newest revision.
func (w *Writer) headReader(ctx context.Context) (tuples.Reader, error) {
	head, err := w.store.HeadRevision(ctx)
	if err != nil {
		return nil, err
	}
	return w.store.ReaderAt(ctx, head)
}

// HeadSchema returns the compiled schema at the head and the revision that wrote it
// (tuples.ErrNoSchema, wrapped, when the store has none).
func (w *Writer) HeadSchema(ctx context.Context) (*schema.Schema, tuples.Revision, error) {
	r, err := w.headReader(ctx)
	if err != nil {
		return nil, 0, err
	}
	return w.engine.Schema(ctx, r)
}

// attempt is one try of a write against the schema sch, written at schemaRev (nil
// and 0 when the store has none and the write allows that).
type attempt func(sch *schema.Schema, schemaRev tuples.Revision) (tuples.Revision, error)

// retry runs try against the schema at the head until the store does not refuse it
// for a schema change, at most MaxSchemaRetries times. With needSchema, a store
// without a schema fails with tuples.ErrNoSchema. It is the one retry loop of the
// write path.
func (w *Writer) retry(ctx context.Context, what string, needSchema bool, try attempt) (tuples.Revision, error) {
	for range MaxSchemaRetries {
		sch, schemaRev, err := w.HeadSchema(ctx)
		if errors.Is(err, tuples.ErrNoSchema) && !needSchema {
			sch, schemaRev, err = nil, 0, nil
		}
		if err != nil {
			return 0, err
		}
		rev, err := try(sch, schemaRev)
		if errors.Is(err, tuples.ErrSchemaChanged) {
			continue
		}
		if err == nil {
			w.observe(rev)
		}
		return rev, err
	}
	return 0, fmt.Errorf("%s raced schema writes %d times: %w", what, MaxSchemaRetries, tuples.ErrSchemaChanged)
}

// Write validates every created or touched tuple against the schema at the head and
// applies wr atomically. A tuple the schema refuses fails with its error prefixed by
// "updates[i].tuple: ".
func (w *Writer) Write(ctx context.Context, wr tuples.WriteRequest) (tuples.Revision, error) {
	if n := len(wr.Updates); n > tuples.MaxUpdatesPerWrite {
		return 0, &LimitError{Field: "updates", Msg: fmt.Sprintf("updates: %d is more than the limit of %d a write", n, tuples.MaxUpdatesPerWrite)}
	}
	if n := len(wr.Preconditions); n > tuples.MaxPreconditions {
		return 0, &LimitError{Field: "preconditions", Msg: fmt.Sprintf("preconditions: %d is more than the limit of %d", n, tuples.MaxPreconditions)}
	}
	return w.retry(ctx, "write", true, func(sch *schema.Schema, schemaRev tuples.Revision) (tuples.Revision, error) {
		for i, u := range wr.Updates {
			if u.Op == tuples.OpDelete {
				continue
			}
			if err := sch.ValidateTuple(u.Tuple); err != nil {
				return 0, fmt.Errorf("updates[%d].tuple: %w", i, err)
			}
		}
		wr.SchemaRevision = schemaRev
		return w.store.Write(ctx, wr)
	})
}

// Delete deletes every live tuple matching f atomically after checking the
// preconditions, and returns the new revision and how many tuples it deleted. The
// filter must name an object type, and the types and relations it names must exist
// in the schema at the head (field names start with "filter").
func (w *Writer) Delete(ctx context.Context, f tuples.Filter, preconditions []tuples.Precondition) (tuples.Revision, int, error) {
	if f.ObjectType == "" {
		return 0, 0, &tuples.ValidationError{Field: "filter.object_type", Value: "", Reason: "required: a delete must name an object type"}
	}
	if n := len(preconditions); n > tuples.MaxPreconditions {
		return 0, 0, &LimitError{Field: "preconditions", Msg: fmt.Sprintf("preconditions: %d is more than the limit of %d", n, tuples.MaxPreconditions)}
	}
	r, err := w.headReader(ctx)
	if err != nil {
		return 0, 0, err
	}
	if err := w.CheckFilterNames(ctx, r, "filter", f); err != nil {
		return 0, 0, err
	}
	rev, n, err := w.store.DeleteMatching(ctx, f, preconditions)
	if err != nil {
		return 0, 0, err
	}
	w.observe(rev)
	return rev, n, nil
}

// CheckFilterNames refuses a filter naming a type or relation the schema at r does
// not define (a schema NOT_FOUND error prefixed by field), so that a typo is an error
// rather than an empty answer. A store without a schema has no tuples to match and
// passes.
func (w *Writer) CheckFilterNames(ctx context.Context, r tuples.Reader, field string, f tuples.Filter) error {
	sch, _, err := w.engine.Schema(ctx, r)
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

// WriteSchema compiles text (its error positions name source: `bad.zed:2:35: …`) and
// stores it at a new revision, refusing a change that would orphan stored tuples with
// an *OrphanError naming one: the removals against the schema at the head are
// preconditions of the store write. An empty or over-long text fails first.
func (w *Writer) WriteSchema(ctx context.Context, source string, text []byte) (tuples.Revision, error) {
	if len(text) > MaxSchemaBytes {
		return 0, &LimitError{Field: "schema", Msg: fmt.Sprintf("schema: %d bytes is more than the limit of %d", len(text), MaxSchemaBytes)}
	}
	if len(text) == 0 {
		return 0, &tuples.ValidationError{Field: "schema", Value: "", Reason: "required"}
	}
	next, err := schema.Compile(source, text)
	if err != nil {
		return 0, err
	}
	// The schema already in force (the same text) writes nothing: answer the head.
	if r, err := w.headReader(ctx); err == nil {
		if oldText, _, err := r.Schema(ctx); err == nil && bytes.Equal(oldText, text) {
			return r.Revision(), nil
		}
	}
	return w.retry(ctx, "schema write", false, func(prev *schema.Schema, _ tuples.Revision) (tuples.Revision, error) {
		var removals []schema.Removal
		if prev != nil {
			removals = schema.Diff(prev, next)
		}
		rev, err := w.store.WriteSchema(ctx, text, schema.Preconditions(removals))
		var perr *tuples.PreconditionError
		if errors.As(err, &perr) {
			return 0, &OrphanError{Tuple: perr.Tuple, Removal: removalOf(removals, perr.Tuple)}
		}
		return rev, err
	})
}

// removalOf returns a description of the removal that t would be orphaned by.
func removalOf(removals []schema.Removal, t tuples.Tuple) string {
	for _, r := range removals {
		if r.Filter().Matches(t) {
			return r.String()
		}
	}
	return "a relation or subject type"
}

// storeImport writes ts with TOUCH semantics: through tuples.Importer when the store
// has it, else as TOUCH writes of at most tuples.MaxUpdatesPerWrite distinct tuples each
// (then the import is not atomic as a whole, and the revision is the last write's).
func (w *Writer) storeImport(ctx context.Context, ts []tuples.Tuple, schemaRev tuples.Revision) (tuples.Revision, error) {
	if imp, ok := w.store.(tuples.Importer); ok {
		return imp.Import(ctx, ts, schemaRev)
	}
	var rev tuples.Revision
	for chunk := range slices.Chunk(ts, tuples.MaxUpdatesPerWrite) {
		seen := make(map[tuples.Tuple]bool, len(chunk))
		wr := tuples.WriteRequest{SchemaRevision: schemaRev}
		for _, t := range chunk {
			if !seen[t] {
				seen[t] = true
				wr.Updates = append(wr.Updates, tuples.Update{Op: tuples.OpTouch, Tuple: t})
			}
		}
		r, err := w.store.Write(ctx, wr)
		if err != nil {
			return 0, err
		}
		rev = r
	}
	return rev, nil
}
