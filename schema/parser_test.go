package schema

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func parseExprForTest(t *testing.T, expr string) Expr {
	t.Helper()
	f, err := Parse("", []byte("definition d {\n\tpermission p = "+expr+"\n}\n"))
	require.NoError(t, err)
	require.Len(t, f.Decls, 1)
	d := f.Decls[0].(*DefinitionDecl)
	require.Len(t, d.Members, 1)
	return d.Members[0].(*PermissionDecl).Expr
}

func TestParsePrecedence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr string
		want string
	}{
		{"a", "a"},
		{"nil", "nil"},
		{"self", "self"},
		{"a + b", "(+ a b)"},
		{"a + b + c", "(+ (+ a b) c)"},
		{"a - b - c", "(- (- a b) c)"},
		{"a & b & c", "(& (& a b) c)"},
		// `-` is loosest, then `&`, then `+`, then arrows.
		{"a - b + c", "(- a (+ b c))"},
		{"a + b - c", "(- (+ a b) c)"},
		{"a + b & c", "(& (+ a b) c)"},
		{"a & b + c", "(& a (+ b c))"},
		{"a - b & c", "(- a (& b c))"},
		{"a & b - c", "(- (& a b) c)"},
		{"a - b & c + d", "(- a (& b (+ c d)))"},
		{"a + b->c", "(+ a (-> b c))"},
		{"a->b + c->d", "(+ (-> a b) (-> c d))"},
		{"a->b->c", "(-> (-> a b) c)"},
		{"a.any(b)", "(.any a b)"},
		{"a.all(b) & c", "(& (.all a b) c)"},
		{"(a - b) + c", "(+ (- a b) c)"},
		{"a - (b - c)", "(- a (- b c))"},
		{"((a))", "a"},
		{"(granted + tenant->view) - denied", "(- (+ granted (-> tenant view)) denied)"},
		{"viewer - nil", "(- viewer nil)"},
		{"related + self", "(+ related self)"},
		{"(a + b)->c", "(-> (+ a b) c)"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, sexpr(parseExprForTest(t, tt.expr)))
		})
	}
}

func TestParseValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want string // dumpFile output
	}{
		{
			name: "empty",
			src:  "",
			want: "",
		},
		{
			name: "directives on one line with a definition",
			src:  "use self use expiration definition user {}",
			want: "use self\nuse expiration\ndefinition user\nend\n",
		},
		{
			name: "semicolons and newlines inside expressions",
			src:  "definition d { relation r: user; permission p = r +\n r;\n}",
			want: "definition d\n  relation r: user bad=false\n  permission p = (+ r r) bad=false\nend\n",
		},
		{
			name: "subject types",
			src:  "definition d { relation r: user | role#member | user:* | test/user }",
			want: "definition d\n  relation r: user | role#member | user:* | test/user bad=false\nend\n",
		},
		{
			name: "caveats and expiration parse",
			src:  "caveat c(a int, b list<string>) { a == 1 && '}' in b }\ndefinition d { relation r: user with c | user:* with expiration | role#m with c and expiration }",
			want: "caveat c(a int, b list<string>) {\"a == 1 && '}' in b\"}\n" +
				"definition d\n  relation r: user with c | user:* with expiration | role#m with c and expiration bad=false\nend\n",
		},
		{
			name: "expiration before the caveat",
			src:  "definition d { relation r: user with expiration and c }",
			want: "definition d\n  relation r: user with c and expiration bad=false\nend\n",
		},
		{
			name: "byte order mark and CRLF",
			src:  "\xEF\xBB\xBFdefinition a {\r\n\trelation r: a // x\r\n}\r\n",
			want: "definition a\n  trailing //x\n  relation r: a bad=false\nend\n",
		},
		{
			name: "keywords are contextual",
			src:  "definition definition { relation relation: definition\n permission permission = relation }",
			want: "definition definition\n  relation relation: definition bad=false\n  permission permission = relation bad=false\nend\n",
		},
		{
			name: "comments attach",
			src: "// head\n\n/** user doc */\ndefinition user {} // after user\n" +
				"definition d { // header\n\t// lead\n\trelation r: user /* trail */\n\t// closing\n} // end\n// tail\n",
			want: "  comment //head\n  comment /**userdoc*/\ndefinition user\n  trailing //afteruser\nend\n" +
				"  trailing //header\ndefinition d\n  comment //lead\n  trailing /*trail*/\n  relation r: user bad=false\n  comment //closing\n  trailing //end\nend\ncomment //tail\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := Parse("x.zed", []byte(tt.src))
			require.NoError(t, err)
			require.Equal(t, tt.want, dumpFile(f))
		})
	}
}

