package pebblestore

// The committer.
//
// Every mutation (Write, DeleteMatching, WriteSchema, Import, and GC) is a request
// handed to one goroutine, commitLoop, over an unbuffered channel. Serializing
// mutations through one goroutine is what makes the checks a request carries
// (preconditions, CREATE of a live tuple, the schema revision) atomic with its
// writes: nothing else changes the database between check and write.
//
// Group commit. A synced Pebble commit costs one WAL fsync, which dwarfs the work of
// applying a few updates. So after the committer receives a request it keeps
// receiving, without blocking, every request whose sender is already waiting on the
// channel (up to maxGroupRequests requests or maxGroupUpdates updates), and commits
// them all with one Pebble batch and one fsync. While that fsync runs, new senders
// queue up on the channel and form the next group, so the group size adapts to the
// load: one writer pays one fsync per write, 64 writers share one fsync among up to
// 64 writes. One refinement: writers that were just acknowledged need a moment to
// send their next request, and an eager committer would then commit a group of one
// or two and make the rest wait a whole fsync. So when the channel is empty but the
// group is still smaller than the previous one, the committer waits for more, up to
// half the time the previous group took to commit (groupWait: so at most a fraction
// of the sync the wait saves, however slow the disk or busy the CPUs). A lone writer
// never waits: its previous group had one request.
//
// Ordering and isolation within a group. The checks of request k read the database
// plus the writes of requests 1..k-1 of the same group. Scans (preconditions,
// DeleteMatching) get that merged view from the group's batch, which is an indexed
// batch. Point lookups of a tuple's history, one per update and the bulk of the
// reads, take a cheaper path: the group's overlay map of the histories it has
// written, else one Pebble iterator opened for the group, positioned with
// SeekPrefixGE (bloom filters, no per-lookup iterator set-up). That iterator's view
// is the committed state, which is exact because the committer is the only writer.
// Each request is processed in two phases: first every check (schema revision,
// preconditions, CREATE, and the reads of the tuples' current histories), then the
// writes. A request that fails a check has written nothing to the batch, so
// it fails alone and the others still commit. Only an error writing to the batch or
// committing it fails the whole group.
//
// Revisions. Each successful request gets its own revision, head+1, head+2, … in
// group order (a failed request takes none), so the revision a caller gets back names
// exactly the state after its own write, Watch sees one revision per request, and a
// reader at any revision inside a group sees a prefix of the group. The group's last
// revision is written as the persisted head in the same batch. Only after the batch
// is durable does the committer publish the new head (readers can then choose the new
// revisions), wake WaitForRevision callers, and acknowledge the requests. Since a
// Pebble batch is atomic, a crash loses either a whole group or nothing, and every
// acknowledged request was in a synced group.
//
// GC requests are never grouped: GC runs between groups with the committer's
// exclusive view of the database, so its read-modify-write of a tuple's history
// cannot race a write to the same tuple (gc.go). Import requests are not grouped
// either: each commits alone through a plain batch (import.go).

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/relata/relata/tuples"
)

// Group limits: a group closes when it reaches either, or when no request arrives
// for groupWait while it is smaller than the previous group.
const (
	maxGroupRequests = 256
	maxGroupUpdates  = 16 << 10
	minGroupWait     = 50 * time.Microsecond
	maxGroupWait     = time.Millisecond
)

// groupWait is how long a group smaller than the previous one waits for more
// requests: half the previous group's commit time (mostly its WAL sync), within
// [minGroupWait, maxGroupWait]. Waiting a fraction of a sync to share it is cheaper
// than paying another.
func groupWait(lastCommit time.Duration) time.Duration {
	return min(max(lastCommit/2, minGroupWait), maxGroupWait)
}

type requestKind int

const (
	kindWrite requestKind = iota
	kindDelete
	kindSchema
	kindImport
	kindGC
	kindCheckpoint // runs alone, between groups (checkpoint.go)
)

// request is one mutation handed to the committer. The committer fills rev, n and err
// and then closes done.
type request struct {
	kind          requestKind
	write         tuples.WriteRequest   // kindWrite
	filter        tuples.Filter         // kindDelete
	preconditions []tuples.Precondition // kindDelete, kindSchema
	schema        []byte                // kindSchema
	tuples        []tuples.Tuple        // kindImport
	schemaRev     tuples.Revision       // kindImport
	horizon       tuples.Revision       // kindGC
	dir           string                // kindCheckpoint

	rev  tuples.Revision
	n    int
	err  error
	done chan struct{}
}

