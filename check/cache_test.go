package check

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
)

// TestCacheDepth: an answer computed at frame depth d answers at depth d or less, and
// keeps the deepest depth it was computed at.
func TestCacheDepth(t *testing.T) {
	c := newCache(64 << 10)
	c.put("7|k", true, false, 5, 1, &deps{})
	for _, tc := range []struct {
		depth int
		hit   bool
	}{{1, true}, {5, true}, {6, false}} {
		ok, _, hit := c.get("7|k", tc.depth, 1, nil, nil)
		require.Equal(t, tc.hit, hit, "depth %d", tc.depth)
		require.Equal(t, tc.hit, ok)
	}
	c.put("7|k", true, false, 3, 1, &deps{}) // computed shallower: the entry still serves depth 5
	_, _, hit := c.get("7|k", 5, 1, nil, nil)
	require.True(t, hit)
	c.put("7|k", true, false, 9, 1, &deps{})
	_, _, hit = c.get("7|k", 9, 1, nil, nil)
	require.True(t, hit)
}

// changedScopes is a tuples.ScopeTracker under which the scopes in changed were
// written since any revision.
type changedScopes map[tuples.Scope]bool

func (changedScopes) ForwardScope(tuples.ObjectRef, string) tuples.Scope { return 0 }
func (changedScopes) ReverseScope(tuples.SubjectRef, string, string) tuples.Scope {
	return 0
}
func (c changedScopes) UnchangedSince(s tuples.Scope, _ tuples.Revision) bool { return !c[s] }

// TestCacheDepthKeepsDeps: two computations of one answer at one revision at different
// depths may read different tuples (at the deeper one a branch cut by the depth limit
// lets another decide). The entry's depth stays paired with the deps of the
// computation made at that depth, so a later write to what only the deeper one read
// stops the entry from answering at that depth.
func TestCacheDepthKeepsDeps(t *testing.T) {
	var read deps
	read.add(7)
	for _, tc := range []struct {
		name    string
		putsAt  []int // depths of the puts: depth 1 reads nothing, depth 2 reads scope 7
		askAt   int
		changed bool
		hit     bool
	}{
		{"shallow then deep, scope changed", []int{1, 2}, 2, true, false},
		{"deep then shallow, scope changed", []int{2, 1}, 2, true, false},
		{"deep then shallow, scope changed, asked shallow", []int{2, 1}, 1, true, false},
		{"shallow then deep, unchanged", []int{1, 2}, 2, false, true},
		{"shallow then deep, unchanged, asked shallow", []int{1, 2}, 1, false, true},
	} {
		c := newCache(64 << 10)
		for _, d := range tc.putsAt {
			dp := &deps{}
			if d == 2 {
				dp = &read
			}
			c.put("7|k", false, false, d, 1, dp)
		}
		tr := changedScopes{}
		if tc.changed {
			tr[7] = true
		}
		_, _, hit := c.get("7|k", tc.askAt, 2, tr, nil)
		require.Equal(t, tc.hit, hit, tc.name)
	}
}

func TestCacheBound(t *testing.T) {
	c := newCache(64 << 10)
	for i := 0; i < 10000; i++ {
		c.put(fmt.Sprintf("7|doc:%d#view@user:u%d", i, i), i%2 == 0, false, 1, 1, &deps{})
	}
	st := c.stats()
	require.LessOrEqual(t, st.Bytes, int64(64<<10))
	require.Positive(t, st.Evictions)
	require.Positive(t, st.Entries)
	ok, _, hit := c.get("7|doc:9999#view@user:u9999", 1, 1, nil, nil) // recently used: still there
	require.True(t, hit)
	require.False(t, ok)
	_, _, hit = c.get("7|doc:0#view@user:u0", 1, 1, nil, nil) // least recently used: evicted
	require.False(t, hit)
}

