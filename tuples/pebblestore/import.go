package pebblestore

// The bulk-import path.
//
// An import request is committed alone, never grouped with other requests (the
// committer holds it back like a GC request). Being alone, it needs no indexed
// batch: the committer is the only writer, so the database itself is the head state,
// and the import's writes go to a plain batch, which is several times cheaper to fill
// than an indexed one. The tuples are sorted by forward key and deduplicated first;
// one iterator then checks which are already live with SeekPrefixGE in ascending key
// order (bloom filters skip the tables that cannot hold a key, and each seek
// continues from the last), and only the others are written: both index entries and a
// change-log entry each, in key order, at one new revision, with one synced commit.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/relata/relata/tuples"
)

// commitImport commits one kindImport request alone and closes its done channel.
func (s *Store) commitImport(r *request) {
	defer close(r.done)
	if r.schemaRev != 0 && r.schemaRev != s.schemaRev {
		r.err = fmt.Errorf("pebblestore: schema revision %d, validated against %d: %w", s.schemaRev, r.schemaRev, tuples.ErrSchemaChanged)
		return
	}
	rev := tuples.Revision(s.head.Load()) + 1
	b := s.db.NewBatch()
	defer func() { _ = b.Close() }()
	n, err := s.stageImport(b, r.tuples, rev)
	if err == nil {
		err = s.commitBatch(b, rev)
	}
	if err != nil {
		r.err = err
		s.opts.Logger.Error("pebblestore: import commit failed", "err", err)
		return
	}
	s.publish(rev)
	r.rev, r.n = rev, n
}

// importKey locates one tuple's forward key in stageImport's key buffer.
type importKey struct {
	start, end int
	i          int // index in ts
}

// stageImport writes to b, at rev, every tuple of ts that is not live, and returns
// how many that is.
func (s *Store) stageImport(b *pebble.Batch, ts []tuples.Tuple, rev tuples.Revision) (int, error) {
	if len(ts) == 0 {
		return 0, nil
	}
	buf := make([]byte, 0, len(ts)*64)
	keys := make([]importKey, len(ts))
	for i, t := range ts {
		start := len(buf)
		buf = forwardKey(buf, t)
		keys[i] = importKey{start: start, end: len(buf), i: i}
	}
	key := func(k importKey) []byte { return buf[k.start:k.end] }
	slices.SortFunc(keys, func(a, b importKey) int { return bytes.Compare(key(a), key(b)) })

	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: key(keys[0]),
		UpperBound: append(bytes.Clone(key(keys[len(keys)-1])), 0),
	})
	if err != nil {
		return 0, fmt.Errorf("pebblestore: import: %w", err)
	}
	defer it.Close()

	var (
		n            int
		prev         []byte
		rk, vb, chgv []byte
	)
	for _, k := range keys {
		fwd := key(k)
		if bytes.Equal(fwd, prev) {
			continue // a duplicate in the input
		}
		prev = fwd
		vb = vb[:0]
		if it.SeekPrefixGE(fwd) && bytes.Equal(it.Key(), fwd) {
			cur, err := it.ValueAndErr()
			if err != nil {
				return 0, fmt.Errorf("pebblestore: import: %w", err)
			}
			live, err := liveNow(cur)
			if err != nil {
				return 0, err
			}
			if live {
				continue
			}
			vb = append(vb, cur...)
		} else if err := it.Error(); err != nil {
			return 0, fmt.Errorf("pebblestore: import: %w", err)
		}
		vb = binary.AppendUvarint(vb, uint64(rev))
		vb = append(vb, 0)
		t := ts[k.i]
		rk = reverseKey(rk[:0], t)
		chgv = appendParts(append(chgv[:0], byte(tuples.OpTouch)), t.Object.Type, t.Object.ID, t.Relation,
			t.Subject.Object.Type, t.Subject.Object.ID, t.Subject.Relation)
		for _, kv := range [3][2][]byte{{fwd, vb}, {rk, vb}, {changeKey(rev, uint32(n)), chgv}} {
			if err := b.Set(kv[0], kv[1], nil); err != nil {
				return 0, fmt.Errorf("pebblestore: import: %w", err)
			}
		}
		n++
	}
	return n, nil
}
