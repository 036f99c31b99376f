package validation

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/relata/relata/check"
	"github.com/relata/relata/tuples"
)

// The `validation` block compares, for each object#relation, the subjects a full
// recursive expansion finds (SpiceDB's membership set): every subject of every tuple
// reached, usersets included, each with the usersets whose tuples hold it
// (`<document:1#viewer>`), and wildcards with the subjects excluded from them.

// found is one subject of a membership set.
type found struct {
	subject  tuples.SubjectRef
	sources  map[string]bool // object#relation whose tuples hold it
	excluded map[string]bool // for wildcards: subjects removed from it
}

// members maps subject text to found subjects.
type members map[string]*found

func (m members) add(s tuples.SubjectRef, source string) {
	k := s.String()
	f := m[k]
	if f == nil {
		f = &found{subject: s, sources: map[string]bool{}, excluded: map[string]bool{}}
		m[k] = f
	}
	if source != "" {
		f.sources[source] = true
	}
}

// wildcardFor returns the wildcard of s's type in m, if any.
func (m members) wildcardFor(s tuples.SubjectRef) *found {
	if s.IsUserset() || s.IsWildcard() {
		return nil
	}
	return m[s.Object.Type+":"+tuples.Wildcard]
}

// has reports whether s is a member of m (directly or through a wildcard).
func (m members) has(s tuples.SubjectRef) bool {
	if m[s.String()] != nil {
		return true
	}
	w := m.wildcardFor(s)
	return w != nil && !w.excluded[s.String()]
}

func clone(f *found) *found {
	return &found{subject: f.subject, sources: maps.Clone(f.sources), excluded: maps.Clone(f.excluded)}
}

func unionOf(a, b members) members {
	out := members{}
	for _, m := range []members{a, b} {
		for k, f := range m {
			have := out[k]
			if have == nil {
				out[k] = clone(f)
				continue
			}
			maps.Copy(have.sources, f.sources)
			if f.subject.IsWildcard() { // a union excludes only what both exclude
				for x := range have.excluded {
					if !f.excluded[x] {
						delete(have.excluded, x)
					}
				}
			}
		}
	}
	for _, f := range out { // a concrete member is not excluded from a wildcard
		if f.subject.IsWildcard() {
			for x := range f.excluded {
				if out[x] != nil {
					delete(f.excluded, x)
				}
			}
		}
	}
	return out
}

func intersectionOf(a, b members) members {
	out := members{}
	for k, f := range a {
		if !b.has(f.subject) {
			continue
		}
		g := clone(f)
		if h := b[k]; h != nil {
			maps.Copy(g.sources, h.sources)
			maps.Copy(g.excluded, h.excluded)
		}
		out[k] = g
	}
	for k, f := range b {
		if out[k] == nil && a.has(f.subject) {
			out[k] = clone(f)
		}
	}
	return out
}

func exclusionOf(a, b members) members {
	out := members{}
	for k, f := range a {
		if f.subject.IsWildcard() {
			if b[k] != nil {
				continue
			}
			g := clone(f)
			for x, h := range b {
				if !h.subject.IsUserset() && h.subject.Object.Type == f.subject.Object.Type {
					g.excluded[x] = true
				}
			}
			out[k] = g
			continue
		}
		if b.has(f.subject) {
			continue
		}
		out[k] = clone(f)
	}
	return out
}

// expander computes membership sets with Expand, one level at a time.
type expander struct {
	e *check.Engine
	r tuples.Reader
}

// expand returns the members of obj#rel; path holds the usersets being expanded, and a
// userset reached again on its own path contributes nothing (as in Check).
func (x *expander) expand(ctx context.Context, obj tuples.ObjectRef, rel string, path map[string]bool) (members, error) {
	key := obj.String() + "#" + rel
	if path[key] {
		return members{}, nil
	}
	path[key] = true
	defer delete(path, key)
	n, err := x.e.Expand(ctx, x.r, check.ExpandRequest{Object: obj, Relation: rel})
	if err != nil {
		return nil, err
	}
	return x.node(ctx, n, key, path)
}

func (x *expander) node(ctx context.Context, n *check.ExpandNode, key string, path map[string]bool) (members, error) {
	switch n.Kind {
	case check.ExpandLeaf:
		out := members{}
		stored := n.Object.Type != ""
		for _, s := range n.Subjects {
			if stored {
				out.add(s, n.Object.String()+"#"+n.Relation)
			} else if !s.IsUserset() {
				out.add(s, key)
			}
			if s.IsUserset() {
				sub, err := x.expand(ctx, s.Object, s.Relation, path)
				if err != nil {
					return nil, err
				}
				out = unionOf(out, sub)
			}
		}
		return out, nil
	case check.ExpandUnion, check.ExpandIntersection, check.ExpandExclusion:
		if len(n.Children) == 0 {
			return members{}, nil
		}
		acc, err := x.node(ctx, n.Children[0], key, path)
		if err != nil {
			return nil, err
		}
		for _, ch := range n.Children[1:] {
			m, err := x.node(ctx, ch, key, path)
			if err != nil {
				return nil, err
			}
			switch n.Kind {
			case check.ExpandUnion:
				acc = unionOf(acc, m)
			case check.ExpandIntersection:
				acc = intersectionOf(acc, m)
			default:
				acc = exclusionOf(acc, m)
			}
		}
		return acc, nil
	}
	return nil, fmt.Errorf("validationfile: unknown expand node kind %v", n.Kind)
}

