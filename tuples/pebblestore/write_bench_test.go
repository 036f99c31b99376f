package pebblestore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
)

// Benchmarks run on the OS file system (b.TempDir) with real WAL syncs:
//
//	go test -run XXX -bench . -benchtime 2s ./tuples/pebblestore/

func openDisk(b *testing.B) *Store {
	b.Helper()
	s, err := Open(b.TempDir(), &Options{GCInterval: -1})
	require.NoError(b, err)
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func benchTuple(i int) tuples.Tuple {
	return tuples.Tuple{
		Object:   tuples.ObjectRef{Type: "flow", ID: fmt.Sprintf("flow-%d", i/10)},
		Relation: "granted",
		Subject:  tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: fmt.Sprintf("user-%08d", i)}},
	}
}

// BenchmarkWriteBatched writes batches of 1,000 new tuples, one Write at a time.
// One op is one batch; tuples/s is the figure to compare with the 100,000 target.
func BenchmarkWriteBatched(b *testing.B) {
	s := openDisk(b)
	ctx := context.Background()
	const batch = 1000
	next := 0
	updates := make([]tuples.Update, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for j := range updates {
			updates[j] = tuples.Update{Op: tuples.OpTouch, Tuple: benchTuple(next)}
			next++
		}
		b.StartTimer()
		if _, err := s.Write(ctx, tuples.WriteRequest{Updates: updates}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "tuples/s")
}

// BenchmarkImport imports chunks of 10,000 new tuples.
func BenchmarkImport(b *testing.B) {
	s := openDisk(b)
	ctx := context.Background()
	const chunk = 10_000
	next := 0
	ts := make([]tuples.Tuple, chunk)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for j := range ts {
			ts[j] = benchTuple(next)
			next++
		}
		b.StartTimer()
		if _, err := s.Import(ctx, ts, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*chunk)/b.Elapsed().Seconds(), "tuples/s")
}

// BenchmarkWriteConcurrent has 64 goroutines each writing single-tuple CREATEs; one
// op is one write. Group commit shares each WAL sync among the waiting writers.
func BenchmarkWriteConcurrent(b *testing.B) {
	s := openDisk(b)
	ctx := context.Background()
	const writers = 64
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				req := tuples.WriteRequest{Updates: []tuples.Update{{Op: tuples.OpCreate, Tuple: benchTuple(i)}}}
				if _, err := s.Write(ctx, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

// preload writes n tuples (10 subjects per flow) in batches and returns the store.
func preload(b *testing.B, n int, tupleAt func(int) tuples.Tuple) *Store {
	b.Helper()
	s := openDisk(b)
	ts := make([]tuples.Tuple, 0, 10_000)
	for i := range n {
		ts = append(ts, tupleAt(i))
		if len(ts) == cap(ts) || i == n-1 {
			_, err := s.Import(context.Background(), ts, 0)
			require.NoError(b, err)
			ts = ts[:0]
		}
	}
	// Flush and compact so that reads hit settled sstables, as in a store that has
	// been running for a while, rather than racing the compactions the load started.
	require.NoError(b, s.db.Flush())
	require.NoError(b, s.db.Compact(context.Background(), []byte{0}, []byte{0xff}, true))
	return s
}

// BenchmarkPointRead is a point read of a live tuple at the head among 100,000.
func BenchmarkPointRead(b *testing.B) {
	const n = 100_000
	s := preload(b, n, benchTuple)
	ctx := context.Background()
	r, err := s.ReaderAt(ctx, tuples.Revision(s.head.Load()))
	require.NoError(b, err)
	probes := make([]tuples.Tuple, 1024)
	for i := range probes {
		probes[i] = benchTuple(i * 97 % n)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ok, err := r.Contains(ctx, probes[i%len(probes)])
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkPointReadMissing is a point read of an absent tuple (bloom filters).
func BenchmarkPointReadMissing(b *testing.B) {
	const n = 100_000
	s := preload(b, n, benchTuple)
	ctx := context.Background()
	r, err := s.ReaderAt(ctx, tuples.Revision(s.head.Load()))
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ok, err := r.Contains(ctx, benchTuple(n+i%1024))
		if err != nil || ok {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkSubjects1000 iterates the 1,000 subjects of one object#relation, among
// 100,000 tuples; one op is the whole iteration.
func BenchmarkSubjects1000(b *testing.B) {
	s := preload(b, 100_000, func(i int) tuples.Tuple {
		return tuples.Tuple{
			Object:   tuples.ObjectRef{Type: "flow", ID: fmt.Sprintf("flow-%d", i/1000)},
			Relation: "granted",
			Subject:  tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: fmt.Sprintf("user-%08d", i)}},
		}
	})
	ctx := context.Background()
	r, err := s.ReaderAt(ctx, tuples.Revision(s.head.Load()))
	require.NoError(b, err)
	obj := tuples.ObjectRef{Type: "flow", ID: "flow-42"}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		n := 0
		for _, err := range r.Subjects(ctx, obj, "granted", "") {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 1000 {
			b.Fatal(n)
		}
	}
}

// BenchmarkWriteSingle is one writer writing one tuple at a time: the latency of a
// durable write (one WAL sync each; the committer must not wait for a group).
func BenchmarkWriteSingle(b *testing.B) {
	s := openDisk(b)
	ctx := context.Background()
	b.ReportAllocs()
	for i := range b.N {
		req := tuples.WriteRequest{Updates: []tuples.Update{{Op: tuples.OpCreate, Tuple: benchTuple(i)}}}
		if _, err := s.Write(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadBySubject reads, in canonical order, the 100 tuples of one subject
// among 100,000 (Read with a subject filter and no object type).
func BenchmarkReadBySubject(b *testing.B) {
	s := preload(b, 100_000, func(i int) tuples.Tuple {
		return tuples.Tuple{
			Object:   tuples.ObjectRef{Type: []string{"flow", "tenant"}[i%2], ID: fmt.Sprintf("obj-%d", i/1000)},
			Relation: []string{"granted", "viewer", "admin"}[i%3],
			Subject:  tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: fmt.Sprintf("user-%d", i%1000)}},
		}
	})
	ctx := context.Background()
	r, err := s.ReaderAt(ctx, tuples.Revision(s.head.Load()))
	require.NoError(b, err)
	f := tuples.Filter{SubjectType: "user", SubjectID: "user-42"}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		n := 0
		for _, err := range r.Read(ctx, f, nil) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 100 {
			b.Fatal(n)
		}
	}
}
