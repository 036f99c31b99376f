package schema

import (
	"bytes"
	"strings"
)

// Format parses schema source and returns it in canonical form: one definition per
// paragraph, members indented by a tab, single spaces around operators, parentheses
// around every operand that is itself an operation of another precedence (so `a - b + c`
// prints as `a - (b + c)`), and every comment kept in place. Formatting is idempotent.
// On syntax errors it returns nil and the ErrorList; names are not checked.
func Format(src []byte) ([]byte, error) {
	f, err := Parse("", src)
	if err != nil {
		return nil, err
	}
	return FormatFile(f), nil
}

// FormatFile prints f in canonical form (see Format). f should be free of syntax
// errors: members marked Bad print incompletely.
func FormatFile(f *File) []byte {
	p := &printer{}
	const (
		none = iota
		directive
		declaration
	)
	prev := none
	for _, d := range f.Directives {
		p.leading(&d.Comments, "", prev != none && firstBlank(&d.Comments))
		p.line("", "use "+d.Name.Name, d.Trailing)
		prev = directive
	}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *DefinitionDecl:
			p.leading(&d.Comments, "", prev != none)
			p.definition(d)
		case *CaveatDecl:
			p.leading(&d.Comments, "", prev != none)
			p.caveat(d)
		}
		prev = declaration
	}
	for i, c := range f.Comments {
		blank := c.BlankBefore && (i > 0 || prev != none)
		p.comment("", c, blank)
	}
	return p.b.Bytes()
}

// Text returns the schema in canonical source form. A schema compiled from source
// keeps that source's comments; one built by hand is printed from its rewrite trees.
func (s *Schema) Text() []byte {
	if s.file != nil {
		return FormatFile(s.file)
	}
	return s.textFromRewrites()
}

type printer struct {
	b bytes.Buffer
}

// firstBlank reports whether an empty line preceded the node or its first comment.
func firstBlank(c *Comments) bool {
	if len(c.Leading) > 0 {
		return c.Leading[0].BlankBefore
	}
	return c.BlankBefore
}

// leading prints a node's leading comments; blank says whether an empty line goes
// first. An empty line between the comments and the node is kept.
func (p *printer) leading(c *Comments, indent string, blank bool) {
	for i, cm := range c.Leading {
		b := cm.BlankBefore
		if i == 0 {
			b = blank
		}
		p.comment(indent, cm, b)
	}
	switch {
	case len(c.Leading) > 0 && c.BlankBefore:
		p.b.WriteByte('\n')
	case len(c.Leading) == 0 && blank:
		p.b.WriteByte('\n')
	}
}

func (p *printer) comment(indent string, c *Comment, blank bool) {
	if blank {
		p.b.WriteByte('\n')
	}
	p.b.WriteString(indent)
	p.b.WriteString(reindentComment(c.Text, indent))
	p.b.WriteByte('\n')
}

// reindentComment aligns the ` *` continuation lines of a block comment under its
// first line; other lines are kept as written (without trailing blanks).
func reindentComment(text, indent string) string {
	if !strings.Contains(text, "\n") {
		return text
	}
	lines := strings.Split(text, "\n")
	for i := range lines {
		l := strings.TrimRight(lines[i], " \t\r")
		if i > 0 {
			if t := strings.TrimLeft(l, " \t"); strings.HasPrefix(t, "*") {
				l = indent + " " + t
			}
		}
		lines[i] = l
	}
	return strings.Join(lines, "\n")
}

// line prints indent, text and the trailing comments, and ends the line.
func (p *printer) line(indent, text string, trailing []*Comment) {
	p.b.WriteString(indent)
	p.b.WriteString(text)
	for _, c := range trailing {
		p.b.WriteByte(' ')
		p.b.WriteString(reindentComment(c.Text, indent))
	}
	p.b.WriteByte('\n')
}

func (p *printer) definition(d *DefinitionDecl) {
	head := "definition " + d.Name.Name + " {"
	if len(d.Members) == 0 && len(d.Trailing) == 0 && len(d.Close.Leading) == 0 {
		p.line("", head+"}", d.Close.Trailing)
		return
	}
	p.line("", head, d.Trailing)
	for i, m := range d.Members {
		var text string
		var c *Comments
		switch m := m.(type) {
		case *RelationDecl:
			text, c = relationText(m), &m.Comments
		case *PermissionDecl:
			text, c = "permission "+m.Name.Name+" = "+ExprString(m.Expr), &m.Comments
		}
		p.leading(c, "\t", i > 0 && firstBlank(c))
		p.line("\t", text, c.Trailing)
	}
	for i, cm := range d.Close.Leading {
		b := cm.BlankBefore && (i > 0 || len(d.Members) > 0)
		p.comment("\t", cm, b)
	}
	p.line("", "}", d.Close.Trailing)
}

