package pebblestore

// The bulk-import path.
//
// An import request is committed alone, never grouped with other requests (the
// committer holds it back like a GC request). Being alone, it needs no indexed
// batch: the committer is the only writer, so the database itself is the head state.
// The tuples are sorted by forward key and deduplicated first; one iterator then
// checks which are already live with SeekPrefixGE in ascending key order (bloom
// filters skip the tables that cannot hold a key, and each seek continues from the
// last), and only the others are written: both index entries and a change-log entry
// each, at one new revision (planImport).
//
// How they are written depends on the size. A small import goes through a plain
// Pebble batch and one synced commit, like a write. A large one (at least
// Options.IngestMinTuples tuples to write) is written as sorted SSTables and
// ingested (ingestImport): the WAL, the memtable and the flush that a batch pays for
// every key are skipped, which makes a bulk load several times cheaper in CPU. An
// SSTable must be sorted and the keyspaces interleave differently, so the import
// builds one table per keyspace: change log, forward index, head, reverse index and
// commit time (their tags sort in that order: c < f < m < r < t, so the tables do not
// overlap one another). Pebble ingests the tables of one call atomically, at one
// sequence number above every committed write, recording them with one synced
// MANIFEST edit: the head revision is in the same ingest as the data, so a crash
// either keeps the whole import, or loses all of it and the head stays before it;
// an acknowledged import survives because the ingest is durable when it returns.
//
// The values written are the same as the batch path's: the whole version history
// (the existing versions, if any, plus the new one at rev), which shadows the
// older value of the same key wherever it lies in the LSM. Pebble puts each table
// in the lowest level where it overlaps no stored data and the bounds of no other
// table (of at most one, with Options.Experimental.IngestSplit, which splits that
// one). So the import cuts a keyspace's table wherever a stored key lies between
// two of its keys (found by the same merge with the stored keys that reads the
// existing histories): into an empty store, into a fresh key range, or when the
// input comes roughly in key order, the tables go straight to the bottom level and
// no compaction ever rewrites them. The change log always does (its keys follow
// every earlier revision). When a keyspace's keys interleave with the stored ones
// finely (the reverse index of a load that arrives in forward order does), cutting
// would make too many small tables (maxKeyspaceTables): it gets one table, which
// lands above the data it spans (often in L0), for compactions to merge later like
// a flushed memtable.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/relata/relata/internal/keyorder"
	"github.com/relata/relata/tuples"
)

// importDir is the subdirectory of the data directory where an import builds its
// tables before Pebble ingests them (and moves them into the database). Open removes
// what a crash left there.
const importDir = "import"

// commitImport commits one kindImport request alone and closes its done channel.
func (s *Store) commitImport(r *request) {
	defer close(r.done)
	if r.schemaRev != 0 && r.schemaRev != s.schemaRev {
		r.err = fmt.Errorf("schema revision %d, validated against %d: %w", s.schemaRev, r.schemaRev, tuples.ErrSchemaChanged)
		return
	}
	rev := tuples.Revision(s.head.Load()) + 1
	p, err := s.planImport(r.tuples, rev)
	if err == nil {
		err = s.writeImport(p, rev)
	}
	if err != nil {
		r.err = err
		s.opts.Logger.Error("pebblestore: import commit failed", "err", err)
		return
	}
	s.cache.noteWrites(r.tuples, rev)
	s.publish(rev)
	r.rev, r.n = rev, len(p.writes)
}

// importPlan is what an import writes: for each tuple to write, its forward key,
// its new versions value and its reverse key, in forward key order.
type importPlan struct {
	ts     []tuples.Tuple
	buf    []byte // forward keys
	vbuf   []byte // versions values
	rbuf   []byte // reverse keys
	writes []importWrite
	// fwdSplits are the indexes in writes where a new forward table starts.
	fwdSplits []int
	// byReverse is writes sorted by reverse key (built on demand).
	byReverse []importWrite
}

// importWrite locates one tuple's keys and value in an importPlan's buffers.
type importWrite struct {
	i      int // index in ts
	fs, fe int // forward key in buf
	vs, ve int // versions in vbuf
	rs, re int // reverse key in rbuf
}

func (p *importPlan) fwd(w importWrite) []byte      { return p.buf[w.fs:w.fe] }
func (p *importPlan) versions(w importWrite) []byte { return p.vbuf[w.vs:w.ve] }
func (p *importPlan) rev(w importWrite) []byte      { return p.rbuf[w.rs:w.re] }

