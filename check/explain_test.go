package check

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), got)
}

func printExplanation(b *strings.Builder, e *Explanation, indent string) {
	fmt.Fprintf(b, "%s%s: %t", indent, e.Step, e.Result)
	if e.Note != "" {
		fmt.Fprintf(b, " (%s)", e.Note)
	}
	b.WriteString("\n")
	for _, ch := range e.Children {
		printExplanation(b, ch, indent+"  ")
	}
}

func TestExplainGolden(t *testing.T) {
	ctx := context.Background()
	r := newReader(t, designSchema(), designTuples(t))
	e := New(Options{})
	var b strings.Builder
	for _, c := range []string{
		"flow:f1#execute@user:ada",
		"flow:f1#execute@user:sam",
		"flow:f2#execute@user:anyone",
		"tenant:eu#view@role:sre#member",
		"group:b#both@user:amy",
		"doc:1#viewer@user:vic",
		"doc:3#all_members@user:ben",
	} {
		req := parseCheck(t, c)
		req.Explain = true
		res, err := e.Check(ctx, r, req)
		require.NoError(t, err)
		fmt.Fprintf(&b, "check %s\n", c)
		printExplanation(&b, res.Explanation, "  ")
	}
	golden(t, "explain.golden", b.String())
}

func printExpand(b *strings.Builder, n *ExpandNode, indent string) {
	fmt.Fprintf(b, "%s%s %q", indent, n.Kind, n.Description)
	if n.Object.Type != "" {
		fmt.Fprintf(b, " %s#%s", n.Object, n.Relation)
	}
	if len(n.Subjects) > 0 {
		var ss []string
		for _, s := range n.Subjects {
			ss = append(ss, s.String())
		}
		fmt.Fprintf(b, " [%s]", strings.Join(ss, " "))
	}
	b.WriteString("\n")
	for _, ch := range n.Children {
		printExpand(b, ch, indent+"  ")
	}
}

func TestExpandGolden(t *testing.T) {
	ctx := context.Background()
	r := newReader(t, designSchema(), designTuples(t))
	e := New(Options{})
	var b strings.Builder
	for _, c := range []struct{ obj, rel string }{
		{"flow:f1", "execute"}, {"flow:f3", "granted"}, {"tenant:eu", "view"}, {"doc:3", "all_members"},
		{"doc:3", "any_member"}, {"user:bob", "me_or_friend"}, {"flow:f1", "nothing"},
	} {
		obj, err := tuples.ParseObject(c.obj)
		require.NoError(t, err)
		n, err := e.Expand(ctx, r, ExpandRequest{Object: obj, Relation: c.rel})
		require.NoError(t, err)
		fmt.Fprintf(&b, "expand %s#%s\n", c.obj, c.rel)
		printExpand(&b, n, "  ")
	}
	_, err := e.Expand(ctx, r, ExpandRequest{Object: tuples.ObjectRef{Type: "flow", ID: "f1"}, Relation: "nope"})
	require.ErrorIs(t, err, ErrNotFound)
	golden(t, "expand.golden", b.String())
}
