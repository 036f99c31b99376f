package check

import (
	"context"
	"sync"
)

// flightGroup deduplicates identical in-flight sub-checks: the first caller of a key
// evaluates it in its own goroutine, later callers wait for that answer (or for their
// own context to end). Unlike singleflight.DoChan it starts no goroutine.
type flightGroup struct {
	mu struct {
		sync.Mutex
		calls map[string]*flightCall
	}
}

// flightCall is one evaluation in flight; val and err are set before done closes.
type flightCall struct {
	done chan struct{}
	val  outcome
	err  error
}

// do returns fn's answer for key, evaluating fn only when no identical evaluation is
// in flight.
func (g *flightGroup) do(ctx context.Context, key string, fn func() (outcome, error)) (outcome, error) {
	g.mu.Lock()
	if c, ok := g.mu.calls[key]; ok {
		g.mu.Unlock()
		select {
		case <-c.done:
			return c.val, c.err
		case <-ctx.Done():
			return outcome{}, ctx.Err()
		}
	}
	if g.mu.calls == nil {
		g.mu.calls = make(map[string]*flightCall)
	}
	c := &flightCall{done: make(chan struct{})}
	g.mu.calls[key] = c
	g.mu.Unlock()

	defer func() {
		g.mu.Lock()
		delete(g.mu.calls, key)
		g.mu.Unlock()
		close(c.done)
	}()
	c.val, c.err = fn()
	return c.val, c.err
}
