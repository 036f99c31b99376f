package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/schema/models"
	"github.com/relata/relata/tuples"
)

// loadWriters is the number of concurrent Write batches when the server has no Import.
const loadWriters = 4

// load writes the default model (unless the server already serves it), then the data
// set: through the Import RPC, or in Write batches when the server does not support
// Import. It then waits until minimize_latency reads see the loaded revision.
func (r *runner) load(ctx context.Context, total int) (PhaseResult, error) {
	res := PhaseResult{Name: "load"}
	if err := r.writeSchema(ctx); err != nil {
		return res, err
	}
	r.report(func(rep Reporter) { rep.Phase("load", 0, int64(total)) })
	var before ProcStats
	if r.cfg.ServerStats != nil {
		before, _ = r.cfg.ServerStats()
	}
	start := time.Now()
	var done atomic.Int64
	stopProgress := r.progressEvery(200*time.Millisecond, &done, start)
	rev, method, err := r.importAll(ctx, &done)
	if status.Code(err) == codes.Unimplemented {
		r.report(func(rep Reporter) { rep.Logf("the server has no Import (%v); loading with Write batches", err) })
		done.Store(0)
		rev, err = r.writeAll(ctx, &done)
		method = "write"
	}
	stopProgress()
	if err != nil {
		return res, fmt.Errorf("bench: loading the data set: %w", err)
	}
	res.Elapsed = time.Since(start)
	res.Consistency = method
	res.Ops = int64(total)
	res.Items = int64(total)
	res.Concurrency = 1
	if method == "write" {
		res.Concurrency = loadWriters
	}
	res.OpsPerSec = float64(total) / res.Elapsed.Seconds()
	res.ItemsPerSc = res.OpsPerSec
	if r.cfg.ServerStats != nil {
		if after, err := r.cfg.ServerStats(); err == nil {
			res.ServerCPU = after.CPU - before.CPU
			res.ServerRSS = after.RSS
		}
	}
	r.loadRev = rev
	r.report(func(rep Reporter) {
		rep.Progress(int64(total), res.Elapsed)
		rep.PhaseDone(res)
	})
	return res, r.settle(ctx)
}

// writeSchema writes the default model unless the server already serves it.
func (r *runner) writeSchema(ctx context.Context) error {
	text, err := models.Schema(models.Default)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	sc := relatav1.NewSchemaServiceClient(r.conns[0])
	cur, err := sc.ReadSchema(ctx, &relatav1.ReadSchemaRequest{Consistency: r.consFull})
	if err == nil && cur.GetSchema() == string(text) {
		return nil
	}
	if _, err := sc.WriteSchema(ctx, &relatav1.WriteSchemaRequest{Schema: string(text)}); err != nil {
		return fmt.Errorf("bench: writing the %s schema: %w", models.Default, err)
	}
	return nil
}

// batches yields the data set in protobuf batches of LoadBatch tuples.
func (r *runner) batches(yield func([]*relatav1.Tuple) bool) {
	batch := make([]*relatav1.Tuple, 0, r.cfg.LoadBatch)
	for t := range r.truth.d.Tuples() {
		batch = append(batch, &relatav1.Tuple{
			Object:   &relatav1.ObjectRef{Type: t.Object.Type, Id: t.Object.ID},
			Relation: t.Relation,
			Subject:  &relatav1.SubjectRef{Object: &relatav1.ObjectRef{Type: t.Subject.Object.Type, Id: t.Subject.Object.ID}, Relation: t.Subject.Relation},
		})
		if len(batch) == cap(batch) {
			if !yield(batch) {
				return
			}
			batch = make([]*relatav1.Tuple, 0, r.cfg.LoadBatch)
		}
	}
	if len(batch) > 0 {
		yield(batch)
	}
}

