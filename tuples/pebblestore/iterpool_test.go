package pebblestore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
)

// TestIterPoolSeesNewRevisions interleaves writes with scans, so that idle iterators
// created before a write are in the pool when a reader at the new revision scans:
// every scan must see exactly the tuples live at its revision.
func TestIterPoolSeesNewRevisions(t *testing.T) {
	s := openMem(t, nil)
	ctx := context.Background()
	obj := tuples.ObjectRef{Type: "flow", ID: "f1"}
	count := func(rev tuples.Revision) int {
		r, err := s.ReaderAt(ctx, rev)
		require.NoError(t, err)
		n := 0
		for _, err := range r.Subjects(ctx, obj, "granted", "") {
			require.NoError(t, err)
			n++
		}
		return n
	}
	var revs []tuples.Revision
	for i := range 20 {
		// Fill the pool with iterators of the current view.
		if len(revs) > 0 {
			require.Equal(t, i, count(revs[len(revs)-1]))
		}
		rev, err := s.Write(ctx, tuples.WriteRequest{Updates: []tuples.Update{{Op: tuples.OpTouch, Tuple: tuples.Tuple{
			Object: obj, Relation: "granted", Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: fmt.Sprint("u", i)}},
		}}}})
		require.NoError(t, err)
		revs = append(revs, rev)
		require.Equal(t, i+1, count(rev), "scan at the new revision %d", rev)
	}
	for i, rev := range revs {
		require.Equal(t, i+1, count(rev), "scan at the old revision %d", rev)
	}
	// Close with idle iterators in the pool.
	require.NoError(t, s.Close())
}

// TestIterPoolRetiresBuriedIterators: an iterator past maxIterAge below younger ones
// in the pool is closed by the next get, not kept (with the memtables and sstables of
// its view) while readers keep taking and returning the younger ones on top.
func TestIterPoolRetiresBuriedIterators(t *testing.T) {
	s := openMem(t, nil)
	ctx := context.Background()
	_, err := s.Write(ctx, tuples.WriteRequest{Updates: []tuples.Update{{Op: tuples.OpTouch, Tuple: tuples.Tuple{
		Object: tuples.ObjectRef{Type: "flow", ID: "f1"}, Relation: "granted", Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "u1"}},
	}}}})
	require.NoError(t, err)
	head := tuples.Revision(s.head.Load())
	old, err := s.iters.get(s, head)
	require.NoError(t, err)
	young, err := s.iters.get(s, head)
	require.NoError(t, err)
	s.iters.put(old)
	s.iters.put(young)
	// The bottom one was created long ago (as if the pool had kept it since).
	s.iters.mu.Lock()
	require.Len(t, s.iters.mu.idle, 2)
	require.Same(t, old, s.iters.mu.idle[0])
	old.born = time.Now().Add(-10 * maxIterAge)
	s.iters.mu.Unlock()

	// A reader takes and returns the young one, as steady load does.
	pi, err := s.iters.get(s, head)
	require.NoError(t, err)
	require.Same(t, young, pi)
	s.iters.put(pi)

	s.iters.mu.Lock()
	defer s.iters.mu.Unlock()
	for _, pi := range s.iters.mu.idle {
		require.NotSame(t, old, pi, "the iterator past maxIterAge is still pooled")
		require.Less(t, time.Since(pi.born), maxIterAge)
	}
}
