package schema

import (
	"fmt"
	"strings"
)

// Limits on schema source. Input beyond them is rejected with a positioned error (or
// ErrTooLarge for the size), never a crash or a hang.
const (
	// MaxInputSize is the largest schema source accepted, in bytes.
	MaxInputSize = 4 << 20
	// MaxDefinitions is the most definitions (and caveats) one schema may declare.
	MaxDefinitions = 10_000
	// MaxMembers is the most relations and permissions one definition may declare.
	MaxMembers = 1_000
	// MaxExpressionDepth bounds how deeply a permission expression may nest: in
	// parentheses as written or as formatted, and in the compiled rewrite tree.
	MaxExpressionDepth = 64
	// MaxErrors is the most errors reported for one source; parsing stops after it.
	MaxErrors = 100
)

// bailout aborts the current declaration after a syntax error; the parser recovers at
// the next declaration.
type bailout struct{}

// tooManyErrors aborts the whole parse after MaxErrors errors.
type tooManyErrors struct{}

// parser builds a File from tokens. Syntax errors are collected; after each one the
// parser skips to the next member or declaration.
type parser struct {
	filename string
	lex      *lexer
	tok      token
	prevEnd  int // end offset of the previous token
	prevLine int // line of the previous token's end
	errs     ErrorList
	depth    int // parenthesis nesting
	file     *File
	items    []item
}

// item is a span of source that comments can attach to.
type item struct {
	off, end int
	endLine  int
	c        *Comments
}

// Parse parses schema source into a File. On syntax errors it returns the partial File
// and an ErrorList (sorted by position) of every error found; members and declarations
// with errors are marked Bad or skipped. Names are not checked here: see Compile.
// Source larger than MaxInputSize fails with an error wrapping ErrTooLarge.
func Parse(filename string, src []byte) (f *File, err error) {
	f = &File{Filename: filename}
	if len(src) > MaxInputSize {
		return f, tooLargeError(filename, len(src))
	}
	p := &parser{filename: filename, file: f}
	p.lex = newLexer(src, p.errorf)
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(tooManyErrors); !ok {
				panic(r)
			}
		}
		p.attachComments()
		p.errs.RemoveMultiples()
		err = p.errs.Err()
	}()
	p.next()
	p.parseFile()
	return f, nil
}

func tooLargeError(filename string, n int) error {
	return ErrorList{{
		Filename: filename,
		Pos:      Position{Line: 1, Column: 1},
		Msg:      fmt.Sprintf("schema is %d bytes, more than the limit of %d (MaxInputSize)", n, MaxInputSize),
		Err:      ErrTooLarge,
	}}
}

func (p *parser) errorf(pos Position, format string, args ...any) {
	if len(p.errs) >= MaxErrors {
		p.errs.Add(p.filename, pos, fmt.Sprintf("too many errors (more than %d)", MaxErrors))
		panic(tooManyErrors{})
	}
	p.errs.Add(p.filename, pos, fmt.Sprintf(format, args...))
}

// fail reports a syntax error at the current token and abandons the declaration.
func (p *parser) fail(format string, args ...any) {
	p.errorf(p.tok.pos, format, args...)
	panic(bailout{})
}

// expected fails with "expected WHAT, found TOKEN".
func (p *parser) expected(what string) {
	p.fail("expected %s, found %s", what, p.tok.describe())
}

func (p *parser) next() {
	if p.tok.kind != tokEOF || p.tok.end > 0 {
		p.prevEnd = p.tok.end
		p.prevLine = p.lex.line
	}
	for {
		p.tok = p.lex.next()
		if p.tok.kind != tokOther {
			return
		}
		p.errorf(p.tok.pos, "unexpected character %s", p.tok.text)
	}
}

// protect runs f, recovering from a bailout; it reports whether f completed.
func (p *parser) protect(f func()) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, isBail := r.(bailout); !isBail {
				panic(r)
			}
			ok = false
		}
	}()
	f()
	return true
}

func (p *parser) isKeyword(kw string) bool {
	return p.tok.kind == tokIdent && p.tok.text == kw
}

func (p *parser) expect(k tokenKind) token {
	t := p.tok
	if t.kind != k {
		p.expected(fmt.Sprintf("%q", k.String()))
	}
	p.next()
	return t
}

func (p *parser) ident(what string) Ident {
	if p.tok.kind != tokIdent {
		p.expected(what)
	}
	id := Ident{Pos: p.tok.pos, Name: p.tok.text}
	p.next()
	return id
}