// importAll streams the data set through one Import call.
func (r *runner) importAll(ctx context.Context, done *atomic.Int64) (tuples.Revision, string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := relatav1.NewRelationshipServiceClient(r.conns[0]).Import(ctx)
	if err != nil {
		return 0, "import", err
	}
	var sendErr error
	for b := range r.batches {
		if sendErr = stream.Send(&relatav1.ImportRequest{Tuples: b}); sendErr != nil {
			break
		}
		done.Add(int64(len(b)))
	}
	// On a send error, the stream's status comes from CloseAndRecv.
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return 0, "import", err
	}
	if sendErr != nil && !errors.Is(sendErr, io.EOF) {
		return 0, "import", sendErr
	}
	rev, err := tuples.ParseZookie(resp.GetWrittenAt())
	if err != nil {
		return 0, "import", fmt.Errorf("bench: import: written_at: %w", err)
	}
	return rev, "import", nil
}

// writeAll writes the data set in TOUCH batches from loadWriters goroutines and
// returns the newest revision written.
func (r *runner) writeAll(ctx context.Context, done *atomic.Int64) (tuples.Revision, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ch := make(chan []*relatav1.Tuple)
	var maxRev atomic.Uint64
	var wg sync.WaitGroup
	for i := range loadWriters {
		rels := relatav1.NewRelationshipServiceClient(r.conns[i%len(r.conns)])
		wg.Go(func() {
			for b := range ch {
				req := &relatav1.WriteRequest{Updates: make([]*relatav1.TupleUpdate, len(b))}
				for j, t := range b {
					req.Updates[j] = &relatav1.TupleUpdate{Operation: relatav1.Operation_OPERATION_TOUCH, Tuple: t}
				}
				resp, err := rels.Write(ctx, req)
				if err != nil {
					cancel(err)
					return
				}
				rev, err := tuples.ParseZookie(resp.GetWrittenAt())
				if err != nil {
					cancel(fmt.Errorf("bench: write: written_at: %w", err))
					return
				}
				for {
					cur := maxRev.Load()
					if uint64(rev) <= cur || maxRev.CompareAndSwap(cur, uint64(rev)) {
						break
					}
				}
				done.Add(int64(len(b)))
			}
		})
	}
	for b := range r.batches {
		select {
		case ch <- b:
			continue
		case <-ctx.Done():
		}
		break
	}
	close(ch)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return 0, err
	}
	return tuples.Revision(maxRev.Load()), nil
}

// settleAtHead waits until minimize_latency reads see the head revision: the data
// set is known to be in its generated state only from there (a previous run's mixed
// phase restores it, but reads up to the server's quantization old still see its
// writes).
func (r *runner) settleAtHead(ctx context.Context) error {
	if len(r.pool) == 0 {
		return nil
	}
	q := &r.pool[0]
	resp, err := relatav1.NewPermissionServiceClient(r.conns[0]).Check(ctx, &relatav1.CheckRequest{Object: q.obj, Permission: q.perm.String(), Subject: q.subj, Consistency: r.consFull})
	if err != nil {
		return fmt.Errorf("bench: first check: %w", err)
	}
	if r.loadRev, err = tuples.ParseZookie(resp.GetCheckedAt()); err != nil {
		return fmt.Errorf("bench: first check: checked_at: %w", err)
	}
	return r.settle(ctx)
}

// settle waits until minimize_latency reads use a revision at least the load's, so
// that the phases judge answers against the loaded data.
func (r *runner) settle(ctx context.Context) error {
	return r.waitMinimizeLatency(ctx, r.loadRev)
}

// waitMinimizeLatency waits until minimize_latency reads use a revision at least rev.
func (r *runner) waitMinimizeLatency(ctx context.Context, rev tuples.Revision) error {
	if len(r.pool) == 0 {
		return nil
	}
	perm := relatav1.NewPermissionServiceClient(r.conns[0])
	q := &r.pool[0]
	deadline := time.Now().Add(r.cfg.Settle)
	for {
		resp, err := perm.Check(ctx, &relatav1.CheckRequest{Object: q.obj, Permission: q.perm.String(), Subject: q.subj, Consistency: r.consMin})
		if err != nil {
			return fmt.Errorf("bench: a check while waiting for revision %d: %w", rev, err)
		}
		if at, err := tuples.ParseZookie(resp.GetCheckedAt()); err == nil && at >= rev {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: minimize_latency reads still use a revision older than %d after %v", rev, r.cfg.Settle)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
