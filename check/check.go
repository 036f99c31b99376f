package check

import (
	"context"

	"github.com/relata/relata/tuples"
)

// CheckRequest asks whether Subject has Permission on Object.
type CheckRequest struct {
	Object     tuples.ObjectRef
	Permission string
	Subject    tuples.SubjectRef
	// Explain asks for an Explanation. Explained checks bypass the cache and evaluate
	// sequentially, so the tree is deterministic.
	Explain bool
	// Context holds caveat parameters; a tuple's stored context wins
	// for a key in both. JSON-like values: float64, string, bool, nil, []any,
	// map[string]any.
	Context map[string]any
}

// CheckResult is the answer; Explanation is set when the request asked for it.
// Allowed is false whenever Conditional is: the answer then depends on the caveat
// parameters listed in MissingContext (sorted).
type CheckResult struct {
	Allowed        bool
	Conditional    bool
	MissingContext []string
	Explanation    *Explanation
	// Stats counts the work the check did, for metrics and traces.
	Stats CheckStats
}

// CheckStats counts the work of one check.
type CheckStats struct {
	// Dispatches is the number of sub-problems (object#relation for the subject) the
	// check evaluated or found in the cache, the request's own included.
	Dispatches int64
	// Reads is the number of store reads (point lookups and scans) it made.
	Reads int64
	// CacheHits is the number of sub-problems the shared check cache answered (the
	// request's own included: 1 with Dispatches 1 is a cached answer).
	CacheHits int64
	// Depth is the deepest sub-problem evaluated (1 for the request's own).
	Depth int64
}

// Explanation is a tree saying why a check answered as it did.
type Explanation struct {
	// Step describes this node: a sub-problem ("flow:f1#execute"), a rewrite step
	// ("union", "tenant->view", "granted") or a tuple ("flow:f1#granted@role:ops#member").
	Step string
	// Result is this node's answer (false when Conditional).
	Result bool
	// Conditional: the node's answer depends on the caveat parameters Missing.
	Conditional bool
	Missing     []string
	// Note is extra information, e.g. "cycle", "contradictory cycle", "not evaluated".
	Note     string
	Children []*Explanation
}

// Check answers req at the snapshot r reads. An unknown object type, permission or
// subject type is a *NotFoundError; a subject type the schema never allows simply
// answers false. Evaluation deeper than Options.MaxDepth is a *MaxDepthError.
func (e *Engine) Check(ctx context.Context, r tuples.Reader, req CheckRequest) (CheckResult, error) {
	c, err := e.schemaFor(ctx, r)
	if err != nil {
		return CheckResult{}, err
	}
	return e.check(ctx, r, c, req)
}

// check is Check with the schema already compiled.
func (e *Engine) check(ctx context.Context, r tuples.Reader, c *compiled, req CheckRequest) (CheckResult, error) {
	if err := validateCheck(c, req); err != nil {
		return CheckResult{}, err
	}
	q := e.newRequest(r, c, req.Explain)
	q.root = req.Object
	q.subject = req.Subject
	q.setContext(req.Context)
	out, err := q.checkRel(ctx, at{}, req.Object, req.Permission, req.Subject)
	if err != nil {
		return CheckResult{}, err
	}
	out = out.resolve()
	stats := CheckStats{Dispatches: q.dispatches.Load(), Reads: q.reads.Load(), CacheHits: q.cacheHits.Load(), Depth: q.depth.Load()}
	if out.cond {
		return CheckResult{Conditional: true, MissingContext: out.missing, Explanation: out.exp, Stats: stats}, nil
	}
	return CheckResult{Allowed: out.ok, Explanation: out.exp, Stats: stats}, nil
}

// validateCheck reports the first unknown name in req.
func validateCheck(c *compiled, req CheckRequest) error {
	if err := validateRel(c, "object", req.Object.Type, req.Permission, "permission"); err != nil {
		return err
	}
	return validateSubject(c, "subject", req.Subject)
}

// validateRel checks that typ exists and, when rel is not empty, has rel.
func validateRel(c *compiled, typeField, typ, rel, relField string) error {
	d := c.s.Definitions[typ]
	if d == nil {
		return &NotFoundError{Field: typeField, Type: typ}
	}
	if rel != "" && d.Relations[rel] == nil {
		return &NotFoundError{Field: relField, Type: typ, Relation: rel}
	}
	return nil
}

// validateSubject checks a subject's type and relation.
func validateSubject(c *compiled, field string, s tuples.SubjectRef) error {
	return validateRel(c, field, s.Object.Type, s.Relation, field)
}