// skipSemicolons accepts optional `;` statement terminators.
func (p *parser) skipSemicolons() {
	for p.tok.kind == tokSemicolon {
		p.next()
	}
}

// addItem records a span comments can attach to; it ends at the previous token.
func (p *parser) addItem(off int, c *Comments) {
	p.items = append(p.items, item{off: off, end: p.prevEnd, endLine: p.prevLine, c: c})
}

func (p *parser) parseFile() {
	decls := 0
	for p.tok.kind != tokEOF {
		start := p.tok
		var ok bool
		switch {
		case p.isKeyword("use"):
			if len(p.file.Decls) > 0 {
				p.errorf(p.tok.pos, "use directives must come before all definitions")
			}
			ok = p.protect(p.parseUse)
		case p.isKeyword("definition"), p.isKeyword("caveat"):
			decls++
			if decls > MaxDefinitions {
				p.errorf(p.tok.pos, "more than %d definitions and caveats (MaxDefinitions)", MaxDefinitions)
				return
			}
			if p.isKeyword("definition") {
				ok = p.protect(p.parseDefinition)
			} else {
				ok = p.protect(p.parseCaveat)
			}
		default:
			p.protect(func() { p.expected(`"definition", "caveat" or "use"`) })
		}
		if !ok {
			if p.tok.off == start.off {
				p.next()
			}
			p.syncTop()
		}
	}
}

// syncTop skips to the next top-level keyword.
func (p *parser) syncTop() {
	for p.tok.kind != tokEOF && !p.isKeyword("definition") && !p.isKeyword("caveat") && !p.isKeyword("use") {
		p.next()
	}
}

func (p *parser) parseUse() {
	start := p.tok
	d := &UseDirective{Pos: start.pos}
	d.BlankBefore = start.nlBefore >= 2
	p.next()
	d.Name = p.ident("a directive name after use")
	p.file.Directives = append(p.file.Directives, d)
	p.addItem(start.off, &d.Comments)
	p.skipSemicolons()
}

func (p *parser) parseCaveat() {
	start := p.tok
	d := &CaveatDecl{Pos: start.pos}
	d.BlankBefore = start.nlBefore >= 2
	p.next()
	d.Name = p.ident("a caveat name")
	if p.tok.kind != tokLParen {
		p.expected(`"("`)
	}
	params, ok := p.lex.raw('(', ')')
	if !ok {
		p.errorf(p.tok.pos, "caveat parameters not terminated: missing )")
		p.next()
		panic(bailout{})
	}
	d.Params = normalizeParams(params)
	p.next()
	if p.tok.kind != tokLBrace {
		p.expected(`"{"`)
	}
	d.BodyPos = Position{Line: p.tok.pos.Line, Column: p.tok.pos.Column + 1}
	body, ok := p.lex.raw('{', '}')
	if !ok {
		p.errorf(p.tok.pos, "caveat body not terminated: missing }")
		p.next()
		panic(bailout{})
	}
	d.Body = normalizeBody(body)
	d.rawBody = body
	// The closing brace was consumed by raw; record it as the previous token.
	p.tok = token{kind: tokRBrace, text: "}", end: p.lex.off}
	p.next()
	p.file.Decls = append(p.file.Decls, d)
	p.addItem(start.off, &d.Comments)
	p.skipSemicolons()
}

// normalizeParams collapses white space in caveat parameters: `a int, b list<string>`.
func normalizeParams(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, " ,", ",")
	return s
}

