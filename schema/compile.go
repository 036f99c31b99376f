package schema

import (
	"fmt"
	"strings"

	"github.com/relata/relata/tuples"
)

// Compile parses and checks schema source and compiles it to userset rewrites. It
// reports every error it finds, syntax and type errors alike, as an ErrorList sorted by
// position (each printed `file:line:col: reason`), and then returns a nil Schema.
func Compile(filename string, src []byte) (*Schema, error) {
	f, err := Parse(filename, src)
	if len(src) > MaxInputSize {
		return nil, err
	}
	var errs ErrorList
	if err != nil {
		if list, ok := err.(ErrorList); ok {
			errs = append(errs, list...)
		} else {
			return nil, err
		}
	}
	s, cerrs := compileFile(f)
	errs = append(errs, cerrs...)
	if len(errs) > 0 {
		errs.RemoveMultiples()
		return nil, errs
	}
	return s, nil
}

// CompileFile checks a parsed File and compiles it. It returns an ErrorList of every
// type error (see Compile); a File with syntax errors may produce spurious ones.
func CompileFile(f *File) (*Schema, error) {
	s, errs := compileFile(f)
	if len(errs) > 0 {
		errs.RemoveMultiples()
		return nil, errs
	}
	return s, nil
}

// reserved names cannot name relations or permissions: they are expression keywords.
var reserved = map[string]bool{"nil": true, "self": true}

type defInfo struct {
	decl    *DefinitionDecl
	members map[string]Member
}

type compiler struct {
	// caveatPos holds every declared caveat name (compiled or not).
	caveatPos map[string]Position
	file      *File
	errs      ErrorList
	defs      map[string]*defInfo
	s         *Schema
}

func (c *compiler) errorf(pos Position, format string, args ...any) {
	c.errs.Add(c.file.Filename, pos, fmt.Sprintf(format, args...))
}

func (c *compiler) checkName(what string, id Ident) bool {
	if err := tuples.ValidateName(what, id.Name); err != nil {
		c.errorf(id.Pos, "invalid %s name %q: %s", what, id.Name, tuples.NameRule)
		return false
	}
	return true
}

func compileFile(f *File) (*Schema, ErrorList) {
	c := &compiler{file: f, defs: map[string]*defInfo{}}
	c.s = &Schema{Definitions: map[string]*Definition{}, file: f}
	for _, d := range f.Directives {
		switch d.Name.Name {
		case "self":
			c.s.UseSelf = true
		case "expiration":
			c.s.UseExpiration = true
		default:
			c.errorf(d.Name.Pos, "unknown directive use %s (want self or expiration)", d.Name.Name)
		}
	}
	// Declare definitions and their members first, so that references resolve in any
	// order.
	c.s.Caveats = map[string]*Caveat{}
	caveatPos := map[string]Position{}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *CaveatDecl:
			if !c.checkName("caveat", d.Name) {
				continue
			}
			if prev, dup := caveatPos[d.Name.Name]; dup {
				c.errorf(d.Name.Pos, "duplicate caveat %s (first defined at %s)", d.Name.Name, prev)
				continue
			}
			caveatPos[d.Name.Name] = d.Name.Pos
			if cv := c.compileCaveat(d); cv != nil {
				c.s.Caveats[d.Name.Name] = cv
			}
		case *DefinitionDecl:
			c.declare(d)
		}
	}
	c.caveatPos = caveatPos
	for _, decl := range f.Decls {
		if d, ok := decl.(*DefinitionDecl); ok && c.defs[d.Name.Name].decl == d {
			c.compileDefinition(d)
		}
	}
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	return c.s, nil
}

