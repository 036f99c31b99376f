package schema

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
)

const designExample = `/** a person */
definition user {}

definition role {
    relation member: user | role#member          // nested roles
}

definition tenant {
    relation parent: tenant
    relation admin: user | role#member
    relation viewer: user | role#member | user:*
    permission manage = admin + parent->manage     // inherited down the tenant tree
    permission view = viewer + manage
}

definition flow {
    relation tenant: tenant
    relation granted: user | role#member | user:*
    relation denied: user | role#member
    permission execute = (granted + tenant->view) - denied
}
`

func TestCompileTree(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, designExample)
	require.Equal(t, `self=false expiration=false
definition user
definition role
  relation member: user | role#member = this
definition tenant
  relation parent: tenant = this
  relation admin: user | role#member = this
  relation viewer: user | role#member | user:* = this
  permission manage = union(admin, parent->manage)
  permission view = union(viewer, manage)
definition flow
  relation tenant: tenant = this
  relation granted: user | role#member | user:* = this
  relation denied: user | role#member = this
  permission execute = exclusion(union(granted, tenant->view), denied)
`, dumpSchema(s))

	execute, err := s.Relation("flow", "execute")
	require.NoError(t, err)
	require.Equal(t, Position{Line: 20, Column: 5}, execute.Pos)
	require.Equal(t, Position{Line: 20, Column: 27}, execute.Rewrite.Pos)
	require.Equal(t, Position{Line: 20, Column: 37}, execute.Rewrite.Children[0].Children[1].Pos)
}