// TestCacheSkipsCycles checks that answers computed under a cycle cut are not cached,
// and that others are, at the reader's revision.
func TestCacheSkipsCycles(t *testing.T) {
	ctx := context.Background()
	r := newReader(t, designSchema(), designTuples(t))
	e := New(Options{})
	for _, c := range []string{"doc:1#viewer@user:vic", "group:a#member@user:ben", "tenant:paris#manage@user:ada"} {
		_, err := e.Check(ctx, r, parseCheck(t, c))
		require.NoError(t, err)
	}
	c, err := e.schemaFor(ctx, r)
	require.NoError(t, err)
	q := e.newRequest(r, c, false)
	rev := r.Revision()
	key := func(s string) string {
		req := parseCheck(t, s)
		return q.key(req.Object, req.Permission, req.Subject)
	}
	_, _, hit := e.cache.get(key("doc:1#viewer@user:vic"), 1, rev, nil, nil)
	require.False(t, hit, "contradictory cycle cached")
	_, _, hit = e.cache.get(key("doc:1#restricted@user:vic"), 1, rev, nil, nil)
	require.False(t, hit, "answer under a cycle cut cached")
	// Mutual nesting of monotone usersets is answered from the reverse index, with no
	// cycle cut, so it is cached.
	_, _, hit = e.cache.get(key("group:a#member@user:ben"), 1, rev, nil, nil)
	require.True(t, hit)
	ok, _, hit := e.cache.get(key("tenant:paris#manage@user:ada"), 1, rev, nil, nil)
	require.True(t, hit)
	require.True(t, ok)
	ok, _, hit = e.cache.get(key("tenant:eu#manage@user:ada"), 1, rev, nil, nil) // a sub-problem
	require.True(t, hit)
	require.True(t, ok)
}

// TestCheckConcurrent runs many checks at once on one engine (shared cache and
// in-flight deduplication) and compares them with sequential answers.
func TestCheckConcurrent(t *testing.T) {
	ctx := context.Background()
	r := newReader(t, designSchema(), designTuples(t))
	var reqs []CheckRequest
	for _, obj := range []string{"flow:f1", "flow:f2", "flow:f3", "tenant:eu", "tenant:paris"} {
		for _, p := range []string{"execute", "view", "manage"} {
			for _, u := range []string{"user:ada", "user:olga", "user:sam", "user:bob", "user:x"} {
				o, _ := tuples.ParseObject(obj)
				s, _ := tuples.ParseSubject(u)
				if o.Type == "flow" && p != "execute" || o.Type == "tenant" && p == "execute" {
					continue
				}
				reqs = append(reqs, CheckRequest{Object: o, Permission: p, Subject: s})
			}
		}
	}
	want := make([]bool, len(reqs))
	seq := New(Options{Concurrency: 1, CacheBytes: -1})
	for i, req := range reqs {
		res, err := seq.Check(ctx, r, req)
		require.NoError(t, err)
		want[i] = res.Allowed
	}
	e := New(Options{Concurrency: 4})
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(reqs))
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, req := range reqs {
				res, err := e.Check(ctx, r, req)
				if err != nil {
					errs <- err
					return
				}
				if res.Allowed != want[i] {
					errs <- fmt.Errorf("%v: got %t, want %t", req, res.Allowed, want[i])
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestSlotIndex drives the cache's open-addressing index through inserts and CLOCK-like
// replacements against a map, with hashes crowded into few home positions so that
// probe runs wrap around and backward shifts happen.
func TestSlotIndex(t *testing.T) {
	for _, tc := range []struct {
		name     string
		capacity int
		homes    uint64 // distinct second hashes (home positions) the keys use
	}{
		{"spread", 1000, 1 << 40},
		{"crowded", 1000, 7},
		{"tiny", 3, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			var x slotIndex
			var slots []cacheSlot
			want := map[cacheKey]int32{}
			key := func() cacheKey { return cacheKey{h1: rng.Uint64(), h2: rng.Uint64() % tc.homes} }
			for step := 0; step < 20*tc.capacity; step++ {
				k := key()
				if len(slots) < tc.capacity {
					slots = append(slots, cacheSlot{key: k})
					x.insert(slots, int32(len(slots)-1), tc.capacity)
					want[k] = int32(len(slots) - 1)
				} else {
					i := rng.IntN(len(slots))
					x.remove(slots, slots[i].key)
					delete(want, slots[i].key)
					slots[i] = cacheSlot{key: k}
					x.place(k, int32(i))
					want[k] = int32(i)
				}
				require.Equal(t, len(want), x.n)
				require.LessOrEqual(t, 4*x.n, 3*len(x.table), "load above 3/4")
				if step%17 == 0 {
					for k, i := range want {
						require.Equal(t, i, x.find(slots, k))
					}
					require.Equal(t, int32(-1), x.find(slots, key()))
				}
			}
		})
	}
}
