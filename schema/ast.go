package schema

// This file holds the syntax tree Parse returns. It keeps every position and comment
// so that the formatter can print the source back in canonical form.

// File is a parsed schema source.
type File struct {
	Filename string
	// Directives are the `use NAME` lines that open the schema.
	Directives []*UseDirective
	// Decls are the definitions and caveats in source order.
	Decls []Decl
	// Comments are the comments after the last declaration.
	Comments []*Comment
}

// Comment is a `//`, `/* */` or `/** */` comment, Text including its delimiters.
type Comment struct {
	Pos  Position
	Text string
	// BlankBefore is set when an empty line precedes the comment.
	BlankBefore bool

	off, end, endLine int
}

// IsDoc reports whether c is a `/** */` doc comment.
func (c *Comment) IsDoc() bool {
	return len(c.Text) >= 5 && c.Text[:3] == "/**" && c.Text[3] != '/'
}

// Comments are the comments attached to a node: those on the lines before it and
// those after it on its last line.
type Comments struct {
	Leading  []*Comment
	Trailing []*Comment
	// BlankBefore is set when an empty line separates the node from what precedes it.
	BlankBefore bool
}

// Doc returns the node's doc comment: the last leading comment when it is a `/** */`
// comment directly above the node; nil otherwise.
func (c *Comments) Doc() *Comment {
	if len(c.Leading) == 0 || c.BlankBefore {
		return nil
	}
	if d := c.Leading[len(c.Leading)-1]; d.IsDoc() {
		return d
	}
	return nil
}

// UseDirective is `use NAME` (`use self`, `use expiration`).
type UseDirective struct {
	Pos  Position
	Name Ident
	Comments
}

// Decl is a top-level declaration: *DefinitionDecl or *CaveatDecl.
type Decl interface {
	declNode()
	// Start is the position of the declaration's keyword.
	Start() Position
}

// DefinitionDecl is `definition NAME { members }`.
type DefinitionDecl struct {
	Pos     Position
	Name    Ident
	Members []Member
	// Comments of the header line `definition NAME {`.
	Comments
	// Close holds the comments before and after the closing brace.
	Close Comments
}

// CaveatDecl is `caveat NAME(PARAMS) { EXPRESSION }`. The parser keeps the parameters
// and the CEL expression as text; Compile type-checks them.
type CaveatDecl struct {
	Pos    Position
	Name   Ident
	Params string // normalized: single spaces
	Body   string // normalized: trimmed lines joined by "\n"
	// BodyPos is where the expression's text starts (just after `{`).
	BodyPos Position
	Comments

	rawBody string // the expression as written, for error positions
}

func (*DefinitionDecl) declNode() {}
func (*CaveatDecl) declNode()     {}

// Start returns the position of the `definition` keyword.
func (d *DefinitionDecl) Start() Position { return d.Pos }

// Start returns the position of the `caveat` keyword.
func (d *CaveatDecl) Start() Position { return d.Pos }

// Member is a member of a definition: *RelationDecl or *PermissionDecl.
type Member interface {
	memberNode()
	// MemberName returns the declared name.
	MemberName() Ident
	// Start is the position of the member's keyword.
	Start() Position
}

// RelationDecl is `relation NAME: T1 | T2#rel | T3:*`.
type RelationDecl struct {
	Pos   Position
	Name  Ident
	Types []*TypeRef
	// Bad is set when the relation had a syntax error; Types may be incomplete.
	Bad bool
	Comments
}

// PermissionDecl is `permission NAME = EXPR`.
type PermissionDecl struct {
	Pos  Position
	Name Ident
	Expr Expr // nil when Bad
	// Bad is set when the permission had a syntax error.
	Bad bool
	Comments
}

func (*RelationDecl) memberNode()   {}
func (*PermissionDecl) memberNode() {}

// MemberName returns the relation's name.
func (d *RelationDecl) MemberName() Ident { return d.Name }

