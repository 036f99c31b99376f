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
	"strings"

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
	// importCall is the tuples an import writes in one store call: maxImportTuples
	// (tests make it smaller).
	importCall int
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
	return &Writer{store: cfg.Store, engine: cfg.Engine, observe: cfg.Observe, importCall: maxImportTuples}
}

// LimitError reports a request over one of the write path's limits.
type LimitError struct {
	// Field is the request field over the limit ("updates", "schema").
	Field string
	Msg   string
}

func (e *LimitError) Error() string { return e.Msg }

// OrphanError reports a schema change that would orphan stored tuples: every removal
// that would, each with its tuple count and one example.
type OrphanError struct {
	// Tuple is a stored tuple the new schema would not allow (Orphans[0]'s example).
	Tuple tuples.Tuple
	// Removal describes what orphans Tuple, e.g. "relation flow#denied removed".
	Removal string
	// Orphans lists every removal with stored tuples, in the schema's order.
	Orphans []Orphan
}

// Orphan is one removal of a schema change and the stored tuples it would orphan.
type Orphan struct {
	Removal schema.Removal
	// Count is how many live tuples the removal would orphan.
	Count int64
	// Example is the first of them in canonical order.
	Example tuples.Tuple
}

// Total returns how many tuples the orphans hold together.
func (e *OrphanError) Total() int64 {
	var n int64
	for _, o := range e.Orphans {
		n += o.Count
	}
	return n
}

func (e *OrphanError) Error() string {
	if len(e.Orphans) == 0 {
		return fmt.Sprintf("schema: cannot write the schema: %s, but tuple %s still uses it; delete such tuples first", e.Removal, e.Tuple)
	}
	parts := make([]string, len(e.Orphans))
	for i, o := range e.Orphans {
		parts[i] = fmt.Sprintf("%s, but %s still use%s it (e.g. %s)", o.Removal, plural(o.Count, "tuple"), map[bool]string{true: "s"}[o.Count == 1], o.Example)
	}
	return fmt.Sprintf("schema: cannot write the schema: it would orphan %s: %s; delete such tuples first", plural(e.Total(), "stored tuple"), strings.Join(parts, "; "))
}

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
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
//
// On a store that is a tuples.RecentHeader, the first try validates against the
// schema at the store's recent head, which costs no round trip (see writeAtRecent).
func (w *Writer) Write(ctx context.Context, wr tuples.WriteRequest) (tuples.Revision, error) {
	if n := len(wr.Updates); n > tuples.MaxUpdatesPerWrite {
		return 0, &LimitError{Field: "updates", Msg: fmt.Sprintf("updates: %d is more than the limit of %d a write", n, tuples.MaxUpdatesPerWrite)}
	}
	if n := len(wr.Preconditions); n > tuples.MaxPreconditions {
		return 0, &LimitError{Field: "preconditions", Msg: fmt.Sprintf("preconditions: %d is more than the limit of %d", n, tuples.MaxPreconditions)}
	}
	if rh, ok := w.store.(tuples.RecentHeader); ok {
		if rev, done, err := w.writeAtRecent(ctx, rh.RecentHead(), wr); done {
			return rev, err
		}
	}
	return w.retry(ctx, "write", true, func(sch *schema.Schema, schemaRev tuples.Revision) (tuples.Revision, error) {
		if err := validateUpdates(sch, wr); err != nil {
			return 0, err
		}
		wr.SchemaRevision = schemaRev
		return w.store.Write(ctx, wr)
	})
}

// writeAtRecent tries wr once against the schema at the store's recent head rev. The
// store checks that the schema is still in force when the write commits, so a write
// it accepts is exactly what a write validated at the head would have done. done is
// false, and nothing was written, when the try decides nothing: no schema at rev, a
// tuple that schema refuses, or a schema written since; any of them may be the
// older schema's doing, so the caller tries again at the head.
func (w *Writer) writeAtRecent(ctx context.Context, rev tuples.Revision, wr tuples.WriteRequest) (tuples.Revision, bool, error) {
	r, err := w.store.ReaderAt(ctx, rev)
	if err != nil {
		return 0, false, nil
	}
	sch, schemaRev, err := w.engine.Schema(ctx, r)
	if err != nil || validateUpdates(sch, wr) != nil {
		return 0, false, nil
	}
	wr.SchemaRevision = schemaRev
	written, err := w.store.Write(ctx, wr)
	if errors.Is(err, tuples.ErrSchemaChanged) {
		return 0, false, nil
	}
	if err == nil {
		w.observe(written)
	}
	return written, true, err
}

