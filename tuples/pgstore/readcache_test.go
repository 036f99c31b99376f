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
