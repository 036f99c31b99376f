package pgstore

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/tuplestest"
)

// metric returns the value of a store metric (with kind, for store_queries_total).
func metric(s *Store, name, kind string) float64 {
	for _, m := range s.Metrics() {
		if m.Name == name && (kind == "" || m.Labels["kind"] == kind) {
			return m.Value
		}
	}
	return -1
}

// TestReadCacheExactAcrossNodes: node B caches what it read; node A writes to those
// scopes; B, reading at a revision after A's write, sees it (never the cached answer),
// and reading the same scopes again at one revision is answered from the cache.
func TestReadCacheExactAcrossNodes(t *testing.T) {
	a, url := openTest(t, nil)
	b := openURL(t, url, nil)
	ctx := context.Background()
	tuplestest.Write(t, a, tuples.OpTouch, "doc:1#viewer@user:anne", "group:g#member@user:anne")

	read := func(s *Store) (subjects, objects []string, contains bool) {
		head, err := s.HeadRevision(ctx)
		require.NoError(t, err)
		r := tuplestest.Reader(t, s, head)
		subjects = tuplestest.Strings(t, r.Subjects(ctx, tuples.ObjectRef{Type: "doc", ID: "1"}, "viewer", ""))
		objects = tuplestest.Strings(t, r.Objects(ctx, tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "bob"}}, "group", "member"))
		contains = tuplestest.Contains(t, r, "doc:1#viewer@user:bob")
		return subjects, objects, contains
	}
	subjects, objects, contains := read(b)
	require.Equal(t, []string{"doc:1#viewer@user:anne"}, subjects)
	require.Empty(t, objects)
	require.False(t, contains)

	queries := metric(b, "store_queries_total", "subjects")
	hits := metric(b, "read_cache_hits_total", "")
	read(b)
	require.Equal(t, queries, metric(b, "store_queries_total", "subjects"), "a second read at the same head is cached")
	require.Greater(t, metric(b, "read_cache_hits_total", ""), hits)

	tuplestest.Write(t, a, tuples.OpTouch, "doc:1#viewer@user:bob", "group:g#member@user:bob")
	subjects, objects, contains = read(b)
	require.Equal(t, []string{"doc:1#viewer@user:anne", "doc:1#viewer@user:bob"}, subjects)
	require.Equal(t, []string{"group:g#member@user:bob"}, objects)
	require.True(t, contains)

	tuplestest.Write(t, a, tuples.OpDelete, "doc:1#viewer@user:bob")
	subjects, _, contains = read(b)
	require.Equal(t, []string{"doc:1#viewer@user:anne"}, subjects)
	require.False(t, contains)
}

// TestBatchedReads runs many concurrent Contains and Subjects reads of a few shapes
// (they group into shared queries when they wait for a connection) and checks every
// answer, with the read cache off so that each read goes to the database; a
// relation with more tuples than one batched answer holds falls back to its own scan.
func TestBatchedReads(t *testing.T) {
	s, _ := openTest(t, &Options{ReadCacheSize: -1, MaxConns: 2})
	ctx := context.Background()
	var ts []string
	for d := range 40 {
		for u := range d % 5 {
			ts = append(ts, fmt.Sprintf("doc:%d#viewer@user:u%d", d, u))
		}
		ts = append(ts, fmt.Sprintf("doc:%d#owner@group:g%d#member", d, d))
	}
	tuplestest.Write(t, s, tuples.OpTouch, ts...)
	big := make([]tuples.Tuple, scanChunk+5)
	for i := range big {
		big[i] = mustTuple(t, fmt.Sprintf("doc:big#viewer@user:b%04d", i))
	}
	rev, err := s.Import(ctx, big, 0)
	require.NoError(t, err)
	r := tuplestest.Reader(t, s, rev)

	var wg sync.WaitGroup
	for round := range 4 {
		for d := range 40 {
			wg.Go(func() {
				got := tuplestest.Strings(t, r.Subjects(ctx, tuples.ObjectRef{Type: "doc", ID: fmt.Sprint(d)}, "viewer", "user"))
				if len(got) != d%5 {
					t.Errorf("doc:%d viewers: %v", d, got)
				}
				for i, g := range got {
					if want := fmt.Sprintf("doc:%d#viewer@user:u%d", d, i); g != want {
						t.Errorf("doc:%d viewer %d: %s, want %s", d, i, g, want)
					}
				}
				u := (d + round) % 5
				ok, err := r.Contains(ctx, mustTuple(t, fmt.Sprintf("doc:%d#viewer@user:u%d", d, u)))
				if err != nil || ok != (u < d%5) {
					t.Errorf("doc:%d contains u%d: %v %v", d, u, ok, err)
				}
				owner, err := r.Contains(ctx, mustTuple(t, fmt.Sprintf("doc:%d#owner@group:g%d#member", d, d)))
				if err != nil || !owner {
					t.Errorf("doc:%d owner: %v %v", d, owner, err)
				}
			})
		}
		wg.Go(func() {
			got := tuplestest.Strings(t, r.Subjects(ctx, tuples.ObjectRef{Type: "doc", ID: "big"}, "viewer", ""))
			if len(got) != len(big) || got[0] != "doc:big#viewer@user:b0000" || got[len(got)-1] != big[len(big)-1].String() {
				t.Errorf("doc:big: %d viewers", len(got))
			}
		})
	}
	wg.Wait()
}

