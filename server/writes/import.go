package writes

// Import pipeline. One goroutine takes batches from the caller's next function and
// validates each against the compiled schema at the head. The caller's goroutine
// commits: it gathers validated batches up to maxImportTuples (or to the end of the
// stream, or for at most maxImportGather) and writes them with one store call (with tuples.Importer, one revision
// and one durable sync: a Pebble batch, or for a large import SSTables ingested).
// Few large store calls are much cheaper than many small ones, and an import is
// acknowledged only at its end anyway. Receiving and validating the next batches
// overlaps the commit of the previous ones: up to maxImportTuples tuples (a whole next
// store call) wait for the committer, so that the client keeps sending for as long as
// a store call takes; that bound, in tuples, is the memory in flight besides the call
// being written (and, with a tuples.ImportPreparer store, the next call, prepared
// while this one is written: see Import). When a schema write lands between
// validation and commit, the store refuses the write (tuples.ErrSchemaChanged) and
// the commit validates again against the new schema (through retry).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

const (
	// maxImportTuples bounds the tuples the import committer writes in one store call
	// (one revision, one sync). Pebble ingests an import that large as SSTables, and
	// the fewer and larger they are, the less compactions rewrite when they land in
	// L0: on the peer workload's 947,615-tuple load, 98,304 tuples a call took 5.4-6.1
	// s of server CPU against 8.7 s at 24,576 and 5.6 s at 196,608, whose tuples
	// and tables in flight also cost 50 MB more RSS.
	maxImportTuples = 96 << 10
	// maxImportGather bounds how long the committer gathers batches for one store
	// call, so that a slow stream still commits (and its tuples become readable)
	// as it goes. At 40,000 tuples/s, 200 ms gathered only 8,000 tuples a call.
	maxImportGather = time.Second
	// importQueue is how many validated batches may wait for the committer (the
	// tuples waiting are bounded by maxImportTuples as well). With 16 batches of
	// relata bench's 1,000 tuples, the client stopped after 16,000 tuples of the next
	// store call and the receiver took the other 82,000 only once the committer was
	// back: 0.6-1.2 s a call of 98,000 tuples on PostgreSQL (whose call took 2-3.5
	// s), a fifth of the load's time.
	importQueue = 1024
)

// ImportError is an Import failure: at stream index Index (-1 when no tuple is to
// blame), after Imported tuples of the stream were committed.
type ImportError struct {
	Index    int64
	Imported uint64
	Err      error
}

func (e *ImportError) Error() string { return e.Err.Error() }
func (e *ImportError) Unwrap() error { return e.Err }

// TupleError blames the tuple at stream index i: a *tuples.ValidationError gets the
// field prefix "tuples[i].", anything else the message prefix "tuples[i]: ". Callers
// of Import return it from next for a tuple they could not convert.
func TupleError(i uint64, err error) *ImportError {
	prefix := "tuples[" + strconv.FormatUint(i, 10) + "]"
	var verr *tuples.ValidationError
	if errors.As(err, &verr) {
		c := *verr
		c.Field = prefix + "." + c.Field
		err = &c
	} else {
		err = fmt.Errorf("%s: %w", prefix, err)
	}
	return &ImportError{Index: int64(i), Err: err}
}

// importBatch is a validated batch on its way to the committer, or a group of them
// gathered for one store call (then prepared, or failed to, with an ImportPreparer).
type importBatch struct {
	start     uint64 // stream index of ts[0]
	ts        []tuples.Tuple
	schemaRev tuples.Revision
	weight    int64 // what it holds of the queue's semaphore

	prepared   tuples.PreparedImport
	prepareErr error
}

// Import writes the batches next returns, until it returns io.EOF, with TOUCH
// semantics (see the pipeline above). next is called from another goroutine than
// Import's, one call at a time; its tuples are validated here, against the schema.
// It returns how many tuples it committed and the last revision written (0 when
// none). An error is an *ImportError carrying the index of the tuple to blame and the
// count committed before it, unless next itself failed with another error.
//
// With a store that is a tuples.ImportPreparer, a third goroutine gathers and
// prepares each store call (for PostgreSQL: sorts, encodes and compresses it) while
// the previous one commits, so the database never waits for that work; the memory in
// flight is then one prepared call more.
func (w *Writer) Import(ctx context.Context, next func() ([]tuples.Tuple, error)) (uint64, tuples.Revision, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan importBatch, importQueue)
	queued := semaphore.NewWeighted(int64(w.importCall)) // tuples in batches
	recvErr := make(chan error, 1)
	go func() {
		defer close(batches)
		recvErr <- w.receiveImport(ctx, next, queued, batches)
	}()
	// nextGroup returns the next store call's group, false at the end of the stream.
	nextGroup := func() (importBatch, bool) { return gatherImport(batches, queued, w.importCall) }
	if prep, ok := w.store.(tuples.ImportPreparer); ok {
		groups := make(chan importBatch)
		go func() {
			defer close(groups)
			for {
				g, ok := gatherImport(batches, queued, w.importCall)
				if !ok {
					return
				}
				g.prepared, g.prepareErr = prep.PrepareImport(g.ts)
				select {
				case groups <- g:
				case <-ctx.Done():
					return
				}
			}
		}()
		nextGroup = func() (importBatch, bool) {
			g, ok := <-groups
			return g, ok
		}
	}
	var (
		imported uint64
		rev      tuples.Revision
	)
	for {
		b, ok := nextGroup()
		if !ok {
			break
		}
		r, err := w.commitImport(ctx, b, imported)
		if err != nil {
			return imported, rev, err
		}
		imported += uint64(len(b.ts))
		rev = r
	}
	if err := <-recvErr; err != nil {
		var ie *ImportError
		if errors.As(err, &ie) {
			ie.Imported = imported
		}
		return imported, rev, err
	}
	return imported, rev, nil
}

