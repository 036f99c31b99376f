package check

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"runtime"
	"testing"

	"github.com/relata/relata/tuples"
)

// bigLookup is a store where user:anne, through group:g, views lookupBigN documents
// (100,000 by default), every tenth of which she is banned from.
type bigLookup struct {
	r    tuples.Reader
	anne tuples.SubjectRef
	n    int
}

// lookupBigN is how many documents BenchmarkLookupResourcesBig's subject may view.
var lookupBigN = flag.Int("lookup-big-n", 100_000, "documents BenchmarkLookupResourcesBig looks up")

func loadBigLookup(b *testing.B, n int) *bigLookup {
	b.Helper()
	s := mkSchema(
		def("user"),
		def("group", rel("member", "user")),
		def("doc", rel("viewer", "user", "group#member"), rel("banned", "user"),
			perm("view", cu("viewer")),
			perm("view_unbanned", excl(cu("viewer"), cu("banned")))),
	)
	ts := []tuples.Tuple{{Object: tuples.ObjectRef{Type: "group", ID: "g"}, Relation: "member",
		Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "anne"}}}}
	for i := 0; i < n; i++ {
		doc := tuples.ObjectRef{Type: "doc", ID: fmt.Sprintf("d%07d", i)}
		ts = append(ts, tuples.Tuple{Object: doc, Relation: "viewer",
			Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "group", ID: "g"}, Relation: "member"}})
		if i%10 == 0 {
			ts = append(ts, tuples.Tuple{Object: doc, Relation: "banned",
				Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "anne"}}})
		}
	}
	// Sub-benchmarks share the store; it closes when the parent benchmark ends.
	return &bigLookup{r: openStore(b).load(b, s, ts), anne: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "anne"}}, n: n}
}

var errEnough = errors.New("enough")

// BenchmarkLookupResourcesBig looks up the documents anne may view
// (-lookup-big-n; view: a plain union; view_unbanned: an exclusion whose candidates are verified
// with Check), without the cache: all of them, the first page of one (limit 1),
// the first result of the full lookup (the consumer stops after one), and a page of
// one in the middle (resumed from a cursor). live-MiB is the heap still in use
// (after a GC) when the middle result is yielded, less the heap before the call:
// what one call holds, which does not grow with the result count.
func BenchmarkLookupResourcesBig(b *testing.B) {
	d := loadBigLookup(b, *lookupBigN)
	ctx := context.Background()
	mid := encodeCursor(fmt.Sprintf("d%07d", *lookupBigN/2))
	for _, p := range []string{"view", "view_unbanned"} {
		for _, c := range []struct {
			name   string
			limit  int
			cursor string
			first  bool
		}{{"all", 0, "", false}, {"limit1", 1, "", false}, {"first", 0, "", true}, {"cursor-limit1", 1, mid, false}} {
			b.Run(p+"/"+c.name, func(b *testing.B) {
				e := New(Options{CacheBytes: -1})
				req := LookupResourcesRequest{ResourceType: "doc", Permission: p, Subject: d.anne, Limit: c.limit, Cursor: c.cursor}
				n := 0
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					n = 0
					err := e.LookupResources(ctx, d.r, req, func(LookupResourcesResult) error {
						n++
						if c.first {
							return errEnough
						}
						return nil
					})
					if err != nil && !errors.Is(err, errEnough) {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(n), "results")
				if c.name == "all" {
					want := *lookupBigN
					if p == "view_unbanned" {
						want = *lookupBigN * 9 / 10
					}
					if n != want {
						b.Fatalf("found %d, want %d", n, want)
					}
					b.ReportMetric(liveDuringLookup(b, e, d, req, d.n/2), "live-MiB")
				}
			})
		}
	}
}

// liveDuringLookup returns the heap in use (MiB, after a GC) when the at-th result
// of req is yielded, less the heap in use before the call.
func liveDuringLookup(b *testing.B, e *Engine, d *bigLookup, req LookupResourcesRequest, at int) float64 {
	var before, during runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n := 0
	err := e.LookupResources(context.Background(), d.r, req, func(LookupResourcesResult) error {
		if n++; n == at {
			runtime.GC()
			runtime.ReadMemStats(&during)
			return errEnough
		}
		return nil
	})
	if !errors.Is(err, errEnough) {
		b.Fatalf("lookup ended before result %d: %v", at, err)
	}
	return (float64(during.HeapAlloc) - float64(before.HeapAlloc)) / (1 << 20)
}

// lookupSubjectsBigN is how many users BenchmarkLookupSubjectsBig's document has.
var lookupSubjectsBigN = flag.Int("lookup-subjects-big-n", 100_000, "users BenchmarkLookupSubjectsBig looks up")

// BenchmarkLookupSubjectsBig looks up the users who may view a document with
// -lookup-subjects-big-n of them (half direct viewers, half through 40 groups; view:
// a union, streamed; view_unbanned: an exclusion, computed whole), without the cache:
// all of them, the first page of one (limit 1), and a page of one in the middle
// (resumed from a cursor). reads is the tuples read from the store per call.
func BenchmarkLookupSubjectsBig(b *testing.B) {
	base, all := bigAudience(b, *lookupSubjectsBigN)
	r := &countingReader{Reader: base}
	ctx := context.Background()
	mid := encodeCursor(all[len(all)/2])
	for _, p := range []string{"view", "view_unbanned"} {
		for _, c := range []struct {
			name   string
			limit  int
			cursor string
		}{{"all", 0, ""}, {"limit1", 1, ""}, {"cursor-limit1", 1, mid}} {
			b.Run(p+"/"+c.name, func(b *testing.B) {
				e := New(Options{CacheBytes: -1})
				req := LookupSubjectsRequest{Object: tuples.ObjectRef{Type: "doc", ID: "d"}, Permission: p, SubjectType: "user", Limit: c.limit, Cursor: c.cursor}
				n := 0
				r.n.Store(0)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					n = 0
					err := e.LookupSubjects(ctx, r, req, func(LookupSubjectsResult) error { n++; return nil })
					if err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(n), "results")
				b.ReportMetric(float64(r.n.Load())/float64(b.N), "reads")
				if c.name == "all" {
					want := len(all)
					if p == "view_unbanned" {
						want = len(all) * 9 / 10
					}
					if n != want {
						b.Fatalf("found %d, want %d", n, want)
					}
				}
			})
		}
	}
}