func (c *compiler) declare(d *DefinitionDecl) {
	c.checkName("definition", d.Name)
	if prev, dup := c.defs[d.Name.Name]; dup {
		c.errorf(d.Name.Pos, "duplicate definition %s (first defined at %s)", d.Name.Name, prev.decl.Name.Pos)
		return
	}
	info := &defInfo{decl: d, members: map[string]Member{}}
	c.defs[d.Name.Name] = info
	for _, m := range d.Members {
		name := m.MemberName()
		if reserved[name.Name] {
			c.errorf(name.Pos, "%s is a reserved word and cannot name a relation or permission", name.Name)
		} else {
			c.checkName(memberKind(m), name)
		}
		if prev, dup := info.members[name.Name]; dup {
			c.errorf(name.Pos, "duplicate %s %s in definition %s (first declared at %s)",
				memberKind(m), name.Name, d.Name.Name, prev.MemberName().Pos)
			continue
		}
		info.members[name.Name] = m
	}
}

func memberKind(m Member) string {
	if _, ok := m.(*RelationDecl); ok {
		return "relation"
	}
	return "permission"
}

func (c *compiler) compileDefinition(d *DefinitionDecl) {
	def := &Definition{Name: d.Name.Name, Relations: map[string]*Relation{}, Pos: d.Pos}
	c.s.Definitions[def.Name] = def
	c.s.Order = append(c.s.Order, def.Name)
	info := c.defs[d.Name.Name]
	for _, m := range d.Members {
		if info.members[m.MemberName().Name] != m {
			continue // a duplicate, already reported
		}
		var r *Relation
		switch m := m.(type) {
		case *RelationDecl:
			r = c.compileRelation(d, m)
		case *PermissionDecl:
			r = c.compilePermission(info, m)
		}
		if r != nil {
			def.Relations[r.Name] = r
			def.Order = append(def.Order, r.Name)
		}
	}
}

func (c *compiler) compileRelation(d *DefinitionDecl, m *RelationDecl) *Relation {
	r := &Relation{Name: m.Name.Name, Pos: m.Pos, Rewrite: &Rewrite{Kind: This, Pos: m.Pos}}
	// Subject types differing only in a caveat or expiration are not duplicates.
	seen := map[AllowedSubject]bool{}
	for _, t := range m.Types {
		a := AllowedSubject{Type: t.Type.Name, Wildcard: t.Wildcard}
		if t.Relation != nil {
			a.Relation = t.Relation.Name
		}
		if t.Caveat != nil {
			a.Caveat = t.Caveat.Name
			if _, ok := c.caveatPos[a.Caveat]; !ok {
				c.errorf(t.Caveat.Pos, "unknown caveat %s in relation %s#%s", a.Caveat, d.Name.Name, m.Name.Name)
			}
			r.Conditional = true
		}
		if t.Expiration {
			a.Expiration = true
			r.Conditional = true
		}
		target, ok := c.defs[a.Type]
		switch {
		case !ok:
			c.errorf(t.Type.Pos, "unknown type %s in relation %s#%s", a.Type, d.Name.Name, m.Name.Name)
		case t.Relation != nil && target.members[a.Relation] == nil:
			c.errorf(t.Relation.Pos, "type %s has no relation or permission %s", a.Type, a.Relation)
		}
		if seen[a] {
			c.errorf(t.Type.Pos, "duplicate subject type %s in relation %s#%s", a, d.Name.Name, m.Name.Name)
			continue
		}
		seen[a] = true
		r.Allowed = append(r.Allowed, a)
	}
	return r
}

func (c *compiler) compilePermission(info *defInfo, m *PermissionDecl) *Relation {
	r := &Relation{Name: m.Name.Name, Permission: true, Pos: m.Pos}
	if m.Bad || m.Expr == nil {
		return r
	}
	if !c.checkExpr(info, m.Expr) {
		return r
	}
	rw, ok := c.rewrite(m.Expr, 1)
	if !ok {
		c.errorf(m.Expr.Start(), "expression of permission %s#%s is nested more than %d levels deep (MaxExpressionDepth)",
			info.decl.Name.Name, m.Name.Name, MaxExpressionDepth)
		return r
	}
	r.Rewrite = rw
	return r
}

