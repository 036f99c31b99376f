package check

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
)

// countingReader counts the tuples a lookup reads from the store (every tuple any
// scan yields, and every Contains), passing the paging capabilities through.
type countingReader struct {
	tuples.Reader
	n atomic.Int64
}

func (c *countingReader) count(seq iter.Seq2[tuples.Tuple, error]) iter.Seq2[tuples.Tuple, error] {
	return func(yield func(tuples.Tuple, error) bool) {
		for t, err := range seq {
			c.n.Add(1)
			if !yield(t, err) {
				return
			}
		}
	}
}

func (c *countingReader) Contains(ctx context.Context, t tuples.Tuple) (bool, error) {
	c.n.Add(1)
	return c.Reader.Contains(ctx, t)
}

func (c *countingReader) Subjects(ctx context.Context, o tuples.ObjectRef, rel, typ string) iter.Seq2[tuples.Tuple, error] {
	return c.count(c.Reader.Subjects(ctx, o, rel, typ))
}

func (c *countingReader) Objects(ctx context.Context, s tuples.SubjectRef, typ, rel string) iter.Seq2[tuples.Tuple, error] {
	return c.count(c.Reader.Objects(ctx, s, typ, rel))
}

func (c *countingReader) Read(ctx context.Context, f tuples.Filter, after *tuples.Tuple) iter.Seq2[tuples.Tuple, error] {
	return c.count(c.Reader.Read(ctx, f, after))
}

func (c *countingReader) SubjectsAfter(ctx context.Context, o tuples.ObjectRef, rel, typ, after string) iter.Seq2[tuples.Tuple, error] {
	return c.count(c.Reader.(tuples.SubjectsAfterReader).SubjectsAfter(ctx, o, rel, typ, after))
}

func (c *countingReader) ObjectsAfter(ctx context.Context, s tuples.SubjectRef, typ, rel, after string) iter.Seq2[tuples.Tuple, error] {
	return c.count(c.Reader.(tuples.ObjectsAfterReader).ObjectsAfter(ctx, s, typ, rel, after))
}

// bigAudience is a store where doc:d is viewed by n users: half directly, half
// through groups (one nested in another), some both ways; doc:w also by user:*; and
// the documents' banned relation names every tenth user.
func bigAudience(t testing.TB, n int) (tuples.Reader, []string) {
	t.Helper()
	s := mkSchema(
		def("user"),
		def("group", rel("member", "user", "group#member")),
		def("doc", rel("viewer", "user", "group#member", "user:*"), rel("banned", "user"),
			perm("view", union(cu("viewer"), nilRW())),
			perm("view_unbanned", excl(cu("viewer"), cu("banned")))),
	)
	var ts []tuples.Tuple
	add := func(line string) {
		tp, err := tuples.ParseTuple(line)
		require.NoError(t, err)
		ts = append(ts, tp)
	}
	var want []string
	for i := 0; i < n; i++ {
		u := fmt.Sprintf("u%06d", i)
		want = append(want, u)
		switch {
		case i%2 == 0:
			add("doc:d#viewer@user:" + u)
			add("doc:w#viewer@user:" + u)
		default:
			add(fmt.Sprintf("group:g%02d#member@user:%s", i%40, u))
		}
		if i%6 == 0 { // also in a group
			add(fmt.Sprintf("group:g%02d#member@user:%s", i%40, u))
		}
		if i%10 == 0 {
			add("doc:d#banned@user:" + u)
		}
	}
	for g := 0; g < 39; g++ {
		add(fmt.Sprintf("doc:d#viewer@group:g%02d#member", g))
		add(fmt.Sprintf("doc:w#viewer@group:g%02d#member", g))
	}
	add("group:g00#member@group:g39#member") // g39 only through g00
	add("doc:w#viewer@user:*")
	return newReader(t, s, ts), want
}

