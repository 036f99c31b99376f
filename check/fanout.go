package check

import (
	"context"
	"fmt"
	"iter"
	"sync"
)

// task evaluates one branch.
type task func(ctx context.Context) (outcome, error)

// fanOut evaluates tasks and combines them: the result is stopOn as soon as one task
// answers stopOn (union and `any` stop at the first true, intersection and `all` at the
// first false), and !stopOn when none does. Tasks run in extra goroutines while the
// request's budget allows and in the calling goroutine otherwise; the others are
// cancelled once the answer is decided, and fanOut returns only after all of them have.
// An error is returned only when no task decided the answer.
func (q *request) fanOut(parent context.Context, exp *Explanation, tasks iter.Seq2[task, error], stopOn bool) (outcome, error) {
	// Tasks run in the calling goroutine until one is spawned; only then is a
	// cancellable context needed to stop the spawned ones early.
	ctx := parent
	cancel := func() {}
	defer func() { cancel() }()
	var (
		wg sync.WaitGroup
		mu struct {
			sync.Mutex
			decided  bool
			decision outcome
			combined outcome
			err      error
			children []*Explanation
		}
	)
	mu.combined.ok = !stopOn
	record := func(o outcome, err error) {
		mu.Lock()
		defer mu.Unlock()
		if mu.decided {
			return
		}
		if err != nil {
			if mu.err == nil {
				mu.err = err
			}
			return
		}
		if o.exp != nil {
			mu.children = append(mu.children, o.exp)
		}
		if o.ok == stopOn && !o.cond {
			mu.decided = true
			mu.decision = o
			mu.decision.volatile = mu.decision.volatile || mu.combined.volatile
			cancel()
			return
		}
		if o.cond {
			mu.combined.cond = true
			mu.combined.missing = unionMissing(mu.combined.missing, o.missing)
			op := cAnd
			if stopOn {
				op = cOr
			}
			mu.combined.f = cJoin(op, mu.combined.f, condOf(o))
		}
		mu.combined.merge(o)
	}
	decided := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return mu.decided
	}
	// start runs t: in a goroutine of its own when more tasks follow and the budgets
	// have room (acquireGoroutine), in the calling goroutine otherwise. The first task
	// runs here before any other starts (schemas list the cheap branch first: a direct
	// relation before a nested permission; when it decides, nothing else is read), and
	// so does the last, where the caller would only wait for it. A task of its own
	// costs a goroutine whose stack grows through the recursion (runtime.newstack was
	// 14% of the server's CPU on the peer workload's checks) and a wake-up, so one or
	// two tasks (an arrow over one object, a union of two branches) never spawn; the
	// tasks in between run concurrently.
	start := func(t task, more bool) {
		switch spawn := more && q.acquireGoroutine(); {
		case spawn:
			if ctx == parent {
				var c context.CancelFunc
				ctx, c = context.WithCancel(parent)
				mu.Lock()
				cancel = c
				mu.Unlock()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer q.releaseGoroutine()
				defer func() {
					if p := recover(); p != nil {
						record(outcome{}, fmt.Errorf("panic during evaluation: %v", p))
					}
				}()
				record(t(ctx))
			}()
		default:
			record(t(ctx))
		}
	}
	// pending is the task read last, started when the next one comes (so that it is
	// known whether it is the last).
	var pending task
	first := true
	for t, err := range tasks {
		if err != nil {
			record(outcome{}, err) // pending still runs: it may decide the answer
			break
		}
		if decided() {
			pending = nil
			break
		}
		if ctx.Err() != nil {
			record(outcome{}, ctx.Err())
			pending = nil
			break
		}
		if first {
			first = false
			start(t, false)
			continue
		}
		if pending != nil {
			start(pending, true)
			if decided() {
				pending = nil
				break
			}
		}
		pending = t
	}
	if pending != nil && !decided() {
		if err := ctx.Err(); err != nil {
			record(outcome{}, err)
		} else {
			start(pending, false)
		}
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	var out outcome
	switch {
	case mu.decided:
		out = outcome{ok: stopOn}
		out.merge(mu.decision)
	case mu.err != nil:
		return outcome{}, mu.err
	default:
		out = mu.combined
		if out.cond {
			out.ok = false
		}
	}
	return finish(exp, out, "", mu.children...), nil
}
