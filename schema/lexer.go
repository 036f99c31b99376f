package schema

import "fmt"

// tokenKind is the kind of a lexical token. Keywords are identifiers; the parser
// recognizes them by text where the grammar expects them.
type tokenKind uint8

const (
	tokEOF       tokenKind = iota
	tokIdent               // user, test/user, relation, nil, ...
	tokLBrace              // {
	tokRBrace              // }
	tokLParen              // (
	tokRParen              // )
	tokColon               // :
	tokPipe                // |
	tokHash                // #
	tokStar                // *
	tokEquals              // =
	tokPlus                // +
	tokAmp                 // &
	tokMinus               // -
	tokArrow               // ->
	tokDot                 // .
	tokSemicolon           // ;
	tokOther               // any other punctuation the grammar never accepts
)

var tokenNames = [...]string{
	tokEOF:       "end of input",
	tokIdent:     "identifier",
	tokLBrace:    "{",
	tokRBrace:    "}",
	tokLParen:    "(",
	tokRParen:    ")",
	tokColon:     ":",
	tokPipe:      "|",
	tokHash:      "#",
	tokStar:      "*",
	tokEquals:    "=",
	tokPlus:      "+",
	tokAmp:       "&",
	tokMinus:     "-",
	tokArrow:     "->",
	tokDot:       ".",
	tokSemicolon: ";",
	tokOther:     "character",
}

func (k tokenKind) String() string { return tokenNames[k] }

// token is one lexical token. off and end are byte offsets into the source; nlBefore
// counts the newlines between the previous token or comment and this one.
type token struct {
	kind     tokenKind
	text     string
	pos      Position
	off, end int
	nlBefore int
}

// describe names the token for an error message: `identifier "foo"`, `"{"`.
func (t token) describe() string {
	if t.kind == tokEOF {
		return "end of input"
	}
	return fmt.Sprintf("%q", t.text)
}

// lexer splits schema source into tokens, collecting comments on the side. It never
// fails: bad characters are reported through errorf and skipped.
type lexer struct {
	src       []byte
	off       int
	line      int
	lineStart int
	nl        int // newlines since the last token or comment
	comments  []*Comment
	errorf    func(pos Position, format string, args ...any)
}

func newLexer(src []byte, errorf func(Position, string, ...any)) *lexer {
	l := &lexer{src: src, line: 1, errorf: errorf}
	if len(src) >= 3 && src[0] == 0xEF && src[1] == 0xBB && src[2] == 0xBF {
		// Skip a UTF-8 byte order mark; columns count from after it.
		l.off, l.lineStart = 3, 3
	}
	return l
}

func (l *lexer) pos(off int) Position {
	return Position{Line: l.line, Column: off - l.lineStart + 1}
}

// newline records a newline at offset off (the '\n' byte).
func (l *lexer) newline(off int) {
	l.line++
	l.lineStart = off + 1
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || c >= '0' && c <= '9'
}

// next returns the next token, skipping whitespace and comments.
func (l *lexer) next() token {
	for l.off < len(l.src) {
		c := l.src[l.off]
		switch {
		case c == '\n':
			l.newline(l.off)
			l.nl++
			l.off++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			l.off++
		case c == '/' && l.off+1 < len(l.src) && l.src[l.off+1] == '/':
			l.lineComment()
		case c == '/' && l.off+1 < len(l.src) && l.src[l.off+1] == '*':
			l.blockComment()
		default:
			return l.scanToken()
		}
	}
	return token{kind: tokEOF, pos: l.pos(l.off), off: l.off, end: l.off, nlBefore: l.take()}
}

// take returns and resets the newline count.
func (l *lexer) take() int {
	n := l.nl
	l.nl = 0
	return n
}

