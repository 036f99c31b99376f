package check

import (
	"context"
	"fmt"
	"iter"
	"sync"
)

// task evaluates one branch.
type task func(ctx context.Context) (outcome, error)

// fan is the state of one fanOut, in one allocation (closures over its variables cost
// one each: 10 allocations a fanOut, about 55 of an uncached peer-workload check).
type fan struct {
	q      *request
	stopOn bool
	wg     sync.WaitGroup
	mu     sync.Mutex // guards the fields below
	// cancel stops the spawned tasks once the answer is decided; nil until one is
	// spawned (tasks run in the calling goroutine until then, with no cancellable
	// context).
	cancel   context.CancelFunc
	decided  bool
	decision outcome
	combined outcome
	err      error
	children []*Explanation
}

// fanOut evaluates tasks and combines them: the result is stopOn as soon as one task
// answers stopOn (union and `any` stop at the first true, intersection and `all` at the
// first false), and !stopOn when none does. Tasks run in extra goroutines while the
// request's budget allows and in the calling goroutine otherwise; the others are
// cancelled once the answer is decided, and fanOut returns only after all of them have.
// An error is returned only when no task decided the answer.
//
// The first task runs in the calling goroutine before any other starts (schemas list
// the cheap branch first: a direct relation before a nested permission; when it
// decides, nothing else is read), and so does the last, where the caller would only
// wait for it. A task of its own costs a goroutine whose stack grows through the
// recursion (runtime.newstack was 14% of the server's CPU on the peer workload's
// checks) and a wake-up, so one or two tasks (an arrow over one object, a union of two
// branches) never spawn; the tasks in between run concurrently.
func (q *request) fanOut(parent context.Context, exp *Explanation, tasks iter.Seq2[task, error], stopOn bool) (outcome, error) {
	f := &fan{q: q, stopOn: stopOn}
	f.combined.ok = !stopOn
	ctx := parent
	// pending is the task read last, started when the next one comes (so that it is
	// known whether it is the last).
	var pending task
	first := true
	for t, err := range tasks {
		if err != nil {
			f.record(outcome{}, err) // pending still runs: it may decide the answer
			break
		}
		if f.isDecided() {
			pending = nil
			break
		}
		if ctx.Err() != nil {
			f.record(outcome{}, ctx.Err())
			pending = nil
			break
		}
		if first {
			first = false
			f.record(t(ctx))
			continue
		}
		if pending != nil {
			ctx = f.start(parent, ctx, pending)
			if f.isDecided() {
				pending = nil
				break
			}
		}
		pending = t
	}
	if pending != nil && !f.isDecided() {
		if err := ctx.Err(); err != nil {
			f.record(outcome{}, err)
		} else {
			f.record(pending(ctx))
		}
	}
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cancel != nil {
		f.cancel()
	}
	var out outcome
	switch {
	case f.decided:
		out = outcome{ok: stopOn}
		out.merge(f.decision)
	case f.err != nil:
		return outcome{}, f.err
	default:
		out = f.combined
		if out.cond {
			out.ok = false
		}
	}
	return finish(exp, out, "", f.children...), nil
}

// start runs t, which more tasks follow: in a goroutine of its own when the budgets
// have room (acquireGoroutine), in the calling goroutine otherwise. It returns the
// context the fan's tasks run with: the first spawn derives a cancellable one from
// parent.
func (f *fan) start(parent, ctx context.Context, t task) context.Context {
	if !f.q.acquireGoroutine() {
		f.record(t(ctx))
		return ctx
	}
	if ctx == parent {
		var c context.CancelFunc
		ctx, c = context.WithCancel(parent)
		f.mu.Lock()
		f.cancel = c
		f.mu.Unlock()
	}
	f.wg.Add(1)
	go f.run(ctx, t)
	return ctx
}

// run is a spawned task's goroutine.
func (f *fan) run(ctx context.Context, t task) {
	defer f.wg.Done()
	defer f.q.releaseGoroutine()
	defer func() {
		if p := recover(); p != nil {
			f.record(outcome{}, fmt.Errorf("panic during evaluation: %v", p))
		}
	}()
	f.record(t(ctx))
}

// record folds one task's answer into the fan.
func (f *fan) record(o outcome, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.decided {
		return
	}
	if err != nil {
		if f.err == nil {
			f.err = err
		}
		return
	}
	if o.exp != nil {
		f.children = append(f.children, o.exp)
	}
	if o.ok == f.stopOn && !o.cond {
		f.decided = true
		f.decision = o
		f.decision.volatile = f.decision.volatile || f.combined.volatile
		if f.cancel != nil {
			f.cancel()
		}
		return
	}
	if o.cond {
		f.combined.cond = true
		f.combined.missing = unionMissing(f.combined.missing, o.missing)
		op := cAnd
		if f.stopOn {
			op = cOr
		}
		f.combined.f = cJoin(op, f.combined.f, condOf(o))
	}
	f.combined.merge(o)
}

// isDecided reports whether a task has decided the answer.
func (f *fan) isDecided() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.decided
}