func TestCompileRewrites(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr string
		want string
	}{
		{"a", "a"},
		{"nil", "nil"},
		{"self", "self"},
		{"a + b + c", "union(a, b, c)"},
		{"a + (b + c)", "union(a, b, c)"},
		{"a & b & (c & a)", "intersection(a, b, c, a)"},
		{"a - b - c", "exclusion(exclusion(a, b), c)"},
		{"a - b + c", "exclusion(a, union(b, c))"},
		{"a + b & c", "intersection(union(a, b), c)"},
		{"r->a + r.any(b) + r.all(c)", "union(r->a, r->b, r.all(c))"},
		{"a - nil", "exclusion(a, nil)"},
		{"p", "p"}, // refers only to itself: allowed, and empty
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			t.Parallel()
			s := mustCompile(t, "use self\ndefinition user {}\ndefinition d {\n\trelation r: d\n\trelation a: user\n\trelation b: user\n\trelation c: user\n\tpermission p = "+tt.expr+"\n}\n")
			p, err := s.Relation("d", "p")
			require.NoError(t, err)
			require.True(t, p.Permission)
			require.Equal(t, tt.want, rewriteString(p.Rewrite))
		})
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want string // every error, one a line
	}{
		{
			name: "unknown type and relation",
			src:  "definition user {}\ndefinition doc {\n\trelation viewer: usr | user\n\tpermission view = viewr + viewer\n}",
			want: "3:19: unknown type usr in relation doc#viewer\n" +
				"4:20: unknown relation or permission viewr in definition doc",
		},
		{
			name: "duplicates",
			src:  "definition a {}\ndefinition a {}\ndefinition b {\n\trelation r: a | a\n\tpermission r = r\n}",
			want: "2:12: duplicate definition a (first defined at 1:12)\n" +
				"4:18: duplicate subject type a in relation b#r\n" +
				"5:13: duplicate permission r in definition b (first declared at 4:11)",
		},
		{
			name: "arrow over a permission",
			src:  "definition a {\n\trelation r: a\n\tpermission p = r\n\tpermission q = p->r\n}",
			want: "4:17: p is a permission: the left side of -> must be a relation",
		},
		{
			name: "arrow right side on no subject type",
			src:  "definition u {}\ndefinition g { relation member: u }\ndefinition a {\n\trelation r: u | g#member\n\tpermission q = r->member + r->nope\n}",
			want: "5:32: nope exists on none of the subject types of a#r (u, g)",
		},
		{
			name: "arrow left side not a relation",
			src:  "definition a {\n\trelation r: a\n\tpermission q = (r + r)->r + nil->r + r->r->r + x->r\n}",
			want: "3:18: the left side of -> must be a relation of definition a\n" +
				"3:30: the left side of -> must be a relation of definition a\n" +
				"3:39: the left side of -> must be a relation of definition a\n" +
				"3:49: unknown relation x in definition a",
		},
		{
			name: "userset on a missing relation",
			src:  "definition role { relation member: role }\ndefinition d { relation r: role#membr }",
			want: "2:33: type role has no relation or permission membr",
		},
		{
			name: "bad names",
			src:  "definition User {}\ndefinition a/B/c {}\ndefinition d {\n\trelation Bad: d\n\trelation nil: d\n\trelation " + strings.Repeat("x", 64) + ": d\n}",
			want: "1:12: invalid definition name \"User\": " + tuples.NameRule + "\n" +
				"2:12: invalid definition name \"a/B/c\": " + tuples.NameRule + "\n" +
				"4:11: invalid relation name \"Bad\": " + tuples.NameRule + "\n" +
				"5:11: nil is a reserved word and cannot name a relation or permission\n" +
				"6:11: invalid relation name \"" + strings.Repeat("x", 64) + "\": " + tuples.NameRule,
		},
		{
			name: "self without use self",
			src:  "definition a { permission p = self }",
			want: "1:31: self needs the `use self` directive at the top of the schema",
		},
		{
			name: "unknown directive",
			src:  "use magic\ndefinition a {}",
			want: "1:5: unknown directive use magic (want self or expiration)",
		},
		{
			name: "caveat used but never declared, in either order of traits",
			src:  "use expiration\ndefinition u {}\ndefinition a { relation r: u with expiration and c | u:* with c and expiration }",
			want: "3:50: unknown caveat c in relation a#r\n" +
				"3:63: unknown caveat c in relation a#r",
		},
		{
			name: "syntax and type errors together",
			src:  "definition a {\n\trelation r: b\n\tpermission p = r +\n\tpermission q = p + zz\n}",
			want: "2:14: unknown type b in relation a#r\n" +
				"4:2: expected a relation or permission name, nil, self or (, found \"permission\"\n" +
				"4:21: unknown relation or permission zz in definition a",
		},
		{
			name: "exclusion chain deeper than the limit",
			src:  "definition a { relation r: a\n permission p = r" + strings.Repeat(" - r", MaxExpressionDepth) + " }",
			want: "2:17: expression of permission a#p is nested more than 64 levels deep (MaxExpressionDepth)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Compile("", []byte(tt.src))
			require.Nil(t, s)
			require.Equal(t, tt.want+"\n", errorLines(err))
		})
	}
}

func TestCompileAcceptsSpecNuances(t *testing.T) {
	t.Parallel()
	// A relation may allow T#r where T#r itself allows a wildcard (unlike SpiceDB), and
	// the arrow right side need exist on only one subject type.
	s := mustCompile(t, `definition user {}
definition role { relation member: user | user:* }
definition flow {
	relation granted: user | role#member
	relation parent: flow | user
	permission view = granted + parent->view
	permission loop = loop
}`)
	loop, err := s.Relation("flow", "loop")
	require.NoError(t, err)
	require.Equal(t, "loop", rewriteString(loop.Rewrite))
}

