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
// change-log entry each, at one new revision, with one synced commit.

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/relata/relata/tuples"
)

// commitImport commits one kindImport request alone and closes its done channel.
func (s *Store) commitImport(r *request) {
	defer close(r.done)
	if r.schemaRev != 0 && r.schemaRev != s.schemaRev {
		r.err = fmt.Errorf("schema revision %d, validated against %d: %w", s.schemaRev, r.schemaRev, tuples.ErrSchemaChanged)
		return
	}
	rev := tuples.Revision(s.head.Load()) + 1
	b := s.db.NewBatchWithSize(importBatchSize(r.tuples))
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
	s.cache.noteWrites(r.tuples, rev)
	s.publish(rev)
	r.rev, r.n = rev, n
}

// importBatchSize estimates the bytes of the batch that imports ts: three keys of
// about the tuple's text length each, values and record overhead.
func importBatchSize(ts []tuples.Tuple) int {
	n := 64
	for _, t := range ts {
		n += 3*(len(t.Object.Type)+len(t.Object.ID)+len(t.Relation)+len(t.Subject.Object.Type)+
			len(t.Subject.Object.ID)+len(t.Subject.Relation)+16) + 32
	}
	return n
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
		return 0, fmt.Errorf("import: %w", err)
	}
	defer it.Close()

	// Decide what to write, then write the keys grouped by keyspace, each group in
	// ascending order (forward keys, change log, reverse keys), so that the memtable
	// inserts of the commit mostly continue from the previous key.
	type write struct {
		k      importKey
		vs, ve int // versions in vbuf
		rs, re int // reverse key in rbuf
	}
	var (
		writes     = make([]write, 0, len(keys))
		prev       []byte
		vbuf, rbuf []byte
	)
	for _, k := range keys {
		fwd := key(k)
		if bytes.Equal(fwd, prev) {
			continue // a duplicate in the input
		}
		prev = fwd
		vs := len(vbuf)
		t := ts[k.i]
		var cur []byte
		if it.SeekPrefixGE(fwd) && bytes.Equal(it.Key(), fwd) {
			v, err := it.ValueAndErr()
			if err != nil {
				return 0, fmt.Errorf("import: %w", err)
			}
			cur = v
		} else if err := it.Error(); err != nil {
			return 0, fmt.Errorf("import: %w", err)
		}
		next, changed, err := touchVersions(cur, rev, encodeAttr(t))
		if err != nil {
			return 0, err
		}
		if !changed {
			continue
		}
		vbuf = append(vbuf, next...)
		rs := len(rbuf)
		rbuf = reverseKey(rbuf, ts[k.i])
		writes = append(writes, write{k: k, vs: vs, ve: len(vbuf), rs: rs, re: len(rbuf)})
	}
	set := func(k, v []byte) error {
		if err := b.Set(k, v, nil); err != nil {
			return fmt.Errorf("import: %w", err)
		}
		return nil
	}
	for _, w := range writes {
		if err := set(key(w.k), vbuf[w.vs:w.ve]); err != nil {
			return 0, err
		}
	}
	var chg []byte
	for seq, w := range writes {
		t := ts[w.k.i]
		chg = appendParts(append(chg[:0], byte(tuples.OpTouch)), t.Object.Type, t.Object.ID, t.Relation,
			t.Subject.Object.Type, t.Subject.Object.ID, t.Subject.Relation)
		chg = append(chg, encodeAttr(t)...)
		if err := set(changeKey(rev, uint32(seq)), chg); err != nil {
			return 0, err
		}
	}
	slices.SortFunc(writes, func(a, b write) int { return bytes.Compare(rbuf[a.rs:a.re], rbuf[b.rs:b.re]) })
	for _, w := range writes {
		if err := set(rbuf[w.rs:w.re], vbuf[w.vs:w.ve]); err != nil {
			return 0, err
		}
	}
	return len(writes), nil
}