// reverseOrder returns the writes sorted by reverse key.
func (p *importPlan) reverseOrder() []importWrite {
	if p.byReverse == nil {
		order := keyOrder(len(p.writes), func(i int) []byte { return p.rev(p.writes[i]) })
		p.byReverse = make([]importWrite, len(order))
		for j, i := range order {
			p.byReverse[j] = p.writes[i]
		}
	}
	return p.byReverse
}

// changeValue appends the change-log value of write w (a TOUCH) to dst.
func (p *importPlan) changeValue(dst []byte, w importWrite) []byte {
	t := p.ts[w.i]
	dst = appendParts(append(dst, byte(tuples.OpTouch)), t.Object.Type, t.Object.ID, t.Relation,
		t.Subject.Object.Type, t.Subject.Object.ID, t.Subject.Relation)
	return append(dst, encodeAttr(t)...)
}

// planImport decides what importing ts at rev writes: every tuple of ts that is not
// live with the same attributes, once, with its history extended by a version at
// rev.
func (s *Store) planImport(ts []tuples.Tuple, rev tuples.Revision) (*importPlan, error) {
	p := &importPlan{ts: ts}
	if len(ts) == 0 {
		return p, nil
	}
	type fkey struct{ start, end, i int }
	buf := make([]byte, 0, len(ts)*64)
	keys := make([]fkey, len(ts))
	for i, t := range ts {
		start := len(buf)
		buf = forwardKey(buf, t)
		keys[i] = fkey{start: start, end: len(buf), i: i}
	}
	p.buf = buf
	key := func(k fkey) []byte { return buf[k.start:k.end] }
	order := keyOrder(len(keys), func(i int) []byte { return key(keys[i]) })
	sorted := make([]fkey, len(keys))
	for j, i := range order {
		sorted[j] = keys[i]
	}
	keys = sorted

	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: key(keys[0]),
		UpperBound: append(bytes.Clone(key(keys[len(keys)-1])), 0),
	})
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer it.Close()
	p.writes = make([]importWrite, 0, len(keys))
	p.rbuf = make([]byte, 0, len(buf)+len(keys))
	// A merge of the sorted import with the stored keys: ex is the first stored key
	// after every key handled so far (exOK false when there is none), so a run of
	// new keys with no stored key among them costs no lookup, and a load into an empty
	// store or a fresh key range none at all. A stored key between two written ones
	// starts a new forward table (fwdSplits), so that each table covers only a gap of
	// the stored data and can go to the bottom of the LSM (see above).
	w := newRunSplitter(it)
	w.seek(key(keys[0]))
	var prev []byte
	for _, k := range keys {
		fwd := key(k)
		if bytes.Equal(fwd, prev) {
			continue // a duplicate in the input
		}
		prev = fwd
		t := ts[k.i]
		stored, split, err := w.advance(fwd)
		if err != nil {
			return nil, err
		}
		var cur []byte
		if stored {
			if cur, err = it.ValueAndErr(); err != nil {
				return nil, fmt.Errorf("import: %w", err)
			}
		}
		vs := len(p.vbuf)
		attr := encodeAttr(t)
		if cur == nil && attr == nil {
			p.vbuf = appendNewVersion(p.vbuf, rev) // the hot path: a new plain tuple
		} else {
			next, changed, err := touchVersions(cur, rev, attr)
			if err != nil {
				return nil, err
			}
			if !changed {
				w.pending = true // a stored key the tables will not hold
				if err := w.next(); err != nil {
					return nil, err
				}
				continue
			}
			p.vbuf = append(p.vbuf, next...)
		}
		if stored {
			if err := w.next(); err != nil {
				return nil, err
			}
		}
		if split && len(p.writes) > 0 {
			p.fwdSplits = append(p.fwdSplits, len(p.writes))
		}
		rs := len(p.rbuf)
		p.rbuf = reverseKey(p.rbuf, t)
		p.writes = append(p.writes, importWrite{i: k.i, fs: k.start, fe: k.end, vs: vs, ve: len(p.vbuf), rs: rs, re: len(p.rbuf)})
	}
	return p, nil
}

