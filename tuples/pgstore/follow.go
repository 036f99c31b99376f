package pgstore

// The follower: how a node learns of every node's writes.
//
// One goroutine (run) reads the change log of the revisions after `known` up to the
// head, in order, records for each change the scope buckets it touches (the newest
// revision per bucket, as pebblestore's read cache does), loads the schema texts
// written in that range, and only then advances `known` and wakes WaitForRevision
// callers. It runs when woken: by a notification (listen holds one connection in
// LISTEN; every commit NOTIFYs), by a local commit, by a WaitForRevision caller, and
// every PollInterval as the fallback when notifications are lost (a connection drop).
// This node's own commits it does not read back: a commit in flight stops the
// catch-up before it, and its changes are recorded from memory once it returns
// (committed), or read from the log like another node's if its outcome is unknown.
//
// Exactness: UnchangedSince(scope, since) for a reader at rev answers true only when
// known ≥ rev, i.e. every change at ≤ rev (from any node) is in the buckets, and the
// scope's bucket was last written at ≤ since. A node that has not yet read another
// node's write at ≤ rev answers false, and the engine recomputes. If the node falls
// so far behind that GC has dropped log entries it had not read, it cannot know what
// changed in between: it moves its floor to the head, so that no answer read before
// it is reused.
//
// Tracking off (Options.NoCrossNodeTracking, for measurement only): the node neither
// LISTENs nor reads the change log. known advances only through this node's own
// commits, in revision order (a commit that arrives before a smaller one waits in
// pending), so on a node that is alone on its database the caches stay exact and
// cost nothing to keep. Another node's write leaves a revision this node never
// commits: known stops below it for good, every read after it misses the caches (the
// answers stay exact, the node gets slow), and the poll, which then only reads the
// head, logs that once. What is measured against it is the cost of following: the
// LISTEN connection, the catch-up query after every commit and the change-log reads.

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/jackc/pgx/v5"

	"github.com/relata/relata/tuples"
)

// scopeBuckets is the number of scope buckets (a power of two).
const scopeBuckets = 1 << 16

type follower struct {
	s *Store

	// floor: answers read below it are never reused. known: every change at ≤ known
	// is recorded in written.
	floor   atomic.Uint64
	known   atomic.Uint64
	written [scopeBuckets]atomic.Uint64

	wake chan struct{} // buffered(1): a request to catch up

	// advance serializes the updates of known (and of schemas with it).
	advance sync.Mutex

	notify struct {
		sync.Mutex
		ch chan struct{} // closed and replaced when known advances
	}

	// local: tracking is off (see the top of the file); pending holds this node's
	// commits above known+1 (under advance). lastPoll and lastHead (known and the
	// head at the previous poll) and stalled (the poll has logged that known stopped
	// below the head) belong to the follower goroutine.
	local   bool
	pending map[tuples.Revision]*written
	// committing holds the revisions this node is committing (under advance):
	// catchUp reads the log only up to the first of them, whose changes committed
	// then records from memory (an import's are the whole import: reading them back
	// from the log cost a quarter of a loading node's CPU); one whose commit failed is
	// dropped, and catchUp reads it from the log if it did commit after all.
	committing         map[tuples.Revision]struct{}
	lastPoll, lastHead tuples.Revision
	stalled            bool

	// schemas holds every schema written at ≤ known, oldest first.
	schemas struct {
		sync.RWMutex
		list []schemaVersion
	}
}

type schemaVersion struct {
	rev  tuples.Revision
	text []byte
}

func newFollower(ctx context.Context, s *Store, head tuples.Revision) (*follower, error) {
	f := &follower{s: s, wake: make(chan struct{}, 1)}
	f.notify.ch = make(chan struct{})
	f.floor.Store(uint64(head))
	f.known.Store(uint64(head))
	vs, err := f.loadSchemas(ctx, 0, head)
	if err != nil {
		return nil, err
	}
	f.appendSchemas(vs)
	return f, nil
}

// poke asks the follower to catch up soon.
func (f *follower) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// commit is called before this node sends the COMMIT of rev; committed or failed
// must follow.
func (f *follower) commit(rev tuples.Revision) {
	f.advance.Lock()
	defer f.advance.Unlock()
	if f.committing == nil {
		f.committing = make(map[tuples.Revision]struct{})
	}
	f.committing[rev] = struct{}{}
}

// failed is called when the COMMIT of rev failed or its outcome is unknown: the
// follower reads rev from the log like another node's, where it is if it committed.
func (f *follower) failed(rev tuples.Revision) {
	f.advance.Lock()
	delete(f.committing, rev)
	f.advance.Unlock()
	f.poke()
}