func relationText(r *RelationDecl) string {
	var b strings.Builder
	b.WriteString("relation ")
	b.WriteString(r.Name.Name)
	b.WriteString(": ")
	for i, t := range r.Types {
		if i > 0 {
			b.WriteString(" | ")
		}
		b.WriteString(t.Type.Name)
		switch {
		case t.Relation != nil:
			b.WriteString("#" + t.Relation.Name)
		case t.Wildcard:
			b.WriteString(":*")
		}
		switch {
		case t.Caveat != nil && t.Expiration:
			b.WriteString(" with " + t.Caveat.Name + " and expiration")
		case t.Caveat != nil:
			b.WriteString(" with " + t.Caveat.Name)
		case t.Expiration:
			b.WriteString(" with expiration")
		}
	}
	return b.String()
}

func (p *printer) caveat(d *CaveatDecl) {
	p.b.WriteString("caveat " + d.Name.Name + "(" + d.Params + ") {\n")
	if d.Body != "" {
		for _, l := range strings.Split(d.Body, "\n") {
			p.b.WriteString("\t" + l + "\n")
		}
	}
	p.line("", "}", d.Trailing)
}

// ExprString prints a permission expression in canonical form (see Format).
func ExprString(e Expr) string {
	var b strings.Builder
	writeExpr(&b, e)
	return b.String()
}

// writeExpr prints e. Chains of one operator and arrow chains are walked in loops, so
// recursion goes only as deep as the printed parentheses (bounded by the parser).
func writeExpr(b *strings.Builder, e Expr) {
	switch e := e.(type) {
	case nil:
		b.WriteString("<missing>")
	case *Ident:
		b.WriteString(e.Name)
	case *NilExpr:
		b.WriteString("nil")
	case *SelfExpr:
		b.WriteString("self")
	case *ArrowExpr:
		var chain []*ArrowExpr
		var x Expr = e
		for {
			a, ok := x.(*ArrowExpr)
			if !ok {
				break
			}
			chain = append(chain, a)
			x = a.Left
		}
		writeOperand(b, x)
		for i := len(chain) - 1; i >= 0; i-- {
			switch a := chain[i]; a.Op {
			case ArrowAny:
				b.WriteString(".any(" + a.Right.Name + ")")
			case ArrowAll:
				b.WriteString(".all(" + a.Right.Name + ")")
			default:
				b.WriteString("->" + a.Right.Name)
			}
		}
	case *BinaryExpr:
		// The left spine of the same operator prints without parentheses.
		var rights []Expr
		var x Expr = e
		for {
			bx, ok := x.(*BinaryExpr)
			if !ok || bx.Op != e.Op {
				break
			}
			rights = append(rights, bx.Y)
			x = bx.X
		}
		writeOperand(b, x)
		op := " " + e.Op.String() + " "
		for i := len(rights) - 1; i >= 0; i-- {
			b.WriteString(op)
			writeOperand(b, rights[i])
		}
	}
}

// writeOperand prints an operand, in parentheses when it is an operation itself.
func writeOperand(b *strings.Builder, e Expr) {
	if _, ok := e.(*BinaryExpr); ok {
		b.WriteByte('(')
		writeExpr(b, e)
		b.WriteByte(')')
		return
	}
	writeExpr(b, e)
}

// textFromRewrites prints a hand-built schema from its compiled form.
func (s *Schema) textFromRewrites() []byte {
	var b strings.Builder
	if s.UseSelf {
		b.WriteString("use self\n")
	}
	if s.UseExpiration {
		b.WriteString("use expiration\n")
	}
	for i, name := range s.Order {
		d := s.Definitions[name]
		if d == nil {
			continue
		}
		if i > 0 || s.UseSelf || s.UseExpiration {
			b.WriteByte('\n')
		}
		if len(d.Order) == 0 {
			b.WriteString("definition " + name + " {}\n")
			continue
		}
		b.WriteString("definition " + name + " {\n")
		for _, rn := range d.Order {
			r := d.Relations[rn]
			if r == nil {
				continue
			}
			if !r.Permission {
				names := make([]string, len(r.Allowed))
				for i, a := range r.Allowed {
					names[i] = a.String()
				}
				b.WriteString("\trelation " + rn + ": " + strings.Join(names, " | ") + "\n")
				continue
			}
			b.WriteString("\tpermission " + rn + " = ")
			writeRewrite(&b, r.Rewrite)
			b.WriteByte('\n')
		}
		b.WriteString("}\n")
	}
	return []byte(b.String())
}

func writeRewrite(b *strings.Builder, rw *Rewrite) {
	if rw == nil {
		b.WriteString("nil")
		return
	}
	switch rw.Kind {
	case This, Nil:
		b.WriteString("nil")
	case Self:
		b.WriteString("self")
	case ComputedUserset:
		b.WriteString(rw.Relation)
	case TupleToUserset:
		if rw.All {
			b.WriteString(rw.Tupleset + ".all(" + rw.Relation + ")")
		} else {
			b.WriteString(rw.Tupleset + "->" + rw.Relation)
		}
	case Union, Intersection, Exclusion:
		op := map[RewriteKind]string{Union: " + ", Intersection: " & ", Exclusion: " - "}[rw.Kind]
		for i, c := range rw.Children {
			if i > 0 {
				b.WriteString(op)
			}
			switch c.Kind {
			case Union, Intersection, Exclusion:
				b.WriteByte('(')
				writeRewrite(b, c)
				b.WriteByte(')')
			default:
				writeRewrite(b, c)
			}
		}
	}
}