// reverseSplits returns the indexes in p.reverseOrder() where a reverse table must
// start because a stored reverse key lies between two written ones; none when there
// would be maxKeyspaceTables tables or more.
func (s *Store) reverseSplits(p *importPlan) ([]int, error) {
	ws := p.reverseOrder()
	if len(ws) == 0 {
		return nil, nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: p.rev(ws[0]),
		UpperBound: append(bytes.Clone(p.rev(ws[len(ws)-1])), 0),
	})
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer it.Close()
	w := newRunSplitter(it)
	w.seek(p.rev(ws[0]))
	var splits []int
	for i, wr := range ws {
		stored, split, err := w.advance(p.rev(wr))
		if err != nil {
			return nil, err
		}
		if stored {
			if err := w.next(); err != nil {
				return nil, err
			}
		}
		if split && i > 0 {
			if splits = append(splits, i); len(splits) >= maxKeyspaceTables {
				return nil, nil // too fine: one table (see maxKeyspaceTables)
			}
		}
	}
	return splits, nil
}

// runSplitter walks the stored keys alongside an ascending sequence of import keys.
type runSplitter struct {
	it *pebble.Iterator
	ex []byte // the iterator's key when exOK: the first stored key not yet passed
	ok bool
	// pending is set when a stored key was passed since the last written key: the
	// next written key starts a new table.
	pending bool
}

func newRunSplitter(it *pebble.Iterator) *runSplitter { return &runSplitter{it: it} }

func (w *runSplitter) seek(k []byte) {
	w.ok = w.it.SeekGE(k)
	if w.ok {
		w.ex = w.it.Key()
	}
}

func (w *runSplitter) next() error {
	w.ok = w.it.Next()
	if w.ok {
		w.ex = w.it.Key()
	}
	return w.err()
}

func (w *runSplitter) err() error {
	if err := w.it.Error(); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return nil
}

// advance moves past the stored keys before k. It reports whether k itself is
// stored (the iterator is then on it) and whether a table must start at k: a stored
// key lies between k and the previous written key.
func (w *runSplitter) advance(k []byte) (stored, split bool, err error) {
	if w.ok && bytes.Compare(w.ex, k) < 0 {
		w.pending = true
		w.seek(k)
		if err := w.err(); err != nil {
			return false, false, err
		}
	}
	split, w.pending = w.pending, false
	return w.ok && bytes.Equal(w.ex, k), split, nil
}

// keyOrder returns 0..n-1 ordered by key(i), bytewise (internal/keyorder: by the
// keys' first 16 bytes as two integers, bytewise only on ties).
func keyOrder(n int, key func(int) []byte) []int32 {
	return keyorder.Order(n, func(i int) (b [16]byte) {
		copy(b[:], key(i))
		return b
	}, func(i, j int32) int { return bytes.Compare(key(int(i)), key(int(j))) })
}

// appendNewVersion appends the versions value of a tuple created at rev with no
// history.
func appendNewVersion(dst []byte, rev tuples.Revision) []byte {
	return append(binary.AppendUvarint(dst, uint64(rev)), 0)
}

// maxKeyspaceTables bounds the tables of one keyspace in one ingest. When an
// import's keys interleave with the stored ones more finely than that, the keyspace
// gets one table instead, which Pebble places above the data it overlaps (often
// in L0) for compactions to merge later, as they merge flushed memtables: each table
// costs a file sync, and many small ones would only make more work for compactions.
const maxKeyspaceTables = 32

// writeImport writes p at rev: ingested as tables when it is large enough
// (Options.IngestMinTuples), else through a batch.
func (s *Store) writeImport(p *importPlan, rev tuples.Revision) error {
	if min := s.opts.IngestMinTuples; min <= 0 || len(p.writes) < min {
		return s.batchImport(p, rev)
	}
	if len(p.fwdSplits) >= maxKeyspaceTables {
		p.fwdSplits = nil
	}
	revSplits, err := s.reverseSplits(p)
	if err != nil {
		return err
	}
	return s.ingestImport(p, revSplits, rev)
}

// importBatchSize estimates the bytes of the batch that writes p.
func importBatchSize(p *importPlan) int {
	return 64 + 2*len(p.buf) + 2*len(p.vbuf) + len(p.rbuf) + 32*len(p.writes)
}

// batchImport writes p at rev through one synced Pebble batch, the keys grouped by
// keyspace, each group in ascending order (forward keys, change log, reverse keys),
// so that the memtable inserts mostly continue from the previous key.
func (s *Store) batchImport(p *importPlan, rev tuples.Revision) error {
	b := s.db.NewBatchWithSize(importBatchSize(p))
	defer func() { _ = b.Close() }()
	set := func(k, v []byte) error {
		if err := b.Set(k, v, nil); err != nil {
			return fmt.Errorf("import: %w", err)
		}
		return nil
	}
	for _, w := range p.writes {
		if err := set(p.fwd(w), p.versions(w)); err != nil {
			return err
		}
	}
	var chg []byte
	for seq, w := range p.writes {
		chg = p.changeValue(chg[:0], w)
		if err := set(changeKey(rev, uint32(seq)), chg); err != nil {
			return err
		}
	}
	for _, w := range p.reverseOrder() {
		if err := set(p.rev(w), p.versions(w)); err != nil {
			return err
		}
	}
	return s.commitBatch(b, rev)
}