// committed is called after this node committed w at rev. When the follower has
// already recorded every revision before rev, the commit's own changes complete the
// picture up to rev, and known advances at once, without a round trip (and the
// follower catches up past it if the head is further); otherwise the follower
// catches up from the log.
func (f *follower) committed(rev tuples.Revision, w *written) {
	f.advance.Lock()
	defer f.advance.Unlock()
	delete(f.committing, rev)
	if f.local {
		// Tracking off: only this node's commits advance known, in order.
		if rev <= tuples.Revision(f.known.Load()) {
			return
		}
		if f.pending == nil {
			f.pending = make(map[tuples.Revision]*written)
		}
		f.pending[rev] = w
		for {
			next := tuples.Revision(f.known.Load()) + 1
			pw, ok := f.pending[next]
			if !ok {
				return
			}
			delete(f.pending, next)
			f.record(next, pw)
		}
	}
	if tuples.Revision(f.known.Load()) == rev-1 {
		f.record(rev, w)
		// Catch up past rev if the head is further, unless the next revision is
		// this node's too (a write group's): its committed comes next.
		if _, mine := f.committing[rev+1]; !mine && tuples.Revision(f.s.head.Load()) > rev {
			f.poke()
		}
	} else {
		f.poke()
	}
}

// record notes a commit's changes at rev and advances known to rev; f.advance is
// held and known is rev-1.
func (f *follower) record(rev tuples.Revision, w *written) {
	for _, t := range w.tuples {
		f.note(forwardBucket(t.Object, t.Relation), rev)
		f.note(reverseBucket(t.Subject, t.Object.Type, t.Relation), rev)
	}
	if w.schema != nil {
		f.appendSchemas([]schemaVersion{{rev: rev, text: w.schema}})
	}
	f.setKnown(rev)
}

// setKnown advances known to rev and wakes waiters; f.advance is held.
func (f *follower) setKnown(rev tuples.Revision) {
	if rev <= tuples.Revision(f.known.Load()) {
		return
	}
	f.known.Store(uint64(rev))
	f.s.observeHead(rev)
	f.wakeWaiters()
}

// wakeWaiters wakes the callers waiting on changed.
func (f *follower) wakeWaiters() {
	f.notify.Lock()
	close(f.notify.ch)
	f.notify.ch = make(chan struct{})
	f.notify.Unlock()
}

// appendSchemas appends the versions newer than the last one held.
func (f *follower) appendSchemas(vs []schemaVersion) {
	f.schemas.Lock()
	defer f.schemas.Unlock()
	for _, v := range vs {
		if n := len(f.schemas.list); n == 0 || f.schemas.list[n-1].rev < v.rev {
			f.schemas.list = append(f.schemas.list, v)
		}
	}
}

// changed returns a channel closed the next time known advances.
func (f *follower) changed() <-chan struct{} {
	f.notify.Lock()
	defer f.notify.Unlock()
	return f.notify.ch
}

func forwardBucket(object tuples.ObjectRef, relation string) uint32 {
	var d xxhash.Digest
	d.Reset()
	for _, p := range [...]string{"f", object.Type, object.ID, relation} {
		_, _ = d.WriteString(p)
		_, _ = d.Write([]byte{0})
	}
	return uint32(d.Sum64()) & (scopeBuckets - 1)
}

func reverseBucket(subject tuples.SubjectRef, objectType, relation string) uint32 {
	var d xxhash.Digest
	d.Reset()
	for _, p := range [...]string{"r", subject.Object.Type, subject.Object.ID, subject.Relation, objectType, relation} {
		_, _ = d.WriteString(p)
		_, _ = d.Write([]byte{0})
	}
	return uint32(d.Sum64()) & (scopeBuckets - 1)
}

// unchangedSince reports whether no write in (since, rev] touched bucket b, as far as
// this node can be sure (see the top of the file).
func (f *follower) unchangedSince(b uint32, since, rev tuples.Revision) bool {
	switch {
	case since > rev || since < tuples.Revision(f.floor.Load()):
		return false
	case since == rev:
		return true
	case tuples.Revision(f.known.Load()) < rev:
		if !f.local {
			f.poke()
		}
		return false
	}
	return tuples.Revision(f.written[b].Load()) <= since
}

func (f *follower) note(b uint32, rev tuples.Revision) {
	w := &f.written[b]
	for {
		cur := w.Load()
		if uint64(rev) <= cur || w.CompareAndSwap(cur, uint64(rev)) {
			return
		}
	}
}

// schemaAt returns the schema in force at rev from memory, when rev ≤ known.
func (f *follower) schemaAt(rev tuples.Revision) ([]byte, tuples.Revision, bool) {
	f.schemas.RLock()
	defer f.schemas.RUnlock()
	if rev > tuples.Revision(f.known.Load()) {
		return nil, 0, false
	}
	for i := len(f.schemas.list) - 1; i >= 0; i-- {
		if v := f.schemas.list[i]; v.rev <= rev {
			return v.text, v.rev, true
		}
	}
	return nil, 0, true
}

