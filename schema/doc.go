// Package schema implements Relata's schema language (SpiceDB-compatible): lexer,
// parser, AST, type checks, compilation to Zanzibar userset rewrites, the canonical
// formatter and the diff used to refuse schema writes that would orphan tuples.
//
// # Entry points
//
//   - Compile parses, checks and compiles source into a *Schema, the immutable form
//     the engine walks; Schema.Relation, Schema.ValidateTuple and Schema.Text serve
//     the read and write paths.
//   - Parse returns the syntax tree (*File) with positions and comments; Format and
//     FormatFile print it in canonical form.
//   - Diff lists the relations and subject types a new schema removes; Removal.Filter
//     and Preconditions turn them into store preconditions.
//
// Errors in source come back as an ErrorList of *Error, each printed
// `file:line:col: reason`, with every error found in one pass.
//
// # Grammar
//
//	file       = { "use" NAME } { definition | caveat }
//	definition = "definition" NAME "{" { relation | permission } "}"
//	relation   = "relation" NAME ":" subject { "|" subject }
//	subject    = TYPE [ "#" NAME | ":" "*" ] [ "with" ( "expiration" | CAVEAT [ "and" "expiration" ] ) ]
//	permission = "permission" NAME "=" expr
//	expr       = operand { op operand }    // op: "-" loosest, then "&", then "+"
//	operand    = primary { "->" NAME | "." ( "any" | "all" ) "(" NAME ")" }
//	primary    = NAME | "nil" | "self" | "(" expr ")"
//	caveat     = "caveat" NAME "(" params ")" "{" cel "}"
//
// All operators are left-associative, so `a - b + c` is `a - (b + c)` and
// `a + b & c` is `(a + b) & c`. Newlines and `;` are insignificant, except that a
// declaration keyword opening a line ends an incomplete declaration (for better error
// recovery). Comments are `//`, `/* */` and `/** */` (a doc comment, attached to the
// declaration that follows).
//
// Caveats and `with expiration` parse, so that SpiceDB schemas are formatted and
// reported precisely, but do not compile: their errors wrap tuples.ErrNotSupported.
//
// # Limits
//
// MaxInputSize, MaxDefinitions, MaxMembers, MaxExpressionDepth and MaxErrors bound
// the work one source can cause: no input panics, recurses without bound or hangs.
package schema