// ingestImport writes p at rev as SSTables (change log, forward index, head, reverse
// index, commit time) and ingests them in one atomic, durable step. Tables it built
// are removed unless the ingest succeeded (Pebble then moved them into the
// database). A failure changes nothing; a fatal one in Pebble marks the store broken,
// like a failed commit (health.go).
func (s *Store) ingestImport(p *importPlan, revSplits []int, rev tuples.Revision) (err error) {
	defer s.recoverFatal("ingest", &err)
	fs := s.opts.FS
	dir := fs.PathJoin(s.dir, importDir)
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return storageError("import", err)
	}
	var paths []string
	defer func() {
		if err != nil {
			for _, path := range paths {
				_ = fs.Remove(path)
			}
		}
	}()
	table := func(name string, fill func(w *sstable.Writer) error) error {
		path := fs.PathJoin(dir, strconv.FormatUint(uint64(rev), 10)+"-"+name+".sst")
		f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
		if err != nil {
			return storageError("import", err)
		}
		paths = append(paths, path)
		w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), s.tableOpts)
		if err := fill(w); err != nil {
			_ = w.Close()
			return storageError("import: "+name+" table", err)
		}
		// Close flushes and syncs the file, as Ingest requires.
		if err := w.Close(); err != nil {
			return storageError("import: "+name+" table", err)
		}
		return nil
	}
	err = table("change", func(w *sstable.Writer) error {
		var chg []byte
		for seq, wr := range p.writes {
			chg = p.changeValue(chg[:0], wr)
			if err := w.Set(changeKey(rev, uint32(seq)), chg); err != nil {
				return err
			}
		}
		return nil
	})
	// ranges calls fn with each [start, end) of n items cut at splits.
	ranges := func(n int, splits []int, fn func(i, start, end int) error) error {
		start := 0
		for i, end := range append(splits, n) {
			if err := fn(i, start, end); err != nil {
				return err
			}
			start = end
		}
		return nil
	}
	if err == nil {
		err = ranges(len(p.writes), p.fwdSplits, func(i, start, end int) error {
			return table("forward-"+strconv.Itoa(i), func(w *sstable.Writer) error {
				for _, wr := range p.writes[start:end] {
					if err := w.Set(p.fwd(wr), p.versions(wr)); err != nil {
						return err
					}
				}
				return nil
			})
		})
	}
	if err == nil {
		err = table("head", func(w *sstable.Writer) error {
			return w.Set(keyHead, encodeUint64(uint64(rev)))
		})
	}
	if err == nil {
		ws := p.reverseOrder()
		err = ranges(len(ws), revSplits, func(i, start, end int) error {
			return table("reverse-"+strconv.Itoa(i), func(w *sstable.Writer) error {
				for _, wr := range ws[start:end] {
					if err := w.Set(p.rev(wr), p.versions(wr)); err != nil {
						return err
					}
				}
				return nil
			})
		})
	}
	if err == nil {
		err = table("time", func(w *sstable.Writer) error {
			return w.Set(revKey(tagTime, rev), encodeUint64(uint64(time.Now().UnixNano())))
		})
	}
	if err != nil {
		return err
	}
	stats, err := s.db.IngestWithStats(context.Background(), paths)
	if err != nil {
		return storageError("import: ingest", err)
	}
	paths = nil // Pebble owns them now
	s.opts.Logger.Debug("pebblestore: import ingested", "revision", rev, "tuples", len(p.writes), "tables", len(paths),
		"bytes", stats.Bytes, "l0_bytes", stats.ApproxIngestedIntoL0Bytes, "memtable_overlaps", stats.MemtableOverlappingFiles)
	return nil
}

// removeImportDir removes the tables an import was building when the process
// stopped: never ingested, so never acknowledged.
func removeImportDir(fs vfs.FS, dataDir string) error {
	if err := fs.RemoveAll(fs.PathJoin(dataDir, importDir)); err != nil {
		return fmt.Errorf("open: remove unfinished import tables: %w", err)
	}
	return nil
}