// loadSchemas reads the schemas written in (from, to].
func (f *follower) loadSchemas(ctx context.Context, from, to tuples.Revision) ([]schemaVersion, error) {
	rows, err := f.s.pool.Query(ctx, "SELECT rev, text FROM relata_schema WHERE rev > $1 AND rev <= $2 ORDER BY rev", int64(from), int64(to))
	if err != nil {
		return nil, f.s.classify(ctx, "schemas", err)
	}
	var add []schemaVersion
	for rows.Next() {
		var v schemaVersion
		var rev int64
		if err := rows.Scan(&rev, &v.text); err != nil {
			rows.Close()
			return nil, f.s.classify(ctx, "schemas", err)
		}
		v.rev = tuples.Revision(rev)
		add = append(add, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, f.s.classify(ctx, "schemas", err)
	}
	return add, nil
}

// run is the follower goroutine.
func (f *follower) run() {
	defer f.s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-f.s.closing
		cancel()
	}()
	ticker := time.NewTicker(f.s.opts.PollInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
			if f.local {
				continue
			}
		case <-ticker.C:
		}
		if f.local {
			if err := f.pollHead(ctx); err != nil && ctx.Err() == nil {
				f.s.opts.Logger.Warn("pgstore: reading the head", "err", err)
			}
			continue
		}
		if err := f.catchUp(ctx); err != nil && ctx.Err() == nil {
			f.s.opts.Logger.Warn("pgstore: following the change log", "err", err)
		}
	}
}

// readHead reads the database's head and horizon and notes both in the store.
func (f *follower) readHead(ctx context.Context) (head, horizon tuples.Revision, err error) {
	var h, hz int64
	f.s.queries.add("head")
	if err := f.s.pool.QueryRow(ctx, "SELECT r.head, h.horizon FROM relata_revision r, relata_horizon h").Scan(&h, &hz); err != nil {
		return 0, 0, f.s.classify(ctx, "head", err)
	}
	head, horizon = tuples.Revision(h), tuples.Revision(hz)
	f.s.observeHorizon(horizon)
	f.s.observeHead(head)
	return head, horizon, nil
}

// catchUp reads the head and the changes after known up to it, then advances known.
func (f *follower) catchUp(ctx context.Context) error {
	head, horizon, err := f.readHead(ctx)
	if err != nil {
		return err
	}
	// This node's commits in flight are recorded by committed: read up to the first.
	// (known is read under the lock too: a commit recorded since is not in flight.)
	f.advance.Lock()
	known := tuples.Revision(f.known.Load())
	for rev := range f.committing {
		if rev <= head {
			head = rev - 1
		}
	}
	f.advance.Unlock()
	if head <= known {
		return nil
	}
	type note struct {
		fwd, rev uint32
		at       tuples.Revision
	}
	var notes []note
	reset := horizon > known
	if !reset {
		for c, err := range f.s.Changes(ctx, known) {
			if errors.Is(err, tuples.ErrRevisionExpired) {
				reset = true
				break
			}
			if err != nil {
				return err
			}
			if c.Revision > head {
				break
			}
			notes = append(notes, note{forwardBucket(c.Tuple.Object, c.Tuple.Relation),
				reverseBucket(c.Tuple.Subject, c.Tuple.Object.Type, c.Tuple.Relation), c.Revision})
		}
	}
	vs, err := f.loadSchemas(ctx, known, head)
	if err != nil {
		return err
	}
	f.advance.Lock()
	defer f.advance.Unlock()
	if reset {
		// GC dropped log entries this node never read: no answer read before the
		// head can be vouched for.
		f.floor.Store(uint64(head))
	}
	for _, n := range notes {
		f.note(n.fwd, n.at)
		f.note(n.rev, n.at)
	}
	f.appendSchemas(vs)
	f.setKnown(head)
	return nil
}

// pollHead is the poll with tracking off: it reads the head and the horizon (so that
// WaitForRevision, and with it Watch, sees other nodes' writes within a poll), and
// logs once when the head has passed a revision this node will never record.
func (f *follower) pollHead(ctx context.Context) error {
	head, _, err := f.readHead(ctx)
	if err != nil {
		return err
	}
	f.wakeWaiters()
	// A revision that had committed by the previous poll and is still unrecorded is
	// not this node's: its own commits are recorded as they return.
	known := tuples.Revision(f.known.Load())
	if f.lastHead > known && known == f.lastPoll && !f.stalled {
		f.stalled = true
		f.s.opts.Logger.Error("pgstore: cross-node tracking is off (measurement only) and revision " +
			strconv.FormatInt(int64(known+1), 10) + " was not written by this node: its caches serve nothing after it; restart it with tracking on")
	}
	f.lastPoll, f.lastHead = known, head
	return nil
}

// listen holds a connection in LISTEN and pokes the follower on every notification.
// When the connection fails it reconnects with backoff; the poll keeps the node
// current meanwhile.
func (f *follower) listen() {
	defer f.s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-f.s.closing
		cancel()
	}()
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, f.s.cfg.ConnConfig)
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+notifyChannel)
			if err == nil {
				backoff = 50 * time.Millisecond
				f.poke() // writes may have committed while not listening
				for err == nil {
					_, err = conn.WaitForNotification(ctx)
					if err == nil {
						f.poke()
					}
				}
			}
			_ = conn.Close(context.Background())
		}
		if ctx.Err() != nil {
			return
		}
		f.s.opts.Logger.Warn("pgstore: LISTEN connection lost; polling until it is back", "err", classify(ctx, "listen", err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