// validateUpdates validates every created or touched tuple of wr against sch; an
// error names the update ("updates[i].tuple: …").
func validateUpdates(sch *schema.Schema, wr tuples.WriteRequest) error {
	for i, u := range wr.Updates {
		if u.Op == tuples.OpDelete {
			continue
		}
		if err := sch.ValidateTuple(u.Tuple); err != nil {
			return fmt.Errorf("updates[%d].tuple: %w", i, err)
		}
	}
	return nil
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
			return 0, w.orphanError(ctx, removals, perr.Tuple)
		}
		return rev, err
	})
}

// orphanError builds the error of a refused schema write: every removal with the
// tuples it would orphan at the head, counted there (the store named t, which a
// removal matches; a count that finds nothing, after a concurrent delete, still
// reports t).
func (w *Writer) orphanError(ctx context.Context, removals []schema.Removal, t tuples.Tuple) error {
	e := &OrphanError{Tuple: t, Removal: "a relation or subject type"}
	for _, r := range removals {
		if r.Matches(t) {
			e.Removal = r.String()
			break
		}
	}
	if r, err := w.headReader(ctx); err == nil {
		if orphans, err := countOrphans(ctx, r, removals); err == nil && len(orphans) > 0 {
			e.Orphans = orphans
			e.Tuple, e.Removal = orphans[0].Example, orphans[0].Removal.String()
		}
	}
	return e
}

// countOrphans counts, at r, the live tuples each removal would orphan, and returns
// the removals that have any.
func countOrphans(ctx context.Context, r tuples.Reader, removals []schema.Removal) ([]Orphan, error) {
	var out []Orphan
	for _, rm := range removals {
		n, first, err := tuples.Count(ctx, r, rm.Filter())
		if err != nil {
			return nil, fmt.Errorf("counting the tuples of %s: %w", rm, err)
		}
		if n > 0 {
			out = append(out, Orphan{Removal: rm, Count: n, Example: *first})
		}
	}
	return out, nil
}

// SchemaDiff is what writing a schema would change, computed without writing.
type SchemaDiff struct {
	// Changes lists the definitions, relations, permissions and caveats added,
	// removed or changed, against the schema in force at Revision.
	Changes []ChangeCount
	// Revision is the revision the diff was computed at (the head).
	Revision tuples.Revision
	// Refusal, when not nil, is the error WriteSchema would fail with now (the
	// stored tuples the change would orphan).
	Refusal *OrphanError
	// Unchanged: the text is the schema in force; a write would write nothing.
	Unchanged bool
}

// ChangeCount is a schema.Change with the stored tuples its removals would orphan.
type ChangeCount struct {
	schema.Change
	// Orphaned is how many live tuples the change would orphan.
	Orphaned int64
	// Example is one of them (nil when Orphaned is 0).
	Example *tuples.Tuple
}

// DiffSchema compiles text (errors as in WriteSchema) and compares it with the schema
// at the head, counting for each removal the stored tuples it would orphan. It writes
// nothing. A store without a schema diffs against an empty one.
func (w *Writer) DiffSchema(ctx context.Context, source string, text []byte) (*SchemaDiff, error) {
	if len(text) > MaxSchemaBytes {
		return nil, &LimitError{Field: "schema", Msg: fmt.Sprintf("schema: %d bytes is more than the limit of %d", len(text), MaxSchemaBytes)}
	}
	if len(text) == 0 {
		return nil, &tuples.ValidationError{Field: "schema", Value: "", Reason: "required"}
	}
	next, err := schema.Compile(source, text)
	if err != nil {
		return nil, err
	}
	r, err := w.headReader(ctx)
	if err != nil {
		return nil, err
	}
	d := &SchemaDiff{Revision: r.Revision()}
	prev, _, err := w.engine.Schema(ctx, r)
	switch {
	case errors.Is(err, tuples.ErrNoSchema):
		prev = nil
	case err != nil:
		return nil, err
	default:
		if oldText, _, err := r.Schema(ctx); err == nil && bytes.Equal(oldText, text) {
			d.Unchanged = true
		}
	}
	removals := schema.Diff(prev, next)
	orphans, err := countOrphans(ctx, r, removals)
	if err != nil {
		return nil, err
	}
	if len(orphans) > 0 {
		d.Refusal = &OrphanError{Tuple: orphans[0].Example, Removal: orphans[0].Removal.String(), Orphans: orphans}
	}
	for _, c := range schema.Compare(prev, next) {
		cc := ChangeCount{Change: c}
		for _, rm := range c.Removals {
			for _, o := range orphans {
				if o.Removal.String() == rm.String() && o.Removal.Filter() == rm.Filter() {
					cc.Orphaned += o.Count
					if cc.Example == nil {
						ex := o.Example
						cc.Example = &ex
					}
				}
			}
		}
		d.Changes = append(d.Changes, cc)
	}
	return d, nil
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