// MemberName returns the permission's name.
func (d *PermissionDecl) MemberName() Ident { return d.Name }

// Start returns the position of the `relation` keyword.
func (d *RelationDecl) Start() Position { return d.Pos }

// Start returns the position of the `permission` keyword.
func (d *PermissionDecl) Start() Position { return d.Pos }

// TypeRef is one allowed subject type of a relation: `user`, `role#member`, `user:*`,
// optionally `with CAVEAT`, `with expiration` or `with CAVEAT and expiration`.
type TypeRef struct {
	Type     Ident
	Relation *Ident // `#rel`; nil if absent
	Wildcard bool   // `:*`
	// Caveat is the caveat name after `with`, if any.
	Caveat *Ident
	// Expiration is set for `with expiration`; ExpirationPos is where the `expiration`
	// keyword is.
	Expiration    bool
	ExpirationPos Position
}

// Ident is a name and where it is.
type Ident struct {
	Pos  Position
	Name string
}

// Expr is a permission expression: *Ident, *NilExpr, *SelfExpr, *ArrowExpr or
// *BinaryExpr. Parentheses leave no node; the tree records the grouping.
type Expr interface {
	exprNode()
	// Start is the position where the expression begins.
	Start() Position
}

// NilExpr is `nil`, the empty set.
type NilExpr struct{ Pos Position }

// SelfExpr is `self`, the object itself as a subject (needs `use self`).
type SelfExpr struct{ Pos Position }

// ArrowOp is the spelling of an arrow.
type ArrowOp int

const (
	// Arrow is `left->right`.
	Arrow ArrowOp = iota
	// ArrowAny is `left.any(right)`, the same as Arrow.
	ArrowAny
	// ArrowAll is `left.all(right)`.
	ArrowAll
)

// ArrowExpr is `Left->Right`, `Left.any(Right)` or `Left.all(Right)`. The parser
// accepts any Left; the checker requires a relation name.
type ArrowExpr struct {
	Left  Expr
	Op    ArrowOp
	OpPos Position
	Right Ident
	// depth is the nesting depth in parentheses the formatter prints for this node.
	depth int
}

// BinaryOp is a set operator.
type BinaryOp int

const (
	// OpExclusion is `-`, the loosest operator.
	OpExclusion BinaryOp = iota
	// OpIntersection is `&`.
	OpIntersection
	// OpUnion is `+`, binding tighter than `&` and `-`.
	OpUnion
)

// String returns the operator's symbol.
func (op BinaryOp) String() string {
	switch op {
	case OpExclusion:
		return "-"
	case OpIntersection:
		return "&"
	case OpUnion:
		return "+"
	}
	return "?"
}

// BinaryExpr is `X op Y`.
type BinaryExpr struct {
	Op    BinaryOp
	OpPos Position
	X, Y  Expr
	// depth is the nesting depth in parentheses the formatter prints for this node.
	depth int
}

func (*Ident) exprNode()      {}
func (*NilExpr) exprNode()    {}
func (*SelfExpr) exprNode()   {}
func (*ArrowExpr) exprNode()  {}
func (*BinaryExpr) exprNode() {}

// Start returns the identifier's position.
func (e *Ident) Start() Position { return e.Pos }

// Start returns the position of `nil`.
func (e *NilExpr) Start() Position { return e.Pos }

// Start returns the position of `self`.
func (e *SelfExpr) Start() Position { return e.Pos }

// Start returns the start of the left operand.
func (e *ArrowExpr) Start() Position {
	// Arrows nest on the left; walk down without recursion.
	var x Expr = e
	for {
		a, ok := x.(*ArrowExpr)
		if !ok {
			break
		}
		x = a.Left
	}
	return x.Start()
}

// Start returns the start of the left operand.
func (e *BinaryExpr) Start() Position {
	var x Expr = e
	for {
		b, ok := x.(*BinaryExpr)
		if !ok {
			break
		}
		x = b.X
	}
	return x.Start()
}