func (r *request) size() int {
	switch r.kind {
	case kindWrite:
		return len(r.write.Updates) + 1
	case kindImport:
		return len(r.tuples) + 1
	}
	return 1
}

// submit hands r to the committer and waits for its outcome. Once the committer has
// taken r, submit waits for the outcome even if ctx ends, so that a returned error
// always means the request changed nothing.
func (s *Store) submit(ctx context.Context, r *request) (*request, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	if s.opts.ReadOnly && r.kind != kindCheckpoint {
		return nil, ErrReadOnly
	}
	r.done = make(chan struct{})
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	<-r.done
	return r, r.err
}

// commitLoop is the committer goroutine.
func (s *Store) commitLoop() {
	defer close(s.committed)
	var (
		lastGroup int           // requests in the previous group
		lastTook  time.Duration // how long the previous group took to commit
		timer     *time.Timer   // bounds the wait for a group to fill
	)
	for {
		var first *request
		select {
		case first = <-s.reqs:
		case <-s.quit:
			return
		}
		if err := s.writable(); err != nil {
			// A full disk or a failed log: refuse at once, changing nothing.
			first.err = err
			close(first.done)
			continue
		}
		switch first.kind {
		case kindGC:
			s.runGC(first)
			continue
		case kindCheckpoint:
			s.runCheckpoint(first)
			continue
		case kindImport:
			s.commitImport(first) // alone: see import.go
			continue
		}
		group, size := []*request{first}, first.size()
		var held *request // a GC or import request, run after the group
		var deadline time.Time
		add := func(r *request) bool {
			if r.kind == kindGC || r.kind == kindImport || r.kind == kindCheckpoint {
				held = r
				return false
			}
			group = append(group, r)
			size += r.size()
			return true
		}
	gather:
		for len(group) < maxGroupRequests && size < maxGroupUpdates {
			select {
			case r := <-s.reqs:
				if !add(r) {
					break gather
				}
				continue
			default:
			}
			// Nobody is waiting to send. If the previous group was larger, its writers
			// were just acknowledged and are likely preparing their next request:
			// wait a little for them (groupWait) rather than pay a sync for a few.
			if len(group) >= lastGroup {
				break
			}
			if deadline.IsZero() {
				deadline = time.Now().Add(groupWait(lastTook))
			}
			wait := time.Until(deadline)
			if wait <= 0 {
				break
			}
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case r := <-s.reqs:
				timer.Stop()
				if !add(r) {
					break gather
				}
			case <-timer.C:
				break gather
			}
		}
		lastGroup = len(group)
		start := time.Now()
		s.commitGroup(group)
		lastTook = time.Since(start)
		switch {
		case held == nil:
		case held.kind == kindGC:
			s.runGC(held)
		case held.kind == kindCheckpoint:
			s.runCheckpoint(held)
		default:
			s.commitImport(held)
		}
	}
}

// pending is the state of the group being built.
type pending struct {
	b         *pebble.Batch // indexed: scans see the group's earlier writes
	db        *pebble.DB
	it        *pebble.Iterator  // committed state, for point lookups; opened lazily
	overlay   map[string][]byte // forward key → versions written by the group
	written   []tuples.Tuple    // every tuple the group created or deleted
	rev       tuples.Revision
	schemaRev tuples.Revision
}

// versions returns the versions of the tuple with forward key fwd as of the group's
// state: its own earlier writes, else the committed database. The result must not
// be modified.
func (p *pending) versions(fwd []byte) ([]byte, error) {
	if v, ok := p.overlay[string(fwd)]; ok {
		return v, nil
	}
	if p.it == nil {
		it, err := p.db.NewIter(nil)
		if err != nil {
			return nil, errBroken{fmt.Errorf("lookup: %w", err)}
		}
		p.it = it
	}
	if p.it.SeekPrefixGE(fwd) && bytes.Equal(p.it.Key(), fwd) {
		v, err := p.it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("lookup: %w", err)
		}
		return bytes.Clone(v), nil
	}
	if err := p.it.Error(); err != nil {
		return nil, fmt.Errorf("lookup: %w", err)
	}
	return nil, nil
}