// TestLookupSubjectsStreams: a subject lookup over a union stops its walk at the
// limit (a page of one reads a small fraction of what the whole lookup reads), and
// pages resumed from cursors give exactly the whole result, in order, with no
// duplicate and no gap; with a wildcard and with an exclusion too.
func TestLookupSubjectsStreams(t *testing.T) {
	ctx := context.Background()
	base, all := bigAudience(t, 20_000)
	r := &countingReader{Reader: base}
	e := New(Options{CacheBytes: -1})
	lookup := func(obj, p string, limit int, cursor string) (ids []string, next string, reads int64) {
		r.n.Store(0)
		err := e.LookupSubjects(ctx, r, LookupSubjectsRequest{Object: tuples.ObjectRef{Type: "doc", ID: obj}, Permission: p,
			SubjectType: "user", Limit: limit, Cursor: cursor},
			func(res LookupSubjectsResult) error {
				require.Empty(t, res.Excluded, "a union excludes no one")
				ids = append(ids, res.Subject.Object.ID)
				next = res.Cursor
				return nil
			})
		require.NoError(t, err)
		return ids, next, r.n.Load()
	}

	full, _, fullReads := lookup("d", "view", 0, "")
	require.Equal(t, all, full)
	one, _, oneReads := lookup("d", "view", 1, "")
	require.Equal(t, all[:1], one)
	t.Logf("tuples read: whole lookup %d, limit 1 %d", fullReads, oneReads)
	require.Less(t, oneReads*20, fullReads, "limit 1 reads %d tuples, the whole lookup %d", oneReads, fullReads)

	// A page in the middle reads about as little as the first.
	_, _, midReads := lookup("d", "view", 1, encodeCursor(all[len(all)/2]))
	require.Less(t, midReads*20, fullReads, "a middle page reads %d tuples, the whole lookup %d", midReads, fullReads)

	// Paging: small pages over a small audience, larger ones over the big one.
	small, smallAll := bigAudience(t, 300)
	for _, tc := range []struct {
		r      tuples.Reader
		all    []string
		limits []int
	}{{small, smallAll, []int{1, 7}}, {base, all, []int{997, 5000}}} {
		r.Reader = tc.r
		for _, p := range []struct {
			obj, perm string
			want      []string
		}{
			{"d", "view", tc.all},
			{"w", "view", append([]string{tuples.Wildcard}, tc.all...)},
			{"d", "view_unbanned", slices.DeleteFunc(slices.Clone(tc.all), func(u string) bool { return u[len(u)-1] == '0' })},
		} {
			for _, limit := range tc.limits {
				var got []string
				cursor := ""
				for page := 0; ; page++ {
					ids, next, _ := lookup(p.obj, p.perm, limit, cursor)
					require.LessOrEqual(t, len(ids), limit)
					got = append(got, ids...)
					if len(ids) < limit {
						break
					}
					cursor = next
					require.Less(t, page, len(p.want)+1, "paging does not end")
				}
				require.Equal(t, p.want, got, "doc:%s#%s in pages of %d", p.obj, p.perm, limit)
			}
		}
	}
}

// TestLookupSubjectsConditionalStreams: over a union with caveats, the subjects found
// are verified as they come: conditional ones are reported with their missing
// context, page by page, and the context given decides them.
func TestLookupSubjectsConditionalStreams(t *testing.T) {
	var lines []string
	for i := 0; i < 300; i++ {
		switch i % 3 {
		case 0:
			lines = append(lines, fmt.Sprintf("doc:1#viewer@user:u%03d", i))
		case 1:
			lines = append(lines, fmt.Sprintf("doc:1#viewer@user:u%03d[is_tuesday]", i))
		default:
			lines = append(lines, fmt.Sprintf(`doc:1#viewer@user:u%03d[on_net:{"cidr":"10.0.0.0/8"}]`, i))
		}
	}
	lines = append(lines, "doc:2#viewer@user:*[is_tuesday]", "doc:2#viewer@user:anne")
	r := caveatReader(t, lines...)
	e := New(Options{})
	ctx := context.Background()
	page := func(obj string, c map[string]any, limit int) []string {
		var all []string
		req := LookupSubjectsRequest{Object: tuples.ObjectRef{Type: "doc", ID: obj}, Permission: "viewer", SubjectType: "user", Context: c, Limit: limit}
		for n := 0; ; n++ {
			got := 0
			err := e.LookupSubjects(ctx, r, req, func(x LookupSubjectsResult) error {
				s := x.Subject.Object.ID
				if x.Conditional {
					s += fmt.Sprintf("?%v", x.MissingContext)
				}
				require.Empty(t, x.Excluded)
				all = append(all, s)
				req.Cursor = x.Cursor
				got++
				return nil
			})
			require.NoError(t, err)
			if limit == 0 || got < limit {
				return all
			}
			require.Less(t, n, 400, "paging does not end")
		}
	}
	var want, tuesday, tuesdayOnNet []string
	for i := 0; i < 300; i++ {
		u := fmt.Sprintf("u%03d", i)
		switch i % 3 {
		case 0:
			want, tuesday, tuesdayOnNet = append(want, u), append(tuesday, u), append(tuesdayOnNet, u)
		case 1:
			want, tuesday, tuesdayOnNet = append(want, u+"?[day]"), append(tuesday, u), append(tuesdayOnNet, u)
		default:
			want, tuesday = append(want, u+"?[ip]"), append(tuesday, u+"?[ip]")
			tuesdayOnNet = append(tuesdayOnNet, u)
		}
	}
	for _, limit := range []int{0, 1, 7} {
		require.Equal(t, want, page("1", nil, limit), "limit %d", limit)
		require.Equal(t, tuesday, page("1", map[string]any{"day": "tuesday"}, limit), "limit %d", limit)
		require.Equal(t, tuesdayOnNet, page("1", map[string]any{"day": "tuesday", "ip": "10.1.2.3"}, limit), "limit %d", limit)
		require.Equal(t, []string{"*?[day]", "anne"}, page("2", nil, limit), "limit %d", limit)
		require.Equal(t, []string{"anne"}, page("2", map[string]any{"day": "monday"}, limit), "limit %d", limit)
	}
}