var (
	expectedSubjectRE = regexp.MustCompile(`^\[(.*)\]\s*(?:is\s+(.*))?$`)
	wildcardExceptRE  = regexp.MustCompile(`^(\S+)\s+-\s+\{([^}]*)\}$`)
	sourceRE          = regexp.MustCompile(`<([^>]+)>`)
)

// expected is one parsed `[subject] is <a>/<b>` line. The `is …` part may be left
// out: then only the subject (and its exclusions) is compared, not where it comes from.
type expected struct {
	subject    tuples.SubjectRef
	excluded   []string
	sources    []string
	anySources bool // no `is …` part
}

func parseExpected(text string) (expected, error) {
	m := expectedSubjectRE.FindStringSubmatch(text)
	if m == nil {
		return expected{}, fmt.Errorf("expected `[subject] is <object#relation>`, got %q", text)
	}
	subj := strings.TrimSpace(m[1])
	if strings.Contains(subj, "[...]") {
		return expected{}, fmt.Errorf("caveated subject %q: %w", subj, tuples.ErrNotSupported)
	}
	var ex expected
	if w := wildcardExceptRE.FindStringSubmatch(subj); w != nil {
		subj = w[1]
		for _, x := range strings.Split(w[2], ",") {
			s, err := tuples.ParseSubject(strings.TrimSpace(x))
			if err != nil {
				return expected{}, fmt.Errorf("excluded subject %q: %w", x, err)
			}
			ex.excluded = append(ex.excluded, s.String())
		}
	}
	s, err := tuples.ParseSubject(subj)
	if err != nil {
		return expected{}, fmt.Errorf("subject %q: %w", subj, err)
	}
	ex.subject = s
	ex.anySources = strings.TrimSpace(m[2]) == ""
	for _, src := range sourceRE.FindAllStringSubmatch(m[2], -1) {
		obj, rel, ok := strings.Cut(src[1], "#")
		o, err := tuples.ParseObject(obj)
		if !ok || err != nil {
			return expected{}, fmt.Errorf("resource %q: expected object#relation", src[1])
		}
		ex.sources = append(ex.sources, o.String()+"#"+rel)
	}
	slices.Sort(ex.sources)
	slices.Sort(ex.excluded)
	return ex, nil
}

func wrap(ss []string) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = "<" + s + ">"
	}
	return strings.Join(out, "/")
}

// runExpectation compares one object#relation's membership set with the expected one.
func runExpectation(ctx context.Context, e *check.Engine, r tuples.Reader, x Expectation) ([]*Error, error) {
	var problems []*Error
	add := func(line int, format string, args ...any) {
		problems = append(problems, &Error{Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	obj, rel, ok := strings.Cut(x.Key.Text, "#")
	o, err := tuples.ParseObject(obj)
	if !ok || err != nil {
		add(x.Key.Line, "validation: %q: expected object#relation", x.Key.Text)
		return problems, nil
	}
	got, err := (&expander{e: e, r: r}).expand(ctx, o, rel, map[string]bool{})
	if err != nil {
		add(x.Key.Line, "validation: %s: %v", x.Key.Text, err)
		return problems, nil
	}
	seen := map[string]bool{}
	var wantSet []string
	for _, l := range x.Subjects {
		want, err := parseExpected(l.Text)
		if err != nil {
			add(l.Line, "validation: %s: %v", x.Key.Text, err)
			continue
		}
		k := want.subject.String()
		if seen[k] {
			add(l.Line, "validation: %s: subject %s is listed twice", x.Key.Text, k)
			continue
		}
		seen[k] = true
		wantSet = append(wantSet, setItem(k, want.excluded))
		f := got[k]
		if f == nil {
			add(l.Line, "validation: %s: missing expected subject %s", x.Key.Text, k)
			continue
		}
		gotSources := slices.Sorted(maps.Keys(f.sources))
		if !want.anySources && !slices.Equal(want.sources, gotSources) {
			add(l.Line, "validation: %s: subject %s: expected %s, got %s", x.Key.Text, k, wrap(want.sources), wrap(gotSources))
		}
		gotExcluded := slices.Sorted(maps.Keys(f.excluded))
		if !slices.Equal(want.excluded, gotExcluded) {
			add(l.Line, "validation: %s: subject %s: expected excluded {%s}, got {%s}", x.Key.Text, k,
				strings.Join(want.excluded, ", "), strings.Join(gotExcluded, ", "))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if !seen[k] {
			f := got[k]
			add(x.Key.Line, "validation: %s: subject %s found but not expected (is %s)", x.Key.Text, k, wrap(slices.Sorted(maps.Keys(f.sources))))
		}
	}
	if len(problems) == 0 {
		return nil, nil
	}
	// Lead with the two sets side by side, then the differences line by line.
	var gotSet []string
	for _, k := range slices.Sorted(maps.Keys(got)) {
		gotSet = append(gotSet, setItem(k, slices.Sorted(maps.Keys(got[k].excluded))))
	}
	summary := &Error{Line: x.Key.Line, Msg: fmt.Sprintf("validation: %s: expected subjects %s; got %s",
		x.Key.Text, setText(wantSet), setText(gotSet))}
	return append([]*Error{summary}, problems...), nil
}

// setItem prints one member of a subject set in the file's notation: `[user:tom]`, or
// `[user:* - {user:ann, user:bob}]` for a wildcard with exclusions.
func setItem(subject string, excluded []string) string {
	if len(excluded) == 0 {
		return "[" + subject + "]"
	}
	return "[" + subject + " - {" + strings.Join(excluded, ", ") + "}]"
}

// setText prints a subject set, "(none)" when it is empty.
func setText(items []string) string {
	if len(items) == 0 {
		return "(none)"
	}
	return strings.Join(items, ", ")
}