// write stages muts in the batch (both index entries and a change-log entry each,
// with change sequence numbers from seq on) and in the overlay.
func (p *pending) write(muts []mutation, rev tuples.Revision, seq uint32) error {
	if err := writeMutations(p.b, muts, rev, seq); err != nil {
		return err
	}
	for _, m := range muts {
		p.overlay[string(m.fwd)] = m.versions
		p.written = append(p.written, m.tuple)
	}
	return nil
}

func (p *pending) close() {
	if p.it != nil {
		_ = p.it.Close()
	}
	_ = p.b.Close()
}

// errBroken marks an error that leaves the group's batch unusable.
type errBroken struct{ err error }

func (e errBroken) Error() string { return e.err.Error() }
func (e errBroken) Unwrap() error { return e.err }

func (s *Store) commitGroup(group []*request) {
	b := s.db.NewIndexedBatch()
	p := &pending{b: b, db: s.db, overlay: make(map[string][]byte), rev: tuples.Revision(s.head.Load()), schemaRev: s.schemaRev}
	defer p.close()
	var ok []*request
	var broken error
	for _, r := range group {
		if broken != nil {
			r.err = broken
			continue
		}
		rev := p.rev + 1
		n, err := s.apply(p, r, rev)
		var eb errBroken
		if errors.As(err, &eb) {
			broken = err
			r.err = err
			continue
		}
		if err != nil {
			r.err = err
			continue
		}
		r.rev, r.n = rev, n
		p.rev = rev
		ok = append(ok, r)
	}
	if broken == nil && len(ok) > 0 {
		start := time.Now()
		broken = s.commitBatch(b, p.rev)
		if broken == nil && s.opts.OnCommit != nil {
			updates := 0
			for _, r := range ok {
				updates += r.n
			}
			s.opts.OnCommit(tuples.CommitInfo{Requests: len(ok), Updates: updates, Sync: time.Since(start).Seconds()})
		}
	}
	if broken != nil {
		for _, r := range ok {
			r.rev, r.n, r.err = 0, 0, broken
		}
		s.opts.Logger.Error("pebblestore: group commit failed", "err", broken)
	} else if len(ok) > 0 {
		s.schemaRev = p.schemaRev
		s.cache.noteWrites(p.written, p.rev)
		s.publish(p.rev)
	}
	for _, r := range group {
		close(r.done)
	}
}