// gatherImport takes the next batches for one store call: up to max tuples, to
// the end of the stream (or the first bad batch: the receiver then closes the
// channel, and the batches before it are committed), or for at most
// maxImportGather. It reports false at the end of the stream.
func gatherImport(batches <-chan importBatch, queued *semaphore.Weighted, max int) (importBatch, bool) {
	b, ok := <-batches
	if !ok {
		return b, false
	}
	queued.Release(b.weight)
	group, n := []importBatch{b}, len(b.ts)
	timer := time.NewTimer(maxImportGather)
	defer timer.Stop()
gather:
	for n < max {
		select {
		case next, ok := <-batches:
			if !ok {
				break gather
			}
			queued.Release(next.weight)
			group, n = append(group, next), n+len(next.ts)
		case <-timer.C:
			break gather
		}
	}
	if len(group) > 1 {
		b.ts = make([]tuples.Tuple, 0, n)
		for _, g := range group {
			if g.schemaRev != b.schemaRev {
				b.schemaRev = 0 // rare: validate the group against the newest schema
			}
			b.ts = append(b.ts, g.ts...)
		}
	}
	return b, true
}

// receiveImport takes and validates batches and hands them to the committer, until
// the end of the stream or the first error. Each batch holds its tuples' weight of
// queued (at most all of it) until the committer takes it.
func (w *Writer) receiveImport(ctx context.Context, next func() ([]tuples.Tuple, error), queued *semaphore.Weighted, batches chan<- importBatch) error {
	var n uint64
	for {
		ts, err := next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(ts) == 0 {
			continue
		}
		sch, schemaRev, err := w.HeadSchema(ctx)
		if err != nil {
			return err
		}
		if err := validateBatch(sch, ts, n); err != nil {
			return err
		}
		b := importBatch{start: n, ts: ts, schemaRev: schemaRev, weight: int64(min(len(ts), w.importCall))}
		n += uint64(len(ts))
		if err := queued.Acquire(ctx, b.weight); err != nil {
			return err
		}
		select {
		case batches <- b:
		case <-ctx.Done():
			queued.Release(b.weight)
			return ctx.Err()
		}
	}
}

// validateBatch validates ts, whose first tuple has stream index start, against sch.
func validateBatch(sch *schema.Schema, ts []tuples.Tuple, start uint64) *ImportError {
	for i, t := range ts {
		if err := sch.ValidateTuple(t); err != nil {
			return TupleError(start+uint64(i), err)
		}
	}
	return nil
}

// commitImport writes b through retry: a batch validated against an older schema
// (or a coalesced group, schemaRev 0) is validated again against the head's; the
// error of a tuple the new schema refuses names it. imported is the count committed
// before b, for errors.
func (w *Writer) commitImport(ctx context.Context, b importBatch, imported uint64) (tuples.Revision, error) {
	rev, err := w.retry(ctx, "import", true, func(sch *schema.Schema, schemaRev tuples.Revision) (tuples.Revision, error) {
		if b.schemaRev != schemaRev {
			if ie := validateBatch(sch, b.ts, b.start); ie != nil {
				return 0, ie
			}
			b.schemaRev = schemaRev
		}
		if b.prepareErr != nil {
			return 0, b.prepareErr
		}
		if b.prepared != nil {
			return w.store.(tuples.ImportPreparer).ImportPrepared(ctx, b.prepared, b.schemaRev)
		}
		return w.storeImport(ctx, b.ts, b.schemaRev)
	})
	if err == nil {
		return rev, nil
	}
	var ie *ImportError
	if !errors.As(err, &ie) {
		ie = &ImportError{Index: -1, Err: err}
	}
	ie.Imported = imported
	return 0, ie
}