// normalizeBody trims each line of a caveat expression and drops empty lines.
func normalizeBody(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

func (p *parser) parseDefinition() {
	start := p.tok
	d := &DefinitionDecl{Pos: start.pos}
	d.BlankBefore = start.nlBefore >= 2
	p.next()
	d.Name = p.ident("a definition name")
	p.expect(tokLBrace)
	p.file.Decls = append(p.file.Decls, d)
	p.addItem(start.off, &d.Comments)
	tooMany := false
	for {
		switch {
		case p.tok.kind == tokRBrace:
			d.Close.BlankBefore = p.tok.nlBefore >= 2
			off := p.tok.off
			p.next()
			p.addItem(off, &d.Close)
			p.skipSemicolons()
			return
		case p.tok.kind == tokEOF || p.isKeyword("definition") || p.isKeyword("caveat"):
			p.errorf(p.tok.pos, "expected \"}\" to close definition %s, found %s", d.Name.Name, p.tok.describe())
			return
		case p.isKeyword("relation") || p.isKeyword("permission"):
			if len(d.Members) >= MaxMembers {
				if len(d.Members) == MaxMembers && !tooMany {
					p.errorf(p.tok.pos, "definition %s has more than %d relations and permissions (MaxMembers)", d.Name.Name, MaxMembers)
				}
				tooMany = true
				p.next()
				p.syncMember()
				continue
			}
			if !p.protect(func() { p.parseMember(d) }) {
				p.syncMember()
			}
		default:
			p.errorf(p.tok.pos, `expected "relation", "permission" or "}", found %s`, p.tok.describe())
			p.next()
			p.syncMember()
		}
	}
}

// syncMember skips to the next member keyword, closing brace or top-level keyword.
func (p *parser) syncMember() {
	for p.tok.kind != tokEOF && p.tok.kind != tokRBrace &&
		!p.isKeyword("relation") && !p.isKeyword("permission") &&
		!p.isKeyword("definition") && !p.isKeyword("caveat") {
		p.next()
	}
}

func (p *parser) parseMember(d *DefinitionDecl) {
	start := p.tok
	var member Member
	var bad *bool
	var comments *Comments
	named := false
	defer func() {
		if named {
			d.Members = append(d.Members, member)
			p.addItem(start.off, comments)
		}
		if r := recover(); r != nil {
			if named {
				*bad = true
			}
			panic(r)
		}
	}()
	p.next()
	if start.text == "relation" {
		r := &RelationDecl{Pos: start.pos}
		member, bad, comments = r, &r.Bad, &r.Comments
		r.BlankBefore = start.nlBefore >= 2
		r.Name = p.ident("a relation name")
		named = true
		p.expect(tokColon)
		for {
			r.Types = append(r.Types, p.parseTypeRef())
			if p.tok.kind != tokPipe {
				break
			}
			p.next()
		}
	} else {
		r := &PermissionDecl{Pos: start.pos}
		member, bad, comments = r, &r.Bad, &r.Comments
		r.BlankBefore = start.nlBefore >= 2
		r.Name = p.ident("a permission name")
		named = true
		p.expect(tokEquals)
		p.depth = 0
		r.Expr = p.parseExpr()
	}
	p.skipSemicolons()
}

// keywordOpensLine reports whether the current token is a declaration keyword at the
// start of a line: there it ends a declaration left incomplete rather than being read
// as a name (`relation r: user |` followed by a new member).
func (p *parser) keywordOpensLine() bool {
	if p.tok.kind != tokIdent || p.tok.nlBefore == 0 {
		return false
	}
	switch p.tok.text {
	case "relation", "permission", "definition", "caveat":
		return true
	}
	return false
}

func (p *parser) parseTypeRef() *TypeRef {
	if p.keywordOpensLine() {
		p.expected("a subject type")
	}
	t := &TypeRef{Type: p.ident("a subject type")}
	switch p.tok.kind {
	case tokHash:
		p.next()
		if p.tok.kind == tokDot {
			p.fail("subject relation ... is not supported; write the type alone")
		}
		id := p.ident("a relation name after #")
		t.Relation = &id
	case tokColon:
		p.next()
		p.expect(tokStar)
		t.Wildcard = true
	}
	if p.isKeyword("with") {
		p.next()
		switch {
		case p.isKeyword("expiration"):
			t.Expiration, t.ExpirationPos = true, p.tok.pos
			p.next()
			if p.isKeyword("and") { // SpiceDB takes the traits in either order
				p.next()
				id := p.ident("a caveat name after and")
				t.Caveat = &id
			}
		default:
			id := p.ident("a caveat name or expiration after with")
			t.Caveat = &id
			if p.isKeyword("and") {
				p.next()
				if !p.isKeyword("expiration") {
					p.expected(`"expiration" after and`)
				}
				t.Expiration, t.ExpirationPos = true, p.tok.pos
				p.next()
			}
		}
	}
	return t
}

// Expressions, loosest first: `-`, `&`, `+`, then the arrows, all left-associative.

func binaryOpOf(k tokenKind) (BinaryOp, bool) {
	switch k {
	case tokMinus:
		return OpExclusion, true
	case tokAmp:
		return OpIntersection, true
	case tokPlus:
		return OpUnion, true
	}
	return 0, false
}

func (p *parser) parseExpr() Expr { return p.parseBinary(OpExclusion) }

func (p *parser) parseBinary(level BinaryOp) Expr {
	operand := func() Expr {
		if level == OpUnion {
			return p.parseArrow()
		}
		return p.parseBinary(level + 1)
	}
	x := operand()
	for {
		op, ok := binaryOpOf(p.tok.kind)
		if !ok || op != level {
			return x
		}
		opPos := p.tok.pos
		p.next()
		y := operand()
		b := &BinaryExpr{Op: op, OpPos: opPos, X: x, Y: y}
		b.depth = max(parenDepth(x)+boolInt(needsParensLeft(op, x)), parenDepth(y)+boolInt(needsParensRight(y)))
		if b.depth > MaxExpressionDepth {
			p.errorf(opPos, "expression nested more than %d levels deep (MaxExpressionDepth)", MaxExpressionDepth)
			panic(bailout{})
		}
		x = b
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// parenDepth is how deeply the formatter nests parentheses when printing e.
func parenDepth(e Expr) int {
	switch e := e.(type) {
	case *BinaryExpr:
		return e.depth
	case *ArrowExpr:
		return e.depth
	}
	return 0
}

// needsParensLeft reports whether x, the left operand of op, is printed in parentheses:
// a different operator always is, so that precedence never surprises a reader.
func needsParensLeft(op BinaryOp, x Expr) bool {
	b, ok := x.(*BinaryExpr)
	return ok && b.Op != op
}

// needsParensRight reports whether y, a right operand, is printed in parentheses.
func needsParensRight(y Expr) bool {
	_, ok := y.(*BinaryExpr)
	return ok
}

func (p *parser) parseArrow() Expr {
	x := p.parsePrimary()
	for {
		a := &ArrowExpr{Left: x, OpPos: p.tok.pos}
		switch p.tok.kind {
		case tokArrow:
			p.next()
			a.Right = p.ident("a relation or permission name after ->")
		case tokDot:
			p.next()
			switch {
			case p.isKeyword("any"):
				a.Op = ArrowAny
			case p.isKeyword("all"):
				a.Op = ArrowAll
			default:
				p.expected(`"any" or "all" after .`)
			}
			p.next()
			p.expect(tokLParen)
			a.Right = p.ident("a relation or permission name")
			p.expect(tokRParen)
		default:
			return x
		}
		a.depth = parenDepth(x) + boolInt(needsParensRight(x))
		if a.depth > MaxExpressionDepth {
			p.errorf(a.OpPos, "expression nested more than %d levels deep (MaxExpressionDepth)", MaxExpressionDepth)
			panic(bailout{})
		}
		x = a
	}
}

func (p *parser) parsePrimary() Expr {
	switch p.tok.kind {
	case tokIdent:
		t := p.tok
		if p.keywordOpensLine() {
			p.expected("a relation or permission name, nil, self or (")
		}
		p.next()
		switch t.text {
		case "nil":
			return &NilExpr{Pos: t.pos}
		case "self":
			return &SelfExpr{Pos: t.pos}
		}
		return &Ident{Pos: t.pos, Name: t.text}
	case tokLParen:
		p.depth++
		if p.depth > MaxExpressionDepth {
			p.fail("expression nested more than %d levels deep (MaxExpressionDepth)", MaxExpressionDepth)
		}
		p.next()
		x := p.parseExpr()
		p.expect(tokRParen)
		p.depth--
		return x
	}
	p.expected("a relation or permission name, nil, self or (")
	return nil
}

// attachComments hands each comment the lexer collected to the item it belongs to:
// inside an item or on lines before it → leading; after an item on its last line →
// trailing (except doc comments, which lead the next item); after everything → the
// file's comments.
func (p *parser) attachComments() {
	j := 0
	for _, c := range p.lex.comments {
		for j < len(p.items) && p.items[j].end <= c.off {
			j++
		}
		switch {
		case j < len(p.items) && p.items[j].off < c.off:
			p.items[j].c.Leading = append(p.items[j].c.Leading, c)
		case j > 0 && p.items[j-1].endLine == c.Pos.Line && (!c.IsDoc() || j == len(p.items)):
			// A doc comment documents what follows, even on the line of what precedes.
			p.items[j-1].c.Trailing = append(p.items[j-1].c.Trailing, c)
		case j < len(p.items):
			p.items[j].c.Leading = append(p.items[j].c.Leading, c)
		default:
			p.file.Comments = append(p.file.Comments, c)
		}
	}
}
