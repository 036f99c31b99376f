package tuples

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// MaxLineBytes is the longest line a Scanner accepts: room for a tuple with two
// 1024-byte ids and a caveat suffix. A longer line fails the scan with a *LineError.
const MaxLineBytes = 64 << 10

// ErrLineTooLong is the error of a *LineError for a line longer than MaxLineBytes.
var ErrLineTooLong = errors.New("line longer than 64 KiB")

// Scanner reads the text form of tuples, one a line, as in `relata import` files and
// the `relationships` of validation files: blank lines and comment lines (`//` after
// optional white space) are skipped, and a trailing comment after white space
// (`flow:f1#granted@user:anne  // why`) is dropped. Object ids never contain white
// space, so such a comment cannot be part of a tuple.
//
// Use it like bufio.Scanner: call Scan until it returns false, then check Err. Line
// reports the 1-based line number of the current line, for error messages. A Scanner
// is not safe for concurrent use.
type Scanner struct {
	sc     *bufio.Scanner
	line   int
	text   []byte
	offset int64
	err    error
}

// NewScanner returns a Scanner reading r.
func NewScanner(r io.Reader) *Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, MaxLineBytes), MaxLineBytes)
	return &Scanner{sc: sc}
}

// Scan advances to the next line holding a tuple. It returns false at the end of the
// input or on a read error (see Err).
func (s *Scanner) Scan() bool {
	if s.err != nil {
		return false
	}
	for s.sc.Scan() {
		s.line++
		raw := s.sc.Bytes()
		s.offset += int64(len(raw)) + 1
		if text := stripComment(raw); len(text) > 0 {
			s.text = text
			return true
		}
	}
	s.text = nil
	if err := s.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = ErrLineTooLong
		}
		s.err = &LineError{Line: s.line + 1, Err: err}
	}
	return false
}

// stripComment trims white space and a `//` comment that starts the line or follows
// white space.
func stripComment(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if bytes.HasPrefix(b, []byte("//")) {
		return nil
	}
	for i := 1; i+1 < len(b); i++ {
		if b[i] == '/' && b[i+1] == '/' && (b[i-1] == ' ' || b[i-1] == '\t') {
			return bytes.TrimSpace(b[:i])
		}
	}
	return b
}

// Bytes returns the current line without surrounding white space and trailing
// comment. The slice is valid until the next call of Scan.
func (s *Scanner) Bytes() []byte { return s.text }

// Text returns the current line as Bytes does, as a new string.
func (s *Scanner) Text() string { return string(s.text) }

// Line returns the 1-based number of the current line.
func (s *Scanner) Line() int { return s.line }

// Offset returns how many bytes of the input the Scanner has consumed through the
// current line (counting one byte per line end), for progress reports.
func (s *Scanner) Offset() int64 { return s.offset }

// Tuple parses the current line with ParseTuple. The error is ParseTuple's.
func (s *Scanner) Tuple() (Tuple, error) { return ParseTuple(string(s.text)) }

// Err returns the error that stopped Scan, nil at a clean end of input. A read
// error is a *LineError naming the line it stopped at.
func (s *Scanner) Err() error { return s.err }

// LineError is an error of one input line: `NAME:LINE: reason`, then the offending
// text on the next line when Text is set. Name is the file name ("-" for stdin) and
// may be empty.
type LineError struct {
	Name string
	Line int
	Text string
	Err  error
}

// Error prints `NAME:LINE: reason` and, on a second indented line, the text.
func (e *LineError) Error() string {
	var b []byte
	if e.Name != "" {
		b = append(b, e.Name...)
		b = append(b, ':')
	}
	b = strconv.AppendInt(b, int64(e.Line), 10)
	b = append(b, ": "...)
	b = append(b, e.Err.Error()...)
	if e.Text != "" {
		b = append(b, "\n    "...)
		b = append(b, e.Text...)
	}
	return string(b)
}

// Unwrap returns the line's error.
func (e *LineError) Unwrap() error { return e.Err }