func mustTuple(t testing.TB, text string) tuples.Tuple {
	tu, err := tuples.ParseTuple(text)
	require.NoError(t, err)
	return tu
}

// TestReadsPastTheBatch reads relations around the sizes where a batched answer is
// full (batchRows) and where a scan's chunks end, whole and stopping early, with the
// read cache on and off: every read yields exactly the stored tuples, in order.
func TestReadsPastTheBatch(t *testing.T) {
	sizes := []int{batchRows - 1, batchRows, batchRows + 1, 5 * batchRows, 5*batchRows + 1, scanChunk + 5*batchRows + 3}
	for _, cache := range []int64{-1, 0} {
		t.Run(fmt.Sprintf("cache=%d", cache), func(t *testing.T) {
			s, _ := openTest(t, &Options{ReadCacheSize: cache})
			ctx := context.Background()
			var ts []tuples.Tuple
			for _, n := range sizes {
				for i := range n {
					ts = append(ts,
						mustTuple(t, fmt.Sprintf("doc:d%d#viewer@user:u%05d", n, i)),
						mustTuple(t, fmt.Sprintf("doc:o%05d#viewer@group:g%d#member", i, n)))
				}
			}
			rev, err := s.Import(ctx, ts, 0)
			require.NoError(t, err)
			r := tuplestest.Reader(t, s, rev)
			oa, ok := r.(tuples.ObjectsAfterReader)
			require.True(t, ok)
			for range 2 { // the second round reads through the cache, when it is on
				for _, n := range sizes {
					subjects := tuplestest.Strings(t, r.Subjects(ctx, tuples.ObjectRef{Type: "doc", ID: fmt.Sprint("d", n)}, "viewer", ""))
					g := tuples.SubjectRef{Object: tuples.ObjectRef{Type: "group", ID: fmt.Sprint("g", n)}, Relation: "member"}
					objects := tuplestest.Strings(t, r.Objects(ctx, g, "doc", "viewer"))
					after := tuplestest.Strings(t, oa.ObjectsAfter(ctx, g, "doc", "viewer", "o00002"))
					require.Len(t, subjects, n)
					require.Len(t, objects, n)
					require.Len(t, after, n-3)
					for i := range n {
						require.Equal(t, fmt.Sprintf("doc:d%d#viewer@user:u%05d", n, i), subjects[i])
						require.Equal(t, fmt.Sprintf("doc:o%05d#viewer@group:g%d#member", i, n), objects[i])
					}
					require.Equal(t, objects[3:], after)
					// A caller that stops early gets the first tuples.
					var first []string
					for tu, err := range r.Subjects(ctx, tuples.ObjectRef{Type: "doc", ID: fmt.Sprint("d", n)}, "viewer", "") {
						require.NoError(t, err)
						if first = append(first, tu.String()); len(first) == 17 {
							break
						}
					}
					require.Equal(t, subjects[:min(17, n)], first)
				}
			}
		})
	}
}
