package check

import (
	"context"
	"fmt"
	"iter"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

// readCounter counts the store reads (point lookups and scans, not the tuples they
// yield: compare countingReader) made through it,
// passing the optional capabilities of the reader it wraps through.
type readCounter struct {
	tuples.Reader
	n *atomic.Int64
}

func (c readCounter) Contains(ctx context.Context, t tuples.Tuple) (bool, error) {
	c.n.Add(1)
	return c.Reader.Contains(ctx, t)
}

func (c readCounter) Subjects(ctx context.Context, o tuples.ObjectRef, rel, st string) iter.Seq2[tuples.Tuple, error] {
	c.n.Add(1)
	return c.Reader.Subjects(ctx, o, rel, st)
}

func (c readCounter) ObjectTuples(ctx context.Context, o tuples.ObjectRef) iter.Seq2[tuples.Tuple, error] {
	c.n.Add(1)
	return c.Reader.(tuples.ObjectReader).ObjectTuples(ctx, o)
}

func (c readCounter) SubjectTuples(ctx context.Context, s tuples.SubjectRef) iter.Seq2[tuples.Tuple, error] {
	c.n.Add(1)
	return c.Reader.(tuples.SubjectReader).SubjectTuples(ctx, s)
}

func (c readCounter) Objects(ctx context.Context, s tuples.SubjectRef, typ, rel string) iter.Seq2[tuples.Tuple, error] {
	c.n.Add(1)
	return c.Reader.Objects(ctx, s, typ, rel)
}

func (c readCounter) ObjectsAfter(ctx context.Context, s tuples.SubjectRef, typ, rel, after string) iter.Seq2[tuples.Tuple, error] {
	c.n.Add(1)
	return c.Reader.(tuples.ObjectsAfterReader).ObjectsAfter(ctx, s, typ, rel, after)
}

func (c readCounter) SubjectsAfter(ctx context.Context, o tuples.ObjectRef, rel, st, after string) iter.Seq2[tuples.Tuple, error] {
	c.n.Add(1)
	return c.Reader.(tuples.SubjectsAfterReader).SubjectsAfter(ctx, o, rel, st, after)
}

func (c readCounter) ForwardScope(o tuples.ObjectRef, rel string) tuples.Scope {
	return c.Reader.(tuples.ScopeTracker).ForwardScope(o, rel)
}

func (c readCounter) ReverseScope(s tuples.SubjectRef, typ, rel string) tuples.Scope {
	return c.Reader.(tuples.ScopeTracker).ReverseScope(s, typ, rel)
}

func (c readCounter) UnchangedSince(s tuples.Scope, since tuples.Revision) bool {
	return c.Reader.(tuples.ScopeTracker).UnchangedSince(s, since)
}

// peerSchema is the schema of the peer workload (../shared/tools/peerbench).
func peerSchema() *schema.Schema {
	return mkSchema(def("user"),
		def("role", rel("member", "user", "role#member")),
		def("tenant", rel("parent", "tenant"), rel("admin", "user", "role#member"), rel("developer", "user", "role#member"),
			rel("viewer", "user", "role#member"),
			perm("manage", union(cu("admin"), arrow("parent", "manage"))),
			perm("build", union(cu("developer"), cu("manage"))),
			perm("view", union(cu("viewer"), cu("build")))),
		def("flow", rel("tenant", "tenant"), rel("owner", "user"), rel("granted", "user", "role#member", "user:*"),
			rel("denied", "user", "role#member"),
			perm("execute", excl(union(cu("owner"), cu("granted"), arrow("tenant", "view")), cu("denied")))))
}

// peerTuples generates the peer workload's shape (tenants in a two-level tree, roles
// nested in chains of three, users in roles, flows with owners and a few grants and
// denials) at a small scale.
func peerTuples(parents, children, users, roles, flows int) []tuples.Tuple {
	rng := rand.New(rand.NewPCG(7, 7))
	var out []tuples.Tuple
	add := func(line string) {
		tp, err := tuples.ParseTuple(line)
		if err != nil {
			panic(err)
		}
		out = append(out, tp)
	}
	nt := parents + parents*children
	name := func(t int) string {
		if t < parents {
			return fmt.Sprintf("p%d", t)
		}
		return fmt.Sprintf("c%d", t-parents)
	}
	for t := parents; t < nt; t++ {
		add(fmt.Sprintf("tenant:%s#parent@tenant:%s", name(t), name((t-parents)/children)))
	}
	for t := 0; t < nt; t++ {
		for r := 0; r+1 < roles; r++ {
			if r%3 != 2 {
				add(fmt.Sprintf("role:%sr%d#member@role:%sr%d#member", name(t), r+1, name(t), r))
			}
		}
		for r := 2; r < roles; r += 3 {
			rel := []string{"admin", "developer", "developer", "viewer", "viewer", "viewer"}
			if c := r / 3; c < len(rel) {
				add(fmt.Sprintf("tenant:%s#%s@role:%sr%d#member", name(t), rel[c], name(t), r))
			}
		}
		for k := 0; k < users; k++ {
			if rng.Float64() < 0.75 {
				add(fmt.Sprintf("role:%sr%d#member@user:%su%d", name(t), rng.IntN(roles), name(t), k))
			}
			if x := rng.Float64(); x < 0.3 {
				add(fmt.Sprintf("tenant:%s#%s@user:%su%d", name(t), []string{"admin", "developer", "viewer"}[int(x/0.1)], name(t), k))
			}
		}
	}
	for t := parents; t < nt; t++ {
		for f := 0; f < flows; f++ {
			fl := fmt.Sprintf("flow:%sf%d", name(t), f)
			add(fmt.Sprintf("%s#tenant@tenant:%s", fl, name(t)))
			add(fmt.Sprintf("%s#owner@user:%su%d", fl, name(t), rng.IntN(users)))
			switch x := rng.Float64(); {
			case x < 0.015:
				add(fmt.Sprintf("%s#granted@user:%su%d", fl, name(rng.IntN(nt)), rng.IntN(users)))
			case x < 0.025:
				add(fmt.Sprintf("%s#granted@role:%sr%d#member", fl, name(t), rng.IntN(roles)))
			case x < 0.05:
				add(fmt.Sprintf("%s#denied@user:%su%d", fl, name(t), rng.IntN(users)))
			}
		}
	}
	return out
}

// BenchmarkClosurePeer measures, on the peer workload's shape (110 tenants, 20 nested
// roles and 200 users each, 50 flows per child tenant), uncached checks of
// flow#execute and lookups of the flows a user may execute, without and with the
// nested-set index: store reads per operation (reads/op, deterministic) and
// allocations. It also reports the index's size.
func BenchmarkClosurePeer(b *testing.B) {
	ctx := context.Background()
	st := openStore(b)
	r0 := st.load(b, peerSchema(), peerTuples(10, 10, 200, 20, 50))
	rng := rand.New(rand.NewPCG(1, 1))
	type q struct{ flow, user tuples.SubjectRef }
	var qs []q
	for i := 0; i < 1000; i++ {
		t := 10 + rng.IntN(100)
		ut := t
		if rng.IntN(4) == 0 {
			ut = rng.IntN(10)
		}
		name := func(t int) string {
			if t < 10 {
				return fmt.Sprintf("p%d", t)
			}
			return fmt.Sprintf("c%d", t-10)
		}
		qs = append(qs, q{
			flow: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "flow", ID: fmt.Sprintf("%sf%d", name(t), rng.IntN(50))}},
			user: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: fmt.Sprintf("%su%d", name(ut), rng.IntN(200))}},
		})
	}
	for _, indexed := range []bool{false, true} {
		e := New(Options{CacheBytes: -1})
		if indexed {
			fl := &follower{e: e, src: st}
			require.NoError(b, fl.step(ctx, time.Now()))
			cs := e.ClosureStats()
			b.Logf("index: %d sets, %d ids, %d entries, %d bytes", cs.Sets, cs.Nodes, cs.Entries, cs.Bytes)
			// Write amplification: membership changes one write each (a user into a
			// role, a role chain nested into the next, a child tenant moved to another
			// parent), then undone; entries changed per edge changed.
			for _, kind := range []string{"user-in-role", "role-in-role", "tenant-parent"} {
				before := e.ClosureStats()
				writes := 0
				for i := 0; i < 50; i++ {
					c := fmt.Sprintf("c%d", i)
					var add, del []string
					switch kind {
					case "user-in-role":
						add = []string{fmt.Sprintf("role:%sr4#member@user:%sx%d", c, c, i)}
					case "role-in-role":
						add = []string{fmt.Sprintf("role:%sr5#member@role:%sr2#member", c, c)}
					case "tenant-parent":
						del = []string{fmt.Sprintf("tenant:%s#parent@tenant:p%d", c, i/10)}
						add = []string{fmt.Sprintf("tenant:%s#parent@tenant:p%d", c, (i/10+1)%10)}
					}
					for _, undo := range []bool{false, true} {
						var ups []tuples.Update
						for _, l := range add {
							op := tuples.OpTouch
							if undo {
								op = tuples.OpDelete
							}
							ups = append(ups, tuples.Update{Op: op, Tuple: mustTuples(b, l)[0]})
						}
						for _, l := range del {
							op := tuples.OpDelete
							if undo {
								op = tuples.OpTouch
							}
							ups = append(ups, tuples.Update{Op: op, Tuple: mustTuples(b, l)[0]})
						}
						_, err := st.Write(ctx, tuples.WriteRequest{Updates: ups})
						require.NoError(b, err)
						writes++
					}
				}
				require.NoError(b, fl.step(ctx, time.Now()))
				after := e.ClosureStats()
				b.Logf("%s: %d writes, %d edge changes, %d closure entries changed (%.2f per write)", kind, writes,
					after.EdgeChanges-before.EdgeChanges, after.EntryChanges-before.EntryChanges,
					float64(after.EntryChanges-before.EntryChanges)/float64(writes))
			}
		}
		var n atomic.Int64
		r := readCounter{Reader: r0, n: &n}
		b.Run(fmt.Sprintf("check/indexed=%v", indexed), func(b *testing.B) {
			n.Store(0)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				x := qs[i%len(qs)]
				if _, err := e.Check(ctx, r, CheckRequest{Object: x.flow.Object, Permission: "execute", Subject: x.user}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n.Load())/float64(b.N), "reads/op")
		})
		b.Run(fmt.Sprintf("lookup/indexed=%v", indexed), func(b *testing.B) {
			n.Store(0)
			b.ReportAllocs()
			results := 0
			for i := 0; i < b.N; i++ {
				x := qs[i%len(qs)]
				err := e.LookupResources(ctx, r, LookupResourcesRequest{ResourceType: "flow", Permission: "execute", Subject: x.user},
					func(LookupResourcesResult) error { results++; return nil })
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n.Load())/float64(b.N), "reads/op")
			b.ReportMetric(float64(results)/float64(b.N), "results/op")
		})
	}
}