func TestCompileCaveats(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, `use expiration
definition user {}
caveat on_net(ip ipaddress, cidr string) { ip.in_cidr(cidr) }
caveat all_types(a any, i int, u uint, b bool, s string, d double, by bytes, du duration, ts timestamp, l list<string>, m map<list<int>>) {
	i > 0 && u > 0u && b && s != "" && d > 1.5 && by.size() > 0 && du > duration("1s") && ts > timestamp("2020-01-01T00:00:00Z") && "x" in l && m["k"].size() > 0 && a == a
}
definition doc {
	relation viewer: user | user with on_net | user:* with on_net | doc#viewer with all_types | user with on_net and expiration | user with expiration
}`)
	r, err := s.Relation("doc", "viewer")
	require.NoError(t, err)
	require.True(t, r.Conditional)
	var forms []string
	for _, a := range r.Allowed {
		forms = append(forms, a.String())
	}
	require.Equal(t, []string{"user", "user with on_net", "user:* with on_net", "doc#viewer with all_types",
		"user with on_net and expiration", "user with expiration"}, forms)
	require.Len(t, s.Caveats, 2)
	require.Equal(t, "ip ipaddress, cidr string", paramString(s.Caveats["on_net"]))
}

func paramString(c *Caveat) string {
	var parts []string
	for _, p := range c.Params {
		parts = append(parts, p.Name+" "+p.Type.String())
	}
	return strings.Join(parts, ", ")
}

func TestCompileCaveatErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src, want string
	}{
		{"not bool", "caveat c(a int) { a + 1 }", "1:18: caveat c: expression has type int, want bool"},
		{"unknown variable", "caveat c(a int) {\\n  a == b\\n}", "2:8: caveat c: undeclared reference to 'b'"},
		{"syntax", "caveat c(a int) { a == }", "1:24: caveat c: Syntax error"},
		{"bad type", "caveat c(a integer) { true }", `1:8: caveat c: parameter a: unknown parameter type "integer"`},
		{"list without elem", "caveat c(a list) { true }", "1:8: caveat c: parameter a: type list needs an element type"},
		{"duplicate param", "caveat c(a int, a int) { true }", "1:8: caveat c: duplicate parameter a"},
		{"duplicate caveat", "caveat c(a int) { true }\ncaveat c(a int) { true }", "2:8: duplicate caveat c"},
		{"unknown caveat", "definition u {}\ndefinition d { relation r: u with nope }", "2:35: unknown caveat nope in relation d#r"},
		{"wrong types", "caveat c(a int) { a == 'x' }", "1:21: caveat c: found no matching overload for '_==_'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile("", []byte(strings.ReplaceAll(tc.src, `\n`, "\n")))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestCaveatEval(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, `caveat c(ip ipaddress, cidr string, n int, m map<any>, l list<string>) { ip.in_cidr(cidr) && n == 42 }
caveat orc(a bool, b bool) { a || b }
caveat mp(m map<any>, l list<string>, me string) { m.foo == 42 && m.bar < 56 && me in l }`)
	c := s.Caveats["c"]
	ctx := context.Background()
	tests := []struct {
		name            string
		cv              *Caveat
		stored, request map[string]any
		want            Result
	}{
		{"all given true", c, map[string]any{"cidr": "10.0.0.0/8"}, map[string]any{"ip": "10.1.2.3", "n": 42.0}, Result{Value: true}},
		{"false", c, map[string]any{"cidr": "10.0.0.0/8"}, map[string]any{"ip": "11.1.2.3", "n": 42.0}, Result{}},
		{"stored wins", c, map[string]any{"cidr": "10.0.0.0/8", "n": 41.0}, map[string]any{"ip": "10.1.2.3", "n": 42.0}, Result{}},
		{"missing both", c, map[string]any{"cidr": "10.0.0.0/8"}, nil, Result{Conditional: true, Missing: []string{"ip", "n"}}},
		{"missing one", c, map[string]any{"cidr": "10.0.0.0/8"}, map[string]any{"n": 42.0}, Result{Conditional: true, Missing: []string{"ip"}}},
		{"false despite missing", c, map[string]any{"cidr": "10.0.0.0/8"}, map[string]any{"n": 41.0}, Result{}},
		{"or decided", s.Caveats["orc"], nil, map[string]any{"b": true}, Result{Value: true}},
		{"or open", s.Caveats["orc"], nil, map[string]any{"b": false}, Result{Conditional: true, Missing: []string{"a"}}},
		{"map", s.Caveats["mp"], map[string]any{"m": map[string]any{"foo": 42.0, "bar": 10.0}}, map[string]any{"l": []any{"x"}, "me": "x"}, Result{Value: true}},
		{"map false", s.Caveats["mp"], map[string]any{"m": map[string]any{"foo": 41.0}}, nil, Result{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cv.Eval(ctx, tc.stored, tc.request)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	_, err := c.Eval(ctx, nil, map[string]any{"ip": "not-an-ip"})
	var ce *ContextError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "ip", ce.Param)
	require.ErrorContains(t, c.ValidateContext(map[string]any{"nope": 1.0}), "caveat c: parameter nope: the caveat has no such parameter")
	require.ErrorContains(t, c.ValidateContext(map[string]any{"n": "x"}), `caveat c: parameter n: want int, got string "x"`)
	require.NoError(t, c.ValidateContext(map[string]any{"n": 3.0, "cidr": "10.0.0.0/8"}))
}

func TestValidateTupleCaveatForms(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, `definition user {}
caveat c(n int) { n == 1 }
definition doc {
	relation plain: user
	relation only_caveat: user with c
	relation either: user | user with c
	relation expiring: user with expiration
}`)
	tests := []struct {
		tuple string
		want  string
	}{
		{"doc:1#plain@user:a", ""},
		{"doc:1#plain@user:a[c]", "subject user:a with c is not allowed on doc#plain; allowed: user"},
		{"doc:1#only_caveat@user:a", "subject user:a without a caveat or expiration is not allowed on doc#only_caveat; allowed: user with c"},
		{"doc:1#only_caveat@user:a[c]", ""},
		{`doc:1#only_caveat@user:a[c:{"n":1}]`, ""},
		{`doc:1#only_caveat@user:a[c:{"x":1}]`, "caveat c: parameter x: the caveat has no such parameter"},
		{`doc:1#only_caveat@user:a[c:{"n":"one"}]`, `caveat c: parameter n: want int, got string "one"`},
		{"doc:1#either@user:a", ""},
		{"doc:1#either@user:a[c]", ""},
		{"doc:1#plain@user:a[expiration:2027-01-01T00:00:00Z]", "subject user:a with expiration is not allowed on doc#plain"},
		{"doc:1#expiring@user:a[expiration:2027-01-01T00:00:00Z]", ""},
		{"doc:1#expiring@user:a", "subject user:a without a caveat or expiration is not allowed on doc#expiring; allowed: user with expiration"},
	}
	for _, tc := range tests {
		t.Run(tc.tuple, func(t *testing.T) {
			tu, err := tuples.ParseTuple(tc.tuple)
			require.NoError(t, err)
			err = s.ValidateTuple(tu)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestCompileLongChains(t *testing.T) {
	t.Parallel()
	// Long chains of one operator are flat: no recursion per operand.
	s := mustCompile(t, "definition a { relation r: a\n permission p = r"+strings.Repeat(" + r->r", 100_000)+" }")
	p, err := s.Relation("a", "p")
	require.NoError(t, err)
	require.Len(t, p.Rewrite.Children, 100_001)

	// Arrow chains are walked in loops too (and rejected).
	_, err = Compile("", []byte("definition a { relation r: a\n permission p = r"+strings.Repeat("->r", 100_000)+" }"))
	require.ErrorContains(t, err, "the left side of -> must be a relation")
	out, err := Format([]byte("definition a { permission p = r" + strings.Repeat("->r", 100_000) + " }"))
	require.NoError(t, err)
	require.Len(t, out, len("definition a {\n\tpermission p = r\n}\n")+3*100_000)
}

func TestSchemaRelation(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, designExample)
	_, err := s.Relation("nope", "x")
	require.ErrorIs(t, err, ErrUnknownType)
	var ut *UnknownTypeError
	require.ErrorAs(t, err, &ut)
	require.Equal(t, "nope", ut.Type)
	require.EqualError(t, err, "schema: unknown type nope")

	_, err = s.Relation("flow", "nope")
	require.ErrorIs(t, err, ErrUnknownRelation)
	var ur *UnknownRelationError
	require.ErrorAs(t, err, &ur)
	require.EqualError(t, err, "schema: type flow has no relation or permission nope")

	r, err := s.Relation("flow", "granted")
	require.NoError(t, err)
	require.False(t, r.Permission)
	require.Equal(t, This, r.Rewrite.Kind)
}

func tuple(t *testing.T, s string) tuples.Tuple {
	t.Helper()
	// object#relation@subject, with an optional #relation on the subject.
	objRel, subj, ok := strings.Cut(s, "@")
	require.True(t, ok)
	obj, rel, _ := strings.Cut(objRel, "#")
	ot, oid, _ := strings.Cut(obj, ":")
	sobj, srel, _ := strings.Cut(subj, "#")
	st, sid, _ := strings.Cut(sobj, ":")
	return tuples.Tuple{
		Object:   tuples.ObjectRef{Type: ot, ID: oid},
		Relation: rel,
		Subject:  tuples.SubjectRef{Object: tuples.ObjectRef{Type: st, ID: sid}, Relation: srel},
	}
}

func TestValidateTuple(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, designExample+`
definition service_account {}
definition flow2 {
	relation user_granted: user | service_account
}`)
	tests := []struct {
		tuple string
		want  string // error; empty for valid
		is    error
	}{
		{tuple: "flow:f1#granted@user:anne"},
		{tuple: "flow:f1#granted@user:*"},
		{tuple: "flow:f1#granted@user:tom#..."},
		{tuple: "flow:f1#granted@role:ops#member"},
		{tuple: "role:ops#member@role:dev#member"},
		{tuple: "flow:f1#tenant@tenant:acme"},
		{tuple: "nope:f1#granted@user:anne", want: "schema: unknown type nope", is: ErrUnknownType},
		{tuple: "flow:f1#nope@user:anne", want: "schema: type flow has no relation or permission nope", is: ErrUnknownRelation},
		{tuple: "flow:f1#execute@user:anne", want: "schema: flow#execute is a permission; tuples can only be written to relations", is: ErrNotAllowed},
		{
			tuple: "flow2:f1#user_granted@role:r#member",
			want:  "schema: subject role:r#member is not allowed on flow2#user_granted; allowed: user, service_account",
			is:    ErrNotAllowed,
		},
		{tuple: "flow2:f1#user_granted@user:*", want: "schema: subject user:* is not allowed on flow2#user_granted; allowed: user, service_account", is: ErrNotAllowed},
		{tuple: "flow:f1#denied@user:*", want: "schema: subject user:* is not allowed on flow#denied; allowed: user, role#member", is: ErrNotAllowed},
		{tuple: "flow:f1#granted@role:ops", want: "schema: subject role:ops is not allowed on flow#granted; allowed: user, role#member, user:*", is: ErrNotAllowed},
		{tuple: "flow:f1#granted@user:anne#member", want: "schema: subject user:anne#member is not allowed on flow#granted; allowed: user, role#member, user:*", is: ErrNotAllowed},
		{tuple: "flow:f1#tenant@flow:f2", want: "schema: subject flow:f2 is not allowed on flow#tenant; allowed: tenant", is: ErrNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.tuple, func(t *testing.T) {
			t.Parallel()
			err := s.ValidateTuple(tuple(t, tt.tuple))
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.want)
			require.ErrorIs(t, err, tt.is)
		})
	}
}

func TestTextFromRewrites(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, "use self\n"+designExample+"definition x { relation r: x\n permission p = (r - self) - (r & nil) + r.all(r) }")
	hand := *s
	hand.file = nil
	text := hand.Text()
	again, err := Compile("", text)
	require.NoError(t, err, "%s\n%s", text, errorLines(err))
	require.Equal(t, dumpSchema(s), dumpSchema(again))
}