func TestParseDocComment(t *testing.T) {
	t.Parallel()
	f, err := Parse("", []byte("/** a person */\ndefinition user {\n\t// not a doc\n\trelation r: user\n\t/** the team */\n\trelation t: user\n}\n\n/** detached */\n\ndefinition x {}\n"))
	require.NoError(t, err)
	user := f.Decls[0].(*DefinitionDecl)
	require.NotNil(t, user.Doc())
	require.Equal(t, "/** a person */", user.Doc().Text)
	require.Nil(t, user.Members[0].(*RelationDecl).Doc())
	require.Equal(t, "/** the team */", user.Members[1].(*RelationDecl).Doc().Text)
	require.Nil(t, f.Decls[1].(*DefinitionDecl).Doc(), "a blank line detaches a doc comment")
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want string // errors, one a line
	}{
		{
			name: "missing colon",
			src:  "definition d {\n\trelation r user\n}",
			want: `2:13: expected ":", found "user"`,
		},
		{
			name: "every broken member is reported",
			src:  "definition d {\n\trelation r user\n\tpermission p = (a\n\tpermission q = a +\n}",
			want: "2:13: expected \":\", found \"user\"\n" +
				"4:2: expected \")\", found \"permission\"\n" +
				"5:1: expected a relation or permission name, nil, self or (, found \"}\"",
		},
		{
			name: "missing closing brace",
			src:  "definition a {\n\trelation r: a\ndefinition b {}",
			want: `3:1: expected "}" to close definition a, found "definition"`,
		},
		{
			name: "garbage at top level",
			src:  "relation x: y\ndefinition a {}",
			want: `1:1: expected "definition", "caveat" or "use", found "relation"`,
		},
		{
			name: "bad characters",
			src:  "definition a { relation r: b $ }\n\xff",
			want: "1:30: unexpected character $\n2:1: unexpected character \\xff",
		},
		{
			name: "unterminated comment",
			src:  "definition a {} /* open",
			want: "1:17: comment not terminated",
		},
		{
			name: "use after definitions",
			src:  "definition a {}\nuse self",
			want: "2:1: use directives must come before all definitions",
		},
		{
			name: "arrow needs a name",
			src:  "definition a { permission p = r->(x) }",
			want: `1:34: expected a relation or permission name after ->, found "("`,
		},
		{
			name: "any needs parentheses",
			src:  "definition a { permission p = r.any x }",
			want: `1:37: expected "(", found "x"`,
		},
		{
			name: "unterminated caveat",
			src:  "caveat c(x int) { x == 1",
			want: `1:17: caveat body not terminated: missing }`,
		},
		{
			name: "subject ellipsis",
			src:  "definition a { relation r: user#... }",
			want: `1:33: subject relation ... is not supported; write the type alone`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("", []byte(tt.src))
			require.Error(t, err)
			require.Equal(t, tt.want+"\n", errorLines(err))
		})
	}
}

func TestParseLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want string // a substring of the error
	}{
		{
			name: "deeply nested parentheses",
			src:  "definition a { permission p = " + strings.Repeat("(", 100_000) + "x" + strings.Repeat(")", 100_000) + " }",
			want: "1:95: expression nested more than 64 levels deep (MaxExpressionDepth)",
		},
		{
			name: "deep nesting through precedence",
			src:  "definition a { permission p = " + strings.Repeat("a - b & c + (", 30) + "x" + strings.Repeat(")", 30) + " }",
			want: "expression nested more than 64 levels deep (MaxExpressionDepth)",
		},
		{
			name: "input larger than MaxInputSize",
			src:  tenMegabytes(),
			want: "1:1: schema is 10485760 bytes, more than the limit of 4194304 (MaxInputSize)",
		},
		{
			name: "too many definitions",
			src:  strings.Repeat("definition a {}\n", MaxDefinitions+1),
			want: "10001:1: more than 10000 definitions and caveats (MaxDefinitions)",
		},
		{
			name: "too many members",
			src:  "definition a {\n" + strings.Repeat("relation r: a\n", MaxMembers+1) + "}",
			want: "1002:1: definition a has more than 1000 relations and permissions (MaxMembers)",
		},
		{
			name: "too many errors",
			src:  strings.Repeat("$", 1_000_000),
			want: "1:101: too many errors (more than 100)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("", []byte(tt.src))
			require.Error(t, err)
			require.Contains(t, errorLines(err), tt.want)
		})
	}
}

func TestParseTooLargeIsErrTooLarge(t *testing.T) {
	t.Parallel()
	_, err := Compile("big.zed", make([]byte, 10<<20))
	require.ErrorIs(t, err, ErrTooLarge)
}

// tenMegabytes returns a 10 MiB schema: many small definitions.
func tenMegabytes() string {
	var b strings.Builder
	for i := 0; b.Len() < 10<<20; i++ {
		fmt.Fprintf(&b, "definition t%d {\n\trelation r: t%d\n}\n", i, i)
	}
	return b.String()[:10<<20]
}

func TestCompileNearSizeLimit(t *testing.T) {
	t.Parallel()
	// Just under MaxInputSize, in the shapes that stress the parser: one huge union,
	// many definitions, and a stream of garbage.
	var union strings.Builder
	union.WriteString("definition a {\n\trelation r: a\n\tpermission p = r")
	for union.Len() < MaxInputSize-10 {
		union.WriteString(" + r")
	}
	union.WriteString("\n}\n")
	s, err := Compile("", []byte(union.String()))
	require.NoError(t, err)
	p, err := s.Relation("a", "p")
	require.NoError(t, err)
	require.Greater(t, len(p.Rewrite.Children), 1_000_000)

	many := generatedSchema(MaxDefinitions)
	require.Less(t, len(many), MaxInputSize)
	s, err = Compile("", many)
	require.NoError(t, err)
	require.Len(t, s.Definitions, MaxDefinitions)

	_, err = Compile("", bytes.Repeat([]byte("definition } { - ( "), MaxInputSize/20))
	require.Contains(t, errorLines(err), "too many errors")
}