func (l *lexer) lineComment() {
	start := l.off
	pos := l.pos(start)
	for l.off < len(l.src) && l.src[l.off] != '\n' {
		l.off++
	}
	text := string(l.src[start:l.off])
	// Trailing carriage returns and blanks are not part of the comment.
	for len(text) > 2 && (text[len(text)-1] == '\r' || text[len(text)-1] == ' ' || text[len(text)-1] == '\t') {
		text = text[:len(text)-1]
	}
	l.addComment(pos, start, l.off, l.line, text)
}

func (l *lexer) blockComment() {
	start := l.off
	pos := l.pos(start)
	l.off += 2
	for {
		if l.off >= len(l.src) {
			l.errorf(pos, "comment not terminated")
			break
		}
		c := l.src[l.off]
		if c == '*' && l.off+1 < len(l.src) && l.src[l.off+1] == '/' {
			l.off += 2
			break
		}
		if c == '\n' {
			l.newline(l.off)
		}
		l.off++
	}
	l.addComment(pos, start, l.off, l.line, string(l.src[start:l.off]))
}

func (l *lexer) addComment(pos Position, off, end, endLine int, text string) {
	l.comments = append(l.comments, &Comment{
		Pos:         pos,
		Text:        text,
		BlankBefore: l.take() >= 2,
		off:         off,
		end:         end,
		endLine:     endLine,
	})
}

func (l *lexer) scanToken() token {
	start := l.off
	t := token{pos: l.pos(start), off: start, nlBefore: l.take()}
	c := l.src[l.off]
	l.off++
	switch {
	case isIdentStart(c):
		// Identifiers may contain '/' between name characters: `test/user`.
		for l.off < len(l.src) {
			d := l.src[l.off]
			if isIdentChar(d) || d == '/' && l.off+1 < len(l.src) && isIdentChar(l.src[l.off+1]) {
				l.off++
				continue
			}
			break
		}
		t.kind = tokIdent
	case c == '-' && l.off < len(l.src) && l.src[l.off] == '>':
		l.off++
		t.kind = tokArrow
	default:
		switch c {
		case '{':
			t.kind = tokLBrace
		case '}':
			t.kind = tokRBrace
		case '(':
			t.kind = tokLParen
		case ')':
			t.kind = tokRParen
		case ':':
			t.kind = tokColon
		case '|':
			t.kind = tokPipe
		case '#':
			t.kind = tokHash
		case '*':
			t.kind = tokStar
		case '=':
			t.kind = tokEquals
		case '+':
			t.kind = tokPlus
		case '&':
			t.kind = tokAmp
		case '-':
			t.kind = tokMinus
		case '.':
			t.kind = tokDot
		case ';':
			t.kind = tokSemicolon
		default:
			t.kind = tokOther
			if c >= 0x80 || c < 0x20 || c == 0x7f {
				// Report non-ASCII and control bytes as a byte, not a mangled rune.
				t.end = l.off
				t.text = fmt.Sprintf("\\x%02x", c)
				return t
			}
		}
	}
	t.end = l.off
	t.text = string(l.src[start:l.off])
	return t
}

// raw returns the source text after the current offset up to (not including) the
// close byte that balances open, skipping quoted strings, and moves past that close
// byte. It is used for caveat parameters and bodies, which Relata keeps as text. ok is
// false when the input ends first.
func (l *lexer) raw(open, close byte) (text string, ok bool) {
	start := l.off
	depth := 0
	for l.off < len(l.src) {
		c := l.src[l.off]
		switch {
		case c == '\n':
			l.newline(l.off)
		case c == '\'' || c == '"':
			l.off++
			for l.off < len(l.src) && l.src[l.off] != c {
				if l.src[l.off] == '\\' && l.off+1 < len(l.src) {
					l.off++
				}
				if l.src[l.off] == '\n' {
					l.newline(l.off)
				}
				l.off++
			}
			if l.off >= len(l.src) {
				return string(l.src[start:]), false
			}
		case c == open:
			depth++
		case c == close:
			if depth == 0 {
				text = string(l.src[start:l.off])
				l.off++
				l.nl = 0
				return text, true
			}
			depth--
		}
		l.off++
	}
	return string(l.src[start:]), false
}
