package pebblestore

// Garbage collection.
//
// The horizon H is the oldest readable revision. Collecting up to H drops every
// version deleted at or before H (no reader at R ≥ H can see it, since it is live only
// at revisions < deleted ≤ H), deletes index entries left with no version, and drops
// the change log and commit times at or before H. The change log is also the GC's
// work list: the tuples to compact are exactly those with a DELETE entry in
// (old horizon, H], so GC never scans the indexes.
//
// Safety against concurrent readers: GC publishes the new horizon before it deletes
// anything, and every read checks the horizon after it has read (or opened its
// iterator). A read that sees horizon ≤ R afterwards ran before the deletions that
// could affect R; one that sees horizon > R returns ErrRevisionExpired rather than a
// possibly wrong answer.
//
// A live version that expires is collectable only once it has lapsed for every
// readable revision, which may be long after the horizon passed the revision that
// wrote it (and consumed its change-log entry). GC then queues it by expiration
// (tagExpiry keys), and each later GC also takes the queued tuples whose expiration
// is at or before the horizon's commit time.
//
// The background loop picks H as the newest revision committed at or before
// now − GCWindow (from the per-group commit times), and hands the work to the
// committer, which runs it between groups, in chunks of whole revisions.

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/relata/relata/tuples"
)

// gcChunk bounds the change-log entries one GC batch processes (rounded up to whole
// revisions).
const gcChunk = 10_000

// CollectGarbage collects the versions deleted at or before horizon (capped at the
// head) and makes revisions older than horizon unreadable (ErrRevisionExpired). It
// returns the resulting horizon, which never moves backwards. The background GC calls
// it with the revision at the edge of the GC window; tests and tools may call it
// directly.
func (s *Store) CollectGarbage(ctx context.Context, horizon tuples.Revision) (tuples.Revision, error) {
	r, err := s.submit(ctx, &request{kind: kindGC, horizon: horizon})
	if err != nil {
		return 0, err
	}
	return r.rev, nil
}

// runGC runs a GC request on the committer goroutine.
func (s *Store) runGC(r *request) {
	defer close(r.done)
	target := min(r.horizon, tuples.Revision(s.head.Load()))
	for {
		cur := tuples.Revision(s.horizon.Load())
		if target <= cur {
			r.rev = cur
			return
		}
		if err := s.collectChunk(cur, target); err != nil {
			r.err = err
			s.opts.Logger.Error("pebblestore: gc", "err", err)
			return
		}
	}
}

// collectChunk advances the horizon from cur towards target by at most about gcChunk
// change-log entries.
func (s *Store) collectChunk(cur, target tuples.Revision) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: changeKey(cur+1, 0), UpperBound: changeKey(target+1, 0)})
	if err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	h := target
	var keys [][]byte
	seen := make(map[string]bool)
	count, last := 0, tuples.Revision(0)
	for valid := it.First(); valid; valid = it.Next() {
		rev := keyRevision(it.Key())
		if count >= gcChunk && rev != last {
			h = last
			break
		}
		count, last = count+1, rev
		v := it.Value()
		if len(v) == 0 {
			continue
		}
		parts, attr := splitChange(v[1:])
		// Deleted versions, and versions that expire, may be collectable.
		if (tuples.Operation(v[0]) == tuples.OpDelete || hasExpiry(attr)) && !seen[string(parts)] {
			seen[string(parts)] = true
			keys = append(keys, append([]byte{tagForward}, parts...))
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("gc: %w", err)
	}

	// Publish the horizon first: from now on reads below h fail (see top of file).
	s.horizon.Store(uint64(h))
	hTime := (&reader{s: s, rev: h}).commitTime()

	b := s.db.NewBatch()
	defer func() { _ = b.Close() }()
	// Queued versions that have lapsed by now.
	qEnd := expiryKey(nil, hTime+1, nil)
	qit, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tagExpiry}, UpperBound: qEnd})
	if err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	for valid := qit.First(); valid; valid = qit.Next() {
		fwd := qit.Key()[1+12:]
		if !seen[string(fwd[1:])] {
			seen[string(fwd[1:])] = true
			keys = append(keys, append([]byte(nil), fwd...))
		}
	}
	if err := qit.Close(); err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	if err := b.DeleteRange([]byte{tagExpiry}, qEnd, nil); err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	for _, fwd := range keys {
		cur, err := getVersions(s.db, fwd)
		if err != nil {
			return err
		}
		vs, err := decodeVersions(nil, cur)
		if err != nil {
			return err
		}
		kept := vs[:0]
		for _, v := range vs {
			if expiredBy(v.attr, hTime) {
				continue // lapsed for every readable revision
			}
			if v.deleted == 0 || v.deleted > h {
				kept = append(kept, v)
			}
			if v.deleted == 0 && hasExpiry(v.attr) {
				// Lapses later: queue it (a deleted one is collected by its delete).
				if err := b.Set(expiryKey(nil, 0, v.attr, fwd...), nil, nil); err != nil {
					return fmt.Errorf("gc: %w", err)
				}
			}
		}
		if len(kept) == len(vs) {
			continue
		}
		t, err := decodeForward(fwd)
		if err != nil {
			return err
		}
		rk := reverseKey(nil, t)
		if len(kept) == 0 {
			err = b.Delete(fwd, nil)
			if err == nil {
				err = b.Delete(rk, nil)
			}
		} else {
			enc := encodeVersions(kept)
			err = b.Set(fwd, enc, nil)
			if err == nil {
				err = b.Set(rk, enc, nil)
			}
		}
		if err != nil {
			return fmt.Errorf("gc: %w", err)
		}
	}
	for _, err := range []error{
		b.DeleteRange(changeKey(0, 0), changeKey(h+1, 0), nil),
		b.DeleteRange(revKey(tagTime, 0), revKey(tagTime, h), nil),
		b.Set(keyHorizon, encodeUint64(uint64(h)), nil),
	} {
		if err != nil {
			return fmt.Errorf("gc: %w", err)
		}
	}
	// No sync: the batch is atomic, and losing it in a crash only means the next GC
	// redoes it.
	return s.commitGC(b)
}

