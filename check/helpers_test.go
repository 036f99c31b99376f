package check

import (
	"context"
	"iter"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
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

// memReader is a minimal in-memory tuples.Reader, used only while the Pebble store
// does not build.
type memReader struct {
	rev    tuples.Revision
	schema []byte
	tuples []tuples.Tuple
}

func newReader(t testing.TB, s *schema.Schema, ts []tuples.Tuple) tuples.Reader {
	m := &memReader{rev: 7, schema: s.Text()}
	m.tuples = slices.Clone(ts)
	slices.SortFunc(m.tuples, tuples.Compare)
	m.tuples = slices.CompactFunc(m.tuples, func(a, b tuples.Tuple) bool { return tuples.Compare(a, b) == 0 })
	return m
}

func (m *memReader) Revision() tuples.Revision { return m.rev }

func (m *memReader) Contains(ctx context.Context, t tuples.Tuple) (bool, error) {
	_, found := slices.BinarySearchFunc(m.tuples, t, tuples.Compare)
	return found, nil
}

func (m *memReader) Subjects(ctx context.Context, object tuples.ObjectRef, relation, subjectType string) iter.Seq2[tuples.Tuple, error] {
	return m.Read(ctx, tuples.Filter{ObjectType: object.Type, ObjectID: object.ID, Relation: relation, SubjectType: subjectType}, nil)
}

func (m *memReader) Objects(ctx context.Context, subject tuples.SubjectRef, objectType, relation string) iter.Seq2[tuples.Tuple, error] {
	return func(yield func(tuples.Tuple, error) bool) {
		var out []tuples.Tuple
		for _, t := range m.tuples {
			if t.Subject == subject && t.Object.Type == objectType && t.Relation == relation {
				out = append(out, t)
			}
		}
		slices.SortFunc(out, func(a, b tuples.Tuple) int { return strings.Compare(a.Object.ID, b.Object.ID) })
		for _, t := range out {
			if !yield(t, nil) {
				return
			}
		}
	}
}

func (m *memReader) Read(ctx context.Context, f tuples.Filter, after *tuples.Tuple) iter.Seq2[tuples.Tuple, error] {
	return func(yield func(tuples.Tuple, error) bool) {
		for _, t := range m.tuples {
			if after != nil && tuples.Compare(t, *after) <= 0 {
				continue
			}
			if f.Matches(t) && !yield(t, nil) {
				return
			}
		}
	}
}

func (m *memReader) Schema(ctx context.Context) ([]byte, tuples.Revision, error) {
	return m.schema, 1, nil
}
