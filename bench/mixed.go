package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/tuples"
)

// The mixed phase: checks at minimize_latency with WriteShare of writes that toggle
// flow:F#user_denied@user:U or flow:F#user_granted@user:U for the (F, U) of the
// pool's first flow#execute checks (the hot pairs), which a tenth of the phase's
// checks ask about. Truth records every toggle with its revision; each check is
// verified after the phase against the truth at the revision its zookie names, so
// stale (minimize_latency) answers are judged at their own snapshot. A write that
// failed or was cut off leaves its pair's state unknown: the pair is "poisoned" and its
// checks are not judged. After the phase, every toggled tuple is written back to its
// generated state so that the data set can be benched again.

// mixedState tracks the toggles in flight. mu guards every field.
type mixedState struct {
	mu       sync.Mutex
	inflight map[toggleKey]bool
	poisoned map[toggleKey]bool
	touched  map[toggleKey]bool
}

// mixedRecord is one check of the mixed phase, judged after the phase.
type mixedRecord struct {
	q   int32 // index into the pool
	rev tuples.Revision
	got bool
}

// claim picks a hot pair and a toggle kind no other write is toggling.
func (m *mixedState) claim(rng *rand.Rand, r *runner) (toggleKey, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inflight == nil {
		m.inflight, m.poisoned, m.touched = map[toggleKey]bool{}, map[toggleKey]bool{}, map[toggleKey]bool{}
	}
	for range 16 {
		q := &r.pool[r.hot[rng.IntN(len(r.hot))]]
		k := toggleKey{flow: q.object, user: q.user, denied: rng.IntN(2) == 0}
		if !m.inflight[k] {
			m.inflight[k], m.touched[k] = true, true
			return k, true
		}
	}
	return toggleKey{}, false
}

func (m *mixedState) release(k toggleKey, poison bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.inflight, k)
	if poison {
		m.poisoned[k] = true
	}
}

func (m *mixedState) isPoisoned(f, u int32) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.poisoned[toggleKey{flow: f, user: u, denied: true}] || m.poisoned[toggleKey{flow: f, user: u}]
}

// toggleTuple is the tuple k names.
func toggleTuple(k toggleKey) *relatav1.Tuple {
	rel := "user_granted"
	if k.denied {
		rel = "user_denied"
	}
	return &relatav1.Tuple{Object: objectProto(flowRef(k.flow)), Relation: rel, Subject: userSubject(k.user)}
}

// mixedOp is one operation of the mixed phase: a write with probability WriteShare,
// else a check (of a hot pair one time in ten).
func (r *runner) mixedOp(ctx context.Context, w *worker) (int, error) {
	w.wrote = false
	if w.rng.Float64() < r.cfg.WriteShare && len(r.hot) > 0 {
		w.wrote = true
		return r.toggleOp(ctx, w)
	}
	qi := w.next(len(r.pool))
	if len(r.hot) > 0 && w.rng.IntN(10) == 0 {
		qi = r.hot[w.rng.IntN(len(r.hot))]
	}
	q := &r.pool[qi]
	resp, err := w.perm.Check(ctx, &relatav1.CheckRequest{Object: q.obj, Permission: q.perm.String(), Subject: q.subj, Consistency: r.consMin})
	if err != nil {
		return 0, err
	}
	rev, err := tuples.ParseZookie(resp.GetCheckedAt())
	if err != nil {
		w.mismatch("check %s: checked_at %q: %v", q, resp.GetCheckedAt(), err)
		return 1, nil
	}
	w.recs = append(w.recs, mixedRecord{q: int32(qi), rev: rev, got: resp.GetAllowed()})
	return 1, nil
}

// toggleOp flips one hot pair's user_granted or user_denied tuple.
func (r *runner) toggleOp(ctx context.Context, w *worker) (int, error) {
	k, ok := r.mixed.claim(w.rng, r)
	if !ok {
		return 0, nil
	}
	present := r.truth.present(k, Latest)
	op := relatav1.Operation_OPERATION_TOUCH
	if present {
		op = relatav1.Operation_OPERATION_DELETE
	}
	resp, err := w.rels.Write(ctx, &relatav1.WriteRequest{Updates: []*relatav1.TupleUpdate{{Operation: op, Tuple: toggleTuple(k)}}})
	if err != nil {
		r.mixed.release(k, true)
		return 0, err
	}
	rev, err := tuples.ParseZookie(resp.GetWrittenAt())
	if err != nil {
		r.mixed.release(k, true)
		return 0, fmt.Errorf("bench: write of %v: written_at: %w", k, err)
	}
	r.truth.record(k, !present, rev)
	r.mixed.release(k, false)
	return 1, nil
}