// BenchmarkLookupPeerFull looks up the flows a user may execute on the peer
// workload at its full size (1,000 flows per child tenant, 230k tuples, about 1,100
// results a lookup), with the nested-set index, as the server runs it.
func BenchmarkLookupPeerFull(b *testing.B) {
	ctx := context.Background()
	st := openStore(b)
	r0 := st.load(b, peerSchema(), peerTuples(10, 10, 200, 20, 1000))
	rng := rand.New(rand.NewPCG(1, 1))
	var users []tuples.SubjectRef
	for i := 0; i < 200; i++ {
		t := rng.IntN(110)
		name := fmt.Sprintf("c%d", t-10)
		if t < 10 {
			name = fmt.Sprintf("p%d", t)
		}
		users = append(users, tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: fmt.Sprintf("%su%d", name, rng.IntN(200))}})
	}
	for _, cached := range []bool{false, true} {
		b.Run(fmt.Sprintf("cached=%v", cached), func(b *testing.B) {
			opts := Options{CacheBytes: -1}
			if cached {
				opts = Options{} // the check cache and the stream cache at their defaults
			}
			e := New(opts)
			fl := &follower{e: e, src: st}
			require.NoError(b, fl.step(ctx, time.Now()))
			var n atomic.Int64
			r := readCounter{Reader: r0, n: &n}
			b.ReportAllocs()
			b.ResetTimer()
			results := 0
			for i := 0; i < b.N; i++ {
				err := e.LookupResources(ctx, r, LookupResourcesRequest{ResourceType: "flow", Permission: "execute", Subject: users[i%len(users)]},
					func(LookupResourcesResult) error { results++; return nil })
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n.Load())/float64(b.N), "reads/op")
			b.ReportMetric(float64(results)/float64(b.N), "results/op")
			if cached {
				s := e.StreamCacheStats()
				b.ReportMetric(float64(s.Hits)/float64(max(1, s.Hits+s.Misses+s.Stale)), "stream-hit-ratio")
			}
		})
	}
}