// commitBatch records the head and commit time and commits b durably. A commit that
// fails in Pebble marks the store broken (health.go).
func (s *Store) commitBatch(b *pebble.Batch, head tuples.Revision) (err error) {
	defer s.recoverFatal("commit", &err)
	if err := b.Set(keyHead, encodeUint64(uint64(head)), nil); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := b.Set(revKey(tagTime, head), encodeUint64(uint64(time.Now().UnixNano())), nil); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// publish makes head visible to readers and wakes WaitForRevision callers.
func (s *Store) publish(head tuples.Revision) {
	s.head.Store(uint64(head))
	s.notify.Lock()
	close(s.notify.ch)
	s.notify.ch = make(chan struct{})
	s.notify.Unlock()
}

// apply checks r against the group's state and, if every check passes, writes it to
// the batch at rev. It returns how many tuples changed (deleted, for kindDelete).
func (s *Store) apply(p *pending, r *request, rev tuples.Revision) (int, error) {
	switch r.kind {
	case kindWrite:
		return s.applyWrite(p, r.write, rev)
	case kindDelete:
		return s.applyDelete(p, r.filter, r.preconditions, rev)
	case kindSchema:
		if err := checkPreconditions(p.b, r.preconditions); err != nil {
			return 0, err
		}
		if err := p.b.Set(revKey(tagSchema, rev), r.schema, nil); err != nil {
			return 0, errBroken{fmt.Errorf("write schema: %w", err)}
		}
		p.schemaRev = rev
		return 0, nil
	}
	return 0, fmt.Errorf("unknown request kind %d", r.kind)
}

func checkSchemaRev(p *pending, want tuples.Revision) error {
	if want != 0 && want != p.schemaRev {
		return fmt.Errorf("schema revision %d, validated against %d: %w", p.schemaRev, want, tuples.ErrSchemaChanged)
	}
	return nil
}

// mutation is one tuple change staged by phase one of a request.
type mutation struct {
	op       tuples.Operation // OpTouch (created) or OpDelete
	tuple    tuples.Tuple
	fwd      []byte
	versions []byte
}

func (s *Store) applyWrite(p *pending, w tuples.WriteRequest, rev tuples.Revision) (int, error) {
	if err := checkSchemaRev(p, w.SchemaRevision); err != nil {
		return 0, err
	}
	if err := checkPreconditions(p.b, w.Preconditions); err != nil {
		return 0, err
	}
	muts := make([]mutation, 0, len(w.Updates))
	for _, u := range w.Updates {
		fwd := forwardKey(nil, u.Tuple)
		cur, err := p.versions(fwd)
		if err != nil {
			return 0, err
		}
		live, err := liveNow(cur)
		if err != nil {
			return 0, err
		}
		switch {
		case u.Op == tuples.OpCreate && live:
			return 0, &tuples.AlreadyExistsError{Tuple: u.Tuple}
		case u.Op == tuples.OpDelete:
			// A lapsed tuple is still stored: deleting it ends its version.
			if _, stored, err := headAttr(cur); err != nil || !stored {
				if err != nil {
					return 0, err
				}
				continue
			}
			next, err := markDeleted(cur, rev)
			if err != nil {
				return 0, err
			}
			muts = append(muts, mutation{tuples.OpDelete, u.Tuple, fwd, next})
		default:
			next, changed, err := touchVersions(cur, rev, encodeAttr(u.Tuple))
			if err != nil {
				return 0, err
			}
			if changed {
				muts = append(muts, mutation{tuples.OpTouch, u.Tuple, fwd, next})
			}
		}
	}
	return len(muts), p.write(muts, rev, 0)
}

func (s *Store) applyDelete(p *pending, f tuples.Filter, pre []tuples.Precondition, rev tuples.Revision) (int, error) {
	if err := checkPreconditions(p.b, pre); err != nil {
		return 0, err
	}
	var matched []tuples.Tuple
	prefix, reverse := scanPlan(f, false)
	err := scanLive(context.Background(), p.b, prefix, nil, reverse, &f, liveNowAttr, nil, func(t tuples.Tuple) bool {
		matched = append(matched, t)
		return true
	})
	if err != nil {
		return 0, err
	}
	muts := make([]mutation, 0, len(matched))
	for _, t := range matched {
		fwd := forwardKey(nil, t)
		cur, err := p.versions(fwd)
		if err != nil {
			return 0, err
		}
		next, err := markDeleted(cur, rev)
		if err != nil {
			return 0, err
		}
		muts = append(muts, mutation{tuples.OpDelete, t, fwd, next})
	}
	return len(muts), p.write(muts, rev, 0)
}

// writeMutations stages muts in b: both index entries and a change-log entry each,
// with change sequence numbers from seq on.
func writeMutations(b *pebble.Batch, muts []mutation, rev tuples.Revision, seq uint32) error {
	var rk []byte
	for i, m := range muts {
		rk = reverseKey(rk[:0], m.tuple)
		if err := b.Set(m.fwd, m.versions, nil); err != nil {
			return errBroken{fmt.Errorf("write: %w", err)}
		}
		if err := b.Set(rk, m.versions, nil); err != nil {
			return errBroken{fmt.Errorf("write: %w", err)}
		}
		if err := b.Set(changeKey(rev, seq+uint32(i)), changeValue(m.op, m.tuple), nil); err != nil {
			return errBroken{fmt.Errorf("write: %w", err)}
		}
	}
	return nil
}

// getVersions returns a copy of the versions stored under key, nil if none.
func getVersions(r pebble.Reader, key []byte) ([]byte, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	out := append([]byte(nil), v...)
	_ = closer.Close()
	return out, nil
}

// touchVersions returns the versions value after writing a tuple with attributes
// attr at rev: unchanged (changed false) when the same tuple is live with the same
// attributes and has not lapsed; otherwise the live version, if any, ends at rev and a
// new one starts there.
func touchVersions(cur []byte, rev tuples.Revision, attr []byte) (next []byte, changed bool, err error) {
	live, err := liveNow(cur)
	if err != nil {
		return nil, false, err
	}
	head, stored, err := headAttr(cur)
	if err != nil {
		return nil, false, err
	}
	if live && bytes.Equal(head, attr) {
		return cur, false, nil
	}
	if len(attr) == 0 && !stored && (len(cur) == 0 || cur[0] != 0) {
		return appendVersion(cur, rev), true, nil // the hot path: a plain tuple
	}
	vs, err := decodeVersions(nil, cur)
	if err != nil {
		return nil, false, err
	}
	if stored {
		vs[len(vs)-1].deleted = rev
	}
	vs = append(vs, version{created: rev, attr: attr})
	return encodeVersions(vs), true, nil
}

func appendVersion(cur []byte, rev tuples.Revision) []byte {
	out := make([]byte, len(cur), len(cur)+binary.MaxVarintLen64+1)
	copy(out, cur)
	out = binary.AppendUvarint(out, uint64(rev))
	return append(out, 0)
}

// markDeleted sets the deleted revision of the live (last) version to rev.
func markDeleted(cur []byte, rev tuples.Revision) ([]byte, error) {
	vs, err := decodeVersions(nil, cur)
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 || vs[len(vs)-1].deleted != 0 {
		return nil, fmt.Errorf("delete of a tuple that is not live: versions %x", cur)
	}
	vs[len(vs)-1].deleted = rev
	return encodeVersions(vs), nil
}

// checkPreconditions evaluates each precondition against the head state of r
// (including a group's staged writes when r is its indexed batch).
func checkPreconditions(r iterable, pre []tuples.Precondition) error {
	for _, p := range pre {
		var found *tuples.Tuple
		prefix, reverse := scanPlan(p.Filter, false)
		err := scanLive(context.Background(), r, prefix, nil, reverse, &p.Filter, liveNowAttr, nil, func(t tuples.Tuple) bool {
			found = &t
			return false
		})
		if err != nil {
			return err
		}
		switch {
		case p.Op == tuples.MustMatch && found == nil:
			return &tuples.PreconditionError{Precondition: p}
		case p.Op == tuples.MustNotMatch && found != nil:
			return &tuples.PreconditionError{Precondition: p, Tuple: *found}
		}
	}
	return nil
}

// Write applies req atomically at a new revision; see tuples.Store.
func (s *Store) Write(ctx context.Context, req tuples.WriteRequest) (tuples.Revision, error) {
	if err := s.validateWrite(req); err != nil {
		return 0, err
	}
	r, err := s.submit(ctx, &request{kind: kindWrite, write: req})
	if err != nil {
		return 0, err
	}
	return r.rev, nil
}

// DeleteMatching deletes every live tuple matching f; see tuples.Store. All matches
// go in one batch, so callers bound very large deletes with narrower filters.
func (s *Store) DeleteMatching(ctx context.Context, f tuples.Filter, preconditions []tuples.Precondition) (tuples.Revision, int, error) {
	if err := f.Validate(); err != nil {
		return 0, 0, err
	}
	if err := tuples.ValidatePreconditions(preconditions); err != nil {
		return 0, 0, err
	}
	r, err := s.submit(ctx, &request{kind: kindDelete, filter: f, preconditions: preconditions})
	if err != nil {
		return 0, 0, err
	}
	return r.rev, r.n, nil
}

// WriteSchema stores text at a new revision; see tuples.Store.
func (s *Store) WriteSchema(ctx context.Context, text []byte, preconditions []tuples.Precondition) (tuples.Revision, error) {
	if err := tuples.ValidatePreconditions(preconditions); err != nil {
		return 0, err
	}
	r, err := s.submit(ctx, &request{kind: kindSchema, schema: append([]byte(nil), text...), preconditions: preconditions})
	if err != nil {
		return 0, err
	}
	return r.rev, nil
}

// Import writes ts with TOUCH semantics at one new revision; see tuples.Importer.
func (s *Store) Import(ctx context.Context, ts []tuples.Tuple, schemaRevision tuples.Revision) (tuples.Revision, error) {
	for i, t := range ts {
		if err := t.Validate(); err != nil {
			return 0, tuples.PrefixField(err, "tuples["+strconv.Itoa(i)+"].")
		}
	}
	r, err := s.submit(ctx, &request{kind: kindImport, tuples: ts, schemaRev: schemaRevision})
	if err != nil {
		return 0, err
	}
	return r.rev, nil
}

// validateWrite checks a write before it reaches the committer: the update limit,
// each tuple, duplicates, and the precondition filters.
func (s *Store) validateWrite(req tuples.WriteRequest) error {
	if err := req.Validate(s.opts.MaxUpdatesPerWrite); err != nil {
		return err
	}
	return nil
}