// commitGC commits a GC batch; a commit that fails in Pebble marks the store broken.
func (s *Store) commitGC(b *pebble.Batch) (err error) {
	defer s.recoverFatal("gc commit", &err)
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	return nil
}

// gcLoop is the background GC goroutine.
func (s *Store) gcLoop() {
	defer close(s.gcDone)
	ticker := time.NewTicker(s.opts.GCInterval)
	defer ticker.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		h, err := s.revisionAt(time.Now().Add(-s.opts.GCWindow))
		if err != nil {
			s.opts.Logger.ErrorContext(ctx, "pebblestore: gc horizon", "err", err)
			continue
		}
		if h <= tuples.Revision(s.horizon.Load()) {
			continue
		}
		got, err := s.CollectGarbage(ctx, h)
		if err != nil {
			if ctx.Err() == nil {
				s.opts.Logger.ErrorContext(ctx, "pebblestore: gc", "err", err)
			}
			continue
		}
		s.opts.Logger.DebugContext(ctx, "pebblestore: gc", "horizon", got)
	}
}

// revisionAt returns the newest revision committed at or before cutoff, or the
// current horizon when none is newer.
func (s *Store) revisionAt(cutoff time.Time) (tuples.Revision, error) {
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.release()
	horizon := tuples.Revision(s.horizon.Load())
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: revKey(tagTime, horizon), UpperBound: []byte{tagTime + 1}})
	if err != nil {
		return 0, fmt.Errorf("gc: %w", err)
	}
	defer it.Close()
	h := horizon
	for valid := it.First(); valid; valid = it.Next() {
		ns, err := decodeUint64(it.Value())
		if err != nil {
			return 0, err
		}
		if time.Unix(0, int64(ns)).After(cutoff) {
			break
		}
		h = keyRevision(it.Key())
	}
	return h, it.Error()
}

// expiryKey appends the GC queue key of forward key fwd expiring at the expiration
// of attr, or, when attr is nil, at unix nanoseconds ns.
func expiryKey(dst []byte, ns int64, attr []byte, fwd ...byte) []byte {
	dst = append(dst, tagExpiry)
	if attr != nil {
		dst = append(dst, attr[1:13]...)
	} else {
		dst = binary.BigEndian.AppendUint64(dst, uint64(ns/1e9))
		dst = binary.BigEndian.AppendUint32(dst, uint32(ns%1e9))
	}
	return append(dst, fwd...)
}

// splitChange splits a change-log value after its op byte into the six key parts
// (with their terminators) and the tuple's attributes.
func splitChange(v []byte) (parts, attr []byte) {
	n := 0
	for i, c := range v {
		if c == 0 {
			if n++; n == 6 {
				return v[:i+1], v[i+1:]
			}
		}
	}
	return v, nil
}
