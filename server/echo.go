package server

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxEchoBytes bounds a value a message or an error's metadata echoes back; a longer
// one is cut there and its length stated.
const maxEchoBytes = 256

// quoteValue quotes v for an error message: Go-quoted (so invalid UTF-8 and control
// characters are escaped), and cut to maxEchoBytes with its length stated when longer.
func quoteValue(v string) string {
	cut, suffix := cutValue(v)
	return strconv.Quote(cut) + suffix
}

// cutValue cuts v after maxEchoBytes bytes, on a rune boundary, and returns the
// suffix stating its length, " … (N bytes)", or "" when v is short enough.
func cutValue(v string) (cut, suffix string) {
	if len(v) <= maxEchoBytes {
		return v, ""
	}
	n := maxEchoBytes
	for i := 1; i < utf8.UTFMax && n > 0 && !utf8.RuneStart(v[n]); i++ {
		n--
	}
	return v[:n], fmt.Sprintf("… (%d bytes)", len(v))
}

// echoValue returns v as it may be echoed in an error: valid UTF-8 (invalid bytes
// escaped as \xNN), cut after maxEchoBytes bytes (on a rune boundary) with
// "… (N bytes)" appended when longer.
func echoValue(v string) string {
	cut, suffix := cutValue(v)
	if !utf8.ValidString(cut) {
		q := strconv.Quote(cut)
		cut = q[1 : len(q)-1]
	}
	return cut + suffix
}

// cutEchoes returns msg with every Go-quoted value in it longer than maxEchoBytes
// (unquoted) cut as quoteValue cuts it, and made valid UTF-8, so that an error never
// echoes a huge request value in full.
func cutEchoes(msg string) string {
	if len(msg) <= maxEchoBytes && utf8.ValidString(msg) {
		return msg
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(msg, '"')
		if i < 0 {
			b.WriteString(msg)
			break
		}
		b.WriteString(msg[:i])
		msg = msg[i:]
		q, err := strconv.QuotedPrefix(msg)
		if err != nil {
			b.WriteByte('"')
			msg = msg[1:]
			continue
		}
		if v, err := strconv.Unquote(q); err == nil && len(v) > maxEchoBytes {
			b.WriteString(quoteValue(v))
		} else {
			b.WriteString(q)
		}
		msg = msg[len(q):]
	}
	return strings.ToValidUTF8(b.String(), "\uFFFD")
}