// checkExpr resolves the names of a permission expression and reports every problem.
// It walks the tree with an explicit stack: operator chains can be long.
func (c *compiler) checkExpr(info *defInfo, e Expr) bool {
	ok := true
	defName := info.decl.Name.Name
	stack := []Expr{e}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch x := x.(type) {
		case *BinaryExpr:
			stack = append(stack, x.Y, x.X)
		case *NilExpr:
		case *SelfExpr:
			if !c.s.UseSelf {
				c.errorf(x.Pos, "self needs the `use self` directive at the top of the schema")
				ok = false
			}
		case *Ident:
			if info.members[x.Name] == nil {
				c.errorf(x.Pos, "unknown relation or permission %s in definition %s", x.Name, defName)
				ok = false
			}
		case *ArrowExpr:
			if !c.checkArrow(info, x) {
				ok = false
			}
		}
	}
	return ok
}

func (c *compiler) checkArrow(info *defInfo, a *ArrowExpr) bool {
	defName := info.decl.Name.Name
	left, isIdent := a.Left.(*Ident)
	if !isIdent {
		c.errorf(a.Left.Start(), "the left side of %s must be a relation of definition %s", arrowSpelling(a.Op), defName)
		return false
	}
	m := info.members[left.Name]
	switch m := m.(type) {
	case nil:
		c.errorf(left.Pos, "unknown relation %s in definition %s", left.Name, defName)
		return false
	case *PermissionDecl:
		c.errorf(left.Pos, "%s is a permission: the left side of %s must be a relation", left.Name, arrowSpelling(a.Op))
		return false
	case *RelationDecl:
		if m.Bad {
			return true
		}
		var types []string
		unknown := false
		for _, t := range m.Types {
			target, ok := c.defs[t.Type.Name]
			if !ok {
				unknown = true
				continue
			}
			if target.members[a.Right.Name] != nil {
				return true
			}
			types = appendUnique(types, t.Type.Name)
		}
		if unknown {
			return true // already reported on the relation
		}
		c.errorf(a.Right.Pos, "%s exists on none of the subject types of %s#%s (%s)",
			a.Right.Name, defName, left.Name, strings.Join(types, ", "))
		return false
	}
	return true
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func arrowSpelling(op ArrowOp) string {
	switch op {
	case ArrowAny:
		return ".any()"
	case ArrowAll:
		return ".all()"
	}
	return "->"
}

// rewrite compiles a checked expression at depth (1 for the root). Unions and
// intersections are flattened; ok is false when the tree is deeper than
// MaxExpressionDepth.
func (c *compiler) rewrite(e Expr, depth int) (*Rewrite, bool) {
	if depth > MaxExpressionDepth {
		return nil, false
	}
	switch e := e.(type) {
	case *Ident:
		return &Rewrite{Kind: ComputedUserset, Relation: e.Name, Pos: e.Pos}, true
	case *NilExpr:
		return &Rewrite{Kind: Nil, Pos: e.Pos}, true
	case *SelfExpr:
		return &Rewrite{Kind: Self, Pos: e.Pos}, true
	case *ArrowExpr:
		left := e.Left.(*Ident)
		return &Rewrite{Kind: TupleToUserset, Tupleset: left.Name, Relation: e.Right.Name, All: e.Op == ArrowAll, Pos: left.Pos}, true
	case *BinaryExpr:
		rw := &Rewrite{Pos: e.Start()}
		var operands []Expr
		switch e.Op {
		case OpExclusion:
			rw.Kind = Exclusion
			operands = []Expr{e.X, e.Y}
		case OpIntersection:
			rw.Kind = Intersection
			operands = flatten(e)
		case OpUnion:
			rw.Kind = Union
			operands = flatten(e)
		}
		rw.Children = make([]*Rewrite, len(operands))
		for i, x := range operands {
			child, ok := c.rewrite(x, depth+1)
			if !ok {
				return nil, false
			}
			rw.Children[i] = child
		}
		return rw, true
	}
	return nil, false
}

// flatten returns the operands of a chain of e.Op, in order, without recursion.
func flatten(e *BinaryExpr) []Expr {
	var out []Expr
	stack := []Expr{e}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if b, ok := x.(*BinaryExpr); ok && b.Op == e.Op {
			stack = append(stack, b.Y, b.X)
			continue
		}
		out = append(out, x)
	}
	return out
}