// mixedFinish judges the phase's checks at their revisions, then writes every
// toggled tuple back to its generated state.
func (r *runner) mixedFinish(ctx context.Context, res *PhaseResult, workers []*worker) {
	for _, w := range workers {
		for _, rec := range w.recs {
			q := &r.pool[rec.q]
			if r.mixed.isPoisoned(q.object, q.user) {
				continue
			}
			if want := r.truth.Check(q.perm, q.object, q.user, rec.rev); rec.got != want {
				w.mismatch("check %s (minimize_latency, at revision %d): got %t, want %t", q, rec.rev, rec.got, want)
			}
		}
	}
	var ups []*relatav1.TupleUpdate
	var keys []toggleKey
	r.mixed.mu.Lock()
	for k := range r.mixed.touched {
		base := r.truth.basePresent(k)
		if !r.mixed.poisoned[k] && r.truth.present(k, Latest) == base {
			continue
		}
		op := relatav1.Operation_OPERATION_DELETE
		if base {
			op = relatav1.Operation_OPERATION_TOUCH
		}
		ups = append(ups, &relatav1.TupleUpdate{Operation: op, Tuple: toggleTuple(k)})
		keys = append(keys, k)
	}
	r.mixed.touched = map[toggleKey]bool{}
	r.mixed.poisoned = map[toggleKey]bool{}
	r.mixed.mu.Unlock()
	rels := relatav1.NewRelationshipServiceClient(r.conns[0])
	for len(ups) > 0 {
		n := min(len(ups), 1000)
		resp, err := rels.Write(ctx, &relatav1.WriteRequest{Updates: ups[:n]})
		if err != nil {
			res.Errors++
			res.ErrorSamples = append(res.ErrorSamples, "restoring the toggled tuples: "+err.Error())
			return
		}
		if rev, err := tuples.ParseZookie(resp.GetWrittenAt()); err == nil {
			for _, k := range keys[:n] {
				r.truth.record(k, r.truth.basePresent(k), rev)
			}
		}
		ups, keys = ups[n:], keys[n:]
	}
}

// headMoverTuple is the tuple the fully_consistent phases' background writes toggle:
// no check, lookup or ground truth of the bench involves user:bench-writer.
func headMoverTuple() *relatav1.Tuple {
	return &relatav1.Tuple{Object: objectProto(flowRef(0)), Relation: "shared_with",
		Subject: &relatav1.SubjectRef{Object: &relatav1.ObjectRef{Type: "user", Id: headMoverUser}}}
}

// headMoverUser is the user of headMoverTuple; lookups ignore it.
const headMoverUser = "bench-writer"

// headMover writes at FullWritesPerSec until ctx ends, toggling headMoverTuple so that
// the head revision keeps moving, then deletes the tuple.
func (r *runner) headMover(ctx context.Context) (writes, failed int64, first error) {
	rels := relatav1.NewRelationshipServiceClient(r.conns[0])
	write := func(ctx context.Context, op relatav1.Operation) {
		_, err := rels.Write(ctx, &relatav1.WriteRequest{Updates: []*relatav1.TupleUpdate{{Operation: op, Tuple: headMoverTuple()}}})
		if err != nil && ctx.Err() == nil {
			failed++
			if first == nil {
				first = err
			}
			return
		}
		if err == nil {
			writes++
		}
	}
	t := time.NewTicker(time.Duration(float64(time.Second) / r.cfg.FullWritesPerSec))
	defer t.Stop()
	op := relatav1.Operation_OPERATION_TOUCH
	for {
		select {
		case <-ctx.Done():
			// Leave the data set as generated.
			write(context.WithoutCancel(ctx), relatav1.Operation_OPERATION_DELETE)
			return writes, failed, first
		case <-t.C:
			write(ctx, op)
			if op == relatav1.Operation_OPERATION_TOUCH {
				op = relatav1.Operation_OPERATION_DELETE
			} else {
				op = relatav1.Operation_OPERATION_TOUCH
			}
		}
	}
}

// warmupOp answers the next BulkSize checks of the pool with CheckBulk, so that the
// warm-up covers the pool once, and verifies them.
func (r *runner) warmupOp(ctx context.Context, w *worker) (int, error) {
	n := r.cfg.BulkSize
	start := int(r.warm.Add(int64(n))) - n
	if start >= len(r.pool) {
		return 0, nil
	}
	return r.bulkCheck(ctx, w, r.pool[start:min(start+n, len(r.pool))])
}

// bulkCheck answers qs (with their contexts) in one CheckBulk and verifies them.
func (r *runner) bulkCheck(ctx context.Context, w *worker, qs []query) (int, error) {
	req := &relatav1.CheckBulkRequest{Items: make([]*relatav1.CheckBulkRequestItem, len(qs)), Consistency: r.consMin}
	for i := range qs {
		q := &qs[i]
		req.Items[i] = &relatav1.CheckBulkRequestItem{Object: q.obj, Permission: q.perm.String(), Subject: q.subj, Context: q.ctx}
	}
	resp, err := w.perm.CheckBulk(ctx, req)
	if err != nil {
		return 0, err
	}
	results := resp.GetResults()
	if len(results) != len(qs) {
		w.mismatch("check-bulk of %d items: got %d results", len(qs), len(results))
		return 0, nil
	}
	for i, res := range results {
		q := &qs[i]
		if e := res.GetError(); e != nil {
			w.mismatch("check-bulk item %s: error %s %s", q, e.GetCode(), e.GetMessage())
			continue
		}
		w.judge(q, res.GetAllowed(), res.GetConditional(), res.GetMissingContext(), resp.GetCheckedAt())
	}
	return len(qs), nil
}