// BenchmarkCheckPeerFull checks flow#execute on the peer workload at its full size
// (230k tuples) as the server does (default caches, the nested-set index), over
// 100,000 distinct queries in peerbench's mix (the flow's tenant's users, its
// parent's, anyone's), each asked once for b.N up to 100,000: mostly uncached checks,
// whose store reads miss the read cache the first time a flow or user is met. It
// reports the process's CPU time a check (cpu-us/op, from /proc: steadier than
// ns/op on a shared machine) and reads a check.
func BenchmarkCheckPeerFull(b *testing.B) {
	ctx := context.Background()
	st := openStore(b)
	r0 := st.load(b, peerSchema(), peerTuples(10, 10, 200, 20, 1000))
	rng := rand.New(rand.NewPCG(3, 3))
	name := func(t int) string {
		if t < 10 {
			return fmt.Sprintf("p%d", t)
		}
		return fmt.Sprintf("c%d", t-10)
	}
	type q struct{ flow, user tuples.ObjectRef }
	qs := make([]q, 0, 100000)
	for range cap(qs) {
		t := 10 + rng.IntN(100)
		ut := t
		switch x := rng.Float64(); {
		case x < 0.15:
			ut = (t - 10) / 10 // its parent
		case x < 0.4:
			ut = rng.IntN(110)
		}
		qs = append(qs, q{
			flow: tuples.ObjectRef{Type: "flow", ID: fmt.Sprintf("%sf%d", name(t), rng.IntN(1000))},
			user: tuples.ObjectRef{Type: "user", ID: fmt.Sprintf("%su%d", name(ut), rng.IntN(200))},
		})
	}
	e := New(Options{})
	fl := &follower{e: e, src: st}
	require.NoError(b, fl.step(ctx, time.Now()))
	var n atomic.Int64
	r := readCounter{Reader: r0, n: &n}
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		x := qs[i%len(qs)]
		if _, err := e.Check(ctx, r, CheckRequest{Object: x.flow, Permission: "execute", Subject: tuples.SubjectRef{Object: x.user}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-c0)/1e3/float64(b.N), "cpu-us/op")
	b.ReportMetric(float64(n.Load())/float64(b.N), "reads/op")
}

// cpuTime is the process's user and system CPU time so far, from /proc/self/stat
// (fields 14 and 15, in ticks of 10 ms); 0 where there is none.
func cpuTime() time.Duration {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from the third on
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
