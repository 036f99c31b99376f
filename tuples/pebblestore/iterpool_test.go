package pebblestore

import (
	"context"
	"fmt"
	"testing"

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
