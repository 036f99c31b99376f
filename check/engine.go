// Package check is Relata's engine: Check, Expand, LookupResources and LookupSubjects
// over compiled schema rewrites. It reads tuples only through tuples.Reader and never
// imports a store, protobuf or gRPC.
package check

import (
	"context"
	"errors"

	"github.com/relata/relata/tuples"
)

// errNotBuilt is returned by parts of the engine not built yet.
var errNotBuilt = errors.New("check: not supported yet")

// Options configure an Engine. The zero value is usable: zero fields take defaults.
type Options struct {
	// MaxDepth bounds recursion; exceeding it is ErrMaxDepth. Default 50.
	MaxDepth int
	// Concurrency bounds the goroutines one request fans out to. Default 8.
	Concurrency int
	// CacheBytes bounds the shared check cache; 0 means the default (64 MiB), a negative
	// value disables the cache.
	CacheBytes int64
}

// Engine answers permission questions. It is safe for concurrent use; one Engine is
// shared by all requests so that its cache is.
type Engine struct {
	opts Options
}

// New returns an Engine with opts (defaults filled in).
func New(opts Options) *Engine {
	return &Engine{opts: opts}
}

// CheckRequest asks whether Subject has Permission on Object.
type CheckRequest struct {
	Object     tuples.ObjectRef
	Permission string
	Subject    tuples.SubjectRef
	Explain    bool
}

// CheckResult is the answer; Explanation is set when the request asked for it.
type CheckResult struct {
	Allowed     bool
	Explanation *Explanation
}

// Explanation is a tree saying why a check answered as it did.
type Explanation struct {
	// Step describes this node: a rewrite step ("union", "tenant->view", "granted") or
	// a tuple ("flow:f1#granted@role:ops#member").
	Step string
	// Result is this node's answer.
	Result bool
	// Note is extra information, e.g. "cycle", "contradictory cycle", "not evaluated".
	Note     string
	Children []*Explanation
}

// Check answers req at the snapshot r reads.
func (e *Engine) Check(ctx context.Context, r tuples.Reader, req CheckRequest) (CheckResult, error) {
	return CheckResult{}, errNotBuilt
}
