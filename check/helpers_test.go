package check

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/pebblestore"
)

// Hand-built schemas: the tests below must not depend on the schema parser.

func def(name string, rels ...*schema.Relation) *schema.Definition {
	d := &schema.Definition{Name: name, Relations: map[string]*schema.Relation{}}
	for _, r := range rels {
		d.Relations[r.Name] = r
		d.Order = append(d.Order, r.Name)
	}
	return d
}

// rel is a stored relation; allowed entries are "user", "role#member" or "user:*".
func rel(name string, allowed ...string) *schema.Relation {
	r := &schema.Relation{Name: name, Rewrite: &schema.Rewrite{Kind: schema.This}}
	for _, a := range allowed {
		switch {
		case strings.HasSuffix(a, ":*"):
			r.Allowed = append(r.Allowed, schema.AllowedSubject{Type: strings.TrimSuffix(a, ":*"), Wildcard: true})
		case strings.Contains(a, "#"):
			t, rr, _ := strings.Cut(a, "#")
			r.Allowed = append(r.Allowed, schema.AllowedSubject{Type: t, Relation: rr})
		default:
			r.Allowed = append(r.Allowed, schema.AllowedSubject{Type: a})
		}
	}
	return r
}

func perm(name string, rw *schema.Rewrite) *schema.Relation {
	return &schema.Relation{Name: name, Permission: true, Rewrite: rw}
}

func cu(r string) *schema.Rewrite { return &schema.Rewrite{Kind: schema.ComputedUserset, Relation: r} }
func arrow(ts, r string) *schema.Rewrite {
	return &schema.Rewrite{Kind: schema.TupleToUserset, Tupleset: ts, Relation: r}
}
func arrowAll(ts, r string) *schema.Rewrite {
	return &schema.Rewrite{Kind: schema.TupleToUserset, Tupleset: ts, Relation: r, All: true}
}
func union(ch ...*schema.Rewrite) *schema.Rewrite {
	return &schema.Rewrite{Kind: schema.Union, Children: ch}
}
func inter(ch ...*schema.Rewrite) *schema.Rewrite {
	return &schema.Rewrite{Kind: schema.Intersection, Children: ch}
}
func excl(a, b *schema.Rewrite) *schema.Rewrite {
	return &schema.Rewrite{Kind: schema.Exclusion, Children: []*schema.Rewrite{a, b}}
}
func nilRW() *schema.Rewrite  { return &schema.Rewrite{Kind: schema.Nil} }
func selfRW() *schema.Rewrite { return &schema.Rewrite{Kind: schema.Self} }

func mkSchema(defs ...*schema.Definition) *schema.Schema {
	s := &schema.Schema{Definitions: map[string]*schema.Definition{}}
	for _, d := range defs {
		s.Definitions[d.Name] = d
		s.Order = append(s.Order, d.Name)
	}
	return s
}

func mustTuples(t testing.TB, lines ...string) []tuples.Tuple {
	t.Helper()
	var out []tuples.Tuple
	for _, l := range lines {
		tp, err := tuples.ParseTuple(l)
		require.NoError(t, err, l)
		out = append(out, tp)
	}
	return out
}

// testStore is a real Pebble store on an in-memory file system.
type testStore struct {
	*pebblestore.Store
}

// openStore opens an empty store closed at the end of the test.
func openStore(t testing.TB) testStore {
	t.Helper()
	st, err := pebblestore.Open("db", &pebblestore.Options{FS: vfs.NewMem(), GCInterval: -1})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	return testStore{st}
}

// load writes s (printed from its rewrite trees) and ts, and returns a reader of the
// head revision.
func (st testStore) load(t testing.TB, s *schema.Schema, ts []tuples.Tuple) tuples.Reader {
	t.Helper()
	ctx := context.Background()
	text := s.Text()
	_, err := schema.Compile("test", text)
	require.NoError(t, err, "%s", text)
	srev, err := st.WriteSchema(ctx, text, nil)
	require.NoError(t, err)
	rev := srev
	for chunk := range slices.Chunk(ts, 10000) {
		rev, err = st.Import(ctx, chunk, srev)
		require.NoError(t, err)
	}
	r, err := st.ReaderAt(ctx, rev)
	require.NoError(t, err)
	return r
}

// newReader loads s and ts into a fresh store.
func newReader(t testing.TB, s *schema.Schema, ts []tuples.Tuple) tuples.Reader {
	return openStore(t).load(t, s, ts)
}
