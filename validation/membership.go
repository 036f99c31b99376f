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
	excluded map[string]bool // for wildcards: subjects removed from it, true when removed only under a caveat
	// caveated: the subject is a member only under a caveat (zed marks it `[...]`).
	caveated bool
}

// members maps subject text to found subjects.
type members map[string]*found

// add records s, from source, caveated or not: a subject found both ways is a member
// without condition.
func (m members) add(s tuples.SubjectRef, source string, caveated bool) {
	k := s.String()
	f := m[k]
	if f == nil {
		f = &found{subject: s, sources: map[string]bool{}, excluded: map[string]bool{}, caveated: caveated}
		m[k] = f
	} else {
		f.caveated = f.caveated && caveated
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

// has reports whether s is a member of m, under a caveat or not.
func (m members) has(s tuples.SubjectRef) bool {
	in, _ := m.status(s)
	return in
}

// status reports whether s is a member of m (directly or through a wildcard), and
// whether only under a caveat.
func (m members) status(s tuples.SubjectRef) (in, caveated bool) {
	direct := m[s.String()]
	viaWild := false
	wildCaveated := false
	if w := m.wildcardFor(s); w != nil {
		if ex, removed := w.excluded[s.String()]; !removed || ex {
			viaWild = true
			wildCaveated = w.caveated || removed // removed only under a caveat
		}
	}
	switch {
	case direct != nil && viaWild:
		return true, direct.caveated && wildCaveated
	case direct != nil:
		return true, direct.caveated
	case viaWild:
		return true, wildCaveated
	}
	return false, false
}

func clone(f *found) *found {
	return &found{subject: f.subject, sources: maps.Clone(f.sources), excluded: maps.Clone(f.excluded), caveated: f.caveated}
}

// markAll returns m with every member caveated (reached through a caveated tuple).
func markAll(m members) members {
	out := members{}
	for k, f := range m {
		g := clone(f)
		g.caveated = true
		out[k] = g
	}
	return out
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
			have.caveated = have.caveated && f.caveated
			if f.subject.IsWildcard() { // a union excludes only what both exclude
				for x, c := range have.excluded {
					fc, ok := f.excluded[x]
					if !ok {
						delete(have.excluded, x)
					} else {
						have.excluded[x] = c || fc
					}
				}
			}
		}
	}
	for _, f := range out { // a concrete member is not excluded from a wildcard
		if f.subject.IsWildcard() {
			for x := range f.excluded {
				if g := out[x]; g != nil {
					if g.caveated {
						f.excluded[x] = true // excluded unless the member's caveat holds
					} else {
						delete(f.excluded, x)
					}
				}
			}
		}
	}
	return out
}

func intersectionOf(a, b members) members {
	out := members{}
	for k, f := range a {
		in, c := b.status(f.subject)
		if !in {
			continue
		}
		g := clone(f)
		g.caveated = g.caveated || c
		if h := b[k]; h != nil {
			maps.Copy(g.sources, h.sources)
			for x, hc := range h.excluded {
				g.excluded[x] = g.excluded[x] || hc
			}
		}
		out[k] = g
	}
	for k, f := range b {
		if out[k] != nil {
			continue
		}
		if in, c := a.status(f.subject); in {
			g := clone(f)
			g.caveated = g.caveated || c
			out[k] = g
		}
	}
	return out
}

