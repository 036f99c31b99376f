package check

import (
	"sync"

	"github.com/relata/relata/tuples"
)

// Answers across revisions.
//
// Every sub-problem answer is computed from store reads at one revision. When the
// reader can name the scopes of its reads (tuples.ScopeTracker), the engine records,
// for each frame, the scopes read while evaluating it and the scopes of every
// sub-problem it used (cached or computed). A cached answer computed at revision R then
// also answers at a later revision R2 when the store says that no write in (R, R2]
// changed any of those scopes: the reads would return the same tuples, so the
// evaluation would too. That keeps the cache warm while writes go on, for everything
// they did not touch, without giving up exactness.
//
// The recorded set is a superset of what the answer depends on (branches evaluated
// and then not needed are in it), which only costs reuse. A frame that read more than
// maxDeps scopes keeps its answer for its own revision only, as does every answer when
// the reader cannot track scopes.

// maxDeps is the most scopes an answer reusable across revisions may depend on.
const maxDeps = 24

// deps is a set of scopes an answer depends on. over means the set is unknown or
// larger than maxDeps: the answer holds at its own revision only.
type deps struct {
	n      uint8
	over   bool
	scopes [maxDeps]tuples.Scope
}

// add adds one scope.
func (d *deps) add(s tuples.Scope) {
	if d.over {
		return
	}
	for _, have := range d.scopes[:d.n] {
		if have == s {
			return
		}
	}
	if int(d.n) == maxDeps {
		d.over = true
		return
	}
	d.scopes[d.n] = s
	d.n++
}

// addAll adds every scope of o.
func (d *deps) addAll(o *deps) {
	if o.over {
		d.over = true
		return
	}
	for _, s := range o.scopes[:o.n] {
		d.add(s)
	}
}

// unchangedSince reports whether no scope of d changed between rev and t's revision.
func (d *deps) unchangedSince(t tuples.ScopeTracker, rev tuples.Revision) bool {
	if d.over || t == nil {
		return false
	}
	for _, s := range d.scopes[:d.n] {
		if !t.UnchangedSince(s, rev) {
			return false
		}
	}
	return true
}

// collector gathers the deps of one frame from the goroutines evaluating it.
type collector struct {
	mu sync.Mutex
	d  deps
}

// addAll adds every scope of o; a nil collector ignores it.
func (c *collector) addAll(o *deps) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.d.addAll(o)
	c.mu.Unlock()
}

// add adds one scope; a nil collector ignores it.
func (c *collector) add(s tuples.Scope) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.d.add(s)
	c.mu.Unlock()
}

// markOver records that the frame read something the reader cannot track.
func (c *collector) markOver() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.d.over = true
	c.mu.Unlock()
}

// snapshot returns the deps gathered so far.
func (c *collector) snapshot() deps {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.d
}

// readForward records, in frame f, a Contains or Subjects read of obj#rel.
func (q *request) readForward(f *frame, obj tuples.ObjectRef, rel string) {
	if f == nil {
		return
	}
	if q.tracker == nil {
		f.deps.markOver()
		return
	}
	f.deps.add(q.tracker.ForwardScope(obj, rel))
}
