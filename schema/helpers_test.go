package schema

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// dumpFile prints a syntax tree without positions: one line per directive, declaration
// and member, expressions fully parenthesized, comments with their blanks removed.
func dumpFile(f *File) string {
	var b strings.Builder
	comments := func(c *Comments) {
		for _, cm := range c.Leading {
			fmt.Fprintf(&b, "  comment %s\n", squash(cm.Text))
		}
		for _, cm := range c.Trailing {
			fmt.Fprintf(&b, "  trailing %s\n", squash(cm.Text))
		}
	}
	for _, d := range f.Directives {
		comments(&d.Comments)
		fmt.Fprintf(&b, "use %s\n", d.Name.Name)
	}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *CaveatDecl:
			comments(&d.Comments)
			fmt.Fprintf(&b, "caveat %s(%s) {%q}\n", d.Name.Name, d.Params, d.Body)
		case *DefinitionDecl:
			comments(&d.Comments)
			fmt.Fprintf(&b, "definition %s\n", d.Name.Name)
			for _, m := range d.Members {
				switch m := m.(type) {
				case *RelationDecl:
					comments(&m.Comments)
					fmt.Fprintf(&b, "  %s bad=%v\n", relationText(m), m.Bad)
				case *PermissionDecl:
					comments(&m.Comments)
					fmt.Fprintf(&b, "  permission %s = %s bad=%v\n", m.Name.Name, sexpr(m.Expr), m.Bad)
				}
			}
			comments(&d.Close)
			fmt.Fprintf(&b, "end\n")
		}
	}
	for _, c := range f.Comments {
		fmt.Fprintf(&b, "comment %s\n", squash(c.Text))
	}
	return b.String()
}

func squash(s string) string {
	return strings.Join(strings.Fields(s), "")
}

// sexpr prints an expression fully parenthesized: (- a (+ b c)), (-> r p).
func sexpr(e Expr) string {
	switch e := e.(type) {
	case nil:
		return "<nil>"
	case *Ident:
		return e.Name
	case *NilExpr:
		return "nil"
	case *SelfExpr:
		return "self"
	case *ArrowExpr:
		op := [...]string{Arrow: "->", ArrowAny: ".any", ArrowAll: ".all"}[e.Op]
		return "(" + op + " " + sexpr(e.Left) + " " + e.Right.Name + ")"
	case *BinaryExpr:
		return "(" + e.Op.String() + " " + sexpr(e.X) + " " + sexpr(e.Y) + ")"
	}
	return "?"
}

// rewriteString prints a compiled rewrite tree without positions.
func rewriteString(rw *Rewrite) string {
	if rw == nil {
		return "<nil>"
	}
	switch rw.Kind {
	case This, Nil, Self:
		return rw.Kind.String()
	case ComputedUserset:
		return rw.Relation
	case TupleToUserset:
		if rw.All {
			return rw.Tupleset + ".all(" + rw.Relation + ")"
		}
		return rw.Tupleset + "->" + rw.Relation
	}
	parts := make([]string, len(rw.Children))
	for i, c := range rw.Children {
		parts[i] = rewriteString(c)
	}
	return rw.Kind.String() + "(" + strings.Join(parts, ", ") + ")"
}

// dumpSchema prints a compiled schema without positions, for equality checks.
func dumpSchema(s *Schema) string {
	var b strings.Builder
	fmt.Fprintf(&b, "self=%v expiration=%v\n", s.UseSelf, s.UseExpiration)
	for _, name := range s.Order {
		d := s.Definitions[name]
		fmt.Fprintf(&b, "definition %s\n", d.Name)
		for _, rn := range d.Order {
			r := d.Relations[rn]
			if r.Permission {
				fmt.Fprintf(&b, "  permission %s = %s\n", r.Name, rewriteString(r.Rewrite))
				continue
			}
			names := make([]string, len(r.Allowed))
			for i, a := range r.Allowed {
				names[i] = a.String()
			}
			fmt.Fprintf(&b, "  relation %s: %s = %s\n", r.Name, strings.Join(names, " | "), rewriteString(r.Rewrite))
		}
	}
	return b.String()
}

// errorLines prints an error list one error a line.
func errorLines(err error) string {
	if err == nil {
		return ""
	}
	list, ok := err.(ErrorList)
	if !ok {
		return err.Error() + "\n"
	}
	var b strings.Builder
	for _, e := range list {
		b.WriteString(e.Error())
		b.WriteByte('\n')
	}
	return b.String()
}

// golden compares got with the file at path, rewriting it under -update.
func golden(t *testing.T, path string, got string) {
	t.Helper()
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run go test ./schema -update")
	require.Equal(t, string(want), got, "golden file %s differs; run with -update and review the diff", path)
}

// mustCompile compiles src or fails the test with every error.
func mustCompile(t testing.TB, src string) *Schema {
	t.Helper()
	s, err := Compile("test.zed", []byte(src))
	require.NoError(t, err, "compile:\n%s", errorLines(err))
	return s
}