func exclusionOf(a, b members) members {
	out := members{}
	for k, f := range a {
		if f.subject.IsWildcard() {
			g := clone(f)
			if h := b[k]; h != nil {
				if !h.caveated {
					continue
				}
				g.caveated = true // minus a caveated wildcard: holds only under a caveat
			}
			for x, h := range b {
				if !h.subject.IsUserset() && !h.subject.IsWildcard() && h.subject.Object.Type == f.subject.Object.Type {
					g.excluded[x] = g.excluded[x] || h.caveated
				}
			}
			out[k] = g
			continue
		}
		in, c := b.status(f.subject)
		if in && !c {
			continue
		}
		g := clone(f)
		g.caveated = g.caveated || in
		out[k] = g
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
		for i, s := range n.Subjects {
			caveated := i < len(n.Caveated) && n.Caveated[i]
			if stored {
				out.add(s, n.Object.String()+"#"+n.Relation, caveated)
			} else if !s.IsUserset() {
				out.add(s, key, caveated)
			}
			if s.IsUserset() {
				sub, err := x.expand(ctx, s.Object, s.Relation, path)
				if err != nil {
					return nil, err
				}
				if caveated {
					sub = markAll(sub)
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
	return nil, fmt.Errorf("unknown expand node kind %v", n.Kind)
}

var (
	expectedSubjectRE = regexp.MustCompile(`^\[(.*)\]\s*(?:is\s+(.*))?$`)
	wildcardExceptRE  = regexp.MustCompile(`^(\S+)\s+-\s+\{([^}]*)\}$`)
	sourceRE          = regexp.MustCompile(`<([^>]+)>`)
)

// expected is one parsed `[subject] is <a>/<b>` line. The `is …` part may be left
// out: then only the subject (and its exclusions) is compared, not where it comes from.
type expected struct {
	subject tuples.SubjectRef
	// caveated: marked `[...]`, a member only under a caveat.
	caveated bool
	// excluded lists the subjects excluded from a wildcard, `[...]` marked when
	// excluded only under a caveat.
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
	var ex expected
	if w := wildcardExceptRE.FindStringSubmatch(subj); w != nil {
		subj = w[1]
		for _, x := range strings.Split(w[2], ",") {
			x, caveated := cutMark(strings.TrimSpace(x))
			s, err := tuples.ParseSubject(x)
			if err != nil {
				return expected{}, fmt.Errorf("excluded subject %q: %w", x, err)
			}
			ex.excluded = append(ex.excluded, marked(s.String(), caveated))
		}
	}
	subj, ex.caveated = cutMark(subj)
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

// caveatMark is how zed marks a subject that is a member only under a caveat.
const caveatMark = "[...]"

// cutMark removes a trailing caveat mark and reports whether there was one.
func cutMark(s string) (string, bool) {
	out, ok := strings.CutSuffix(s, caveatMark)
	return strings.TrimSpace(out), ok
}

// marked is s with the caveat mark when caveated.
func marked(s string, caveated bool) string {
	if caveated {
		return s + caveatMark
	}
	return s
}

// excludedText lists f's exclusions, marked, sorted.
func excludedText(f *found) []string {
	var out []string
	for x, c := range f.excluded {
		out = append(out, marked(x, c))
	}
	slices.Sort(out)
	return out
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
		add(x.Key.Line, "%q: expected object#relation", x.Key.Text)
		return problems, nil
	}
	got, err := (&expander{e: e, r: r}).expand(ctx, o, rel, map[string]bool{})
	if err != nil {
		add(x.Key.Line, "%s: %v", x.Key.Text, err)
		return problems, nil
	}
	seen := map[string]bool{}
	var wantSet []string
	for _, l := range x.Subjects {
		want, err := parseExpected(l.Text)
		if err != nil {
			add(l.Line, "%s: %v", x.Key.Text, err)
			continue
		}
		k := want.subject.String()
		if seen[k] {
			add(l.Line, "%s: subject %s is listed twice", x.Key.Text, k)
			continue
		}
		seen[k] = true
		wantSet = append(wantSet, setItem(marked(k, want.caveated), want.excluded))
		f := got[k]
		if f == nil {
			add(l.Line, "%s: missing expected subject %s", x.Key.Text, marked(k, want.caveated))
			continue
		}
		if want.caveated != f.caveated {
			add(l.Line, "%s: subject %s: expected %s, got %s (a caveated subject is marked [...])", x.Key.Text, k,
				setItem(marked(k, want.caveated), nil), setItem(marked(k, f.caveated), nil))
		}
		gotSources := slices.Sorted(maps.Keys(f.sources))
		if !want.anySources && !slices.Equal(want.sources, gotSources) {
			add(l.Line, "%s: subject %s: expected %s, got %s", x.Key.Text, k, wrap(want.sources), wrap(gotSources))
		}
		gotExcluded := excludedText(f)
		if !slices.Equal(want.excluded, gotExcluded) {
			add(l.Line, "%s: subject %s: expected excluded {%s}, got {%s}", x.Key.Text, k,
				strings.Join(want.excluded, ", "), strings.Join(gotExcluded, ", "))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if !seen[k] {
			f := got[k]
			add(x.Key.Line, "%s: subject %s found but not expected (is %s)", x.Key.Text, marked(k, f.caveated), wrap(slices.Sorted(maps.Keys(f.sources))))
		}
	}
	if len(problems) == 0 {
		return nil, nil
	}
	// Lead with the two sets side by side, then the differences line by line.
	var gotSet []string
	for _, k := range slices.Sorted(maps.Keys(got)) {
		gotSet = append(gotSet, setItem(marked(k, got[k].caveated), excludedText(got[k])))
	}
	summary := &Error{Line: x.Key.Line, Msg: fmt.Sprintf("%s: expected subjects %s; got %s",
		x.Key.Text, setText(wantSet), setText(gotSet))}
	return append([]*Error{summary}, problems...), nil
}

// setItem prints one member of a subject set in the file's notation: `[user:tom]`,
// `[user:tom[...]]` when caveated, or `[user:* - {user:ann, user:bob[...]}]` for a
// wildcard with exclusions.
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
