// Package validation runs zed-style validation files offline: it loads
// the schema and relationships into an in-memory Pebble store and checks every
// assertion and expected subject set with the engine. It backs `relata validate`, the
// engine's own YAML tests and the SpiceDB conformance suite.
//
// A file is YAML with the keys `schema` (text) or `schemaFile` (a path relative to the
// file), `relationships` (one tuple a line, `//` comments), `assertions` (`assertTrue`,
// `assertFalse`, `assertCaveated`: lists of `object#permission@subject`) and
// `validation` (a map from `object#relation` to the exact list of expected subjects in
// SpiceDB's notation, `[user:tom] is <document:1#viewer>`). Relationships may carry
// caveats and expirations (`[NAME:{json}]`, `[expiration:RFC3339]`) and assertions a
// caveat context (`doc:1#view@user:anne with {"ip": "10.0.0.1"}`); assertCaveated
// expects a conditional answer. As in zed, a file may not set both schema and
// schemaFile, nor write one relationship twice.
package validation

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// File is a parsed validation file. Lines are 1-based lines of the file.
type File struct {
	// Path is the file's path as given; Dir resolves schemaFile.
	Path string
	// Schema is the schema text; SchemaLine is the file line of its first line
	// (SchemaLiteral says whether schema lines map one to one onto file lines).
	// With schemaFile, SchemaFile is the path read and SchemaLine the key's line.
	Schema        string
	SchemaLine    int
	SchemaLiteral bool
	SchemaFile    string
	// Relationships are the tuples, one per non-empty, non-comment line.
	Relationships []Line
	// Assertions in file order.
	Assertions []Assertion
	// Validation lists the expected subject sets in file order.
	Validation []Expectation
}

// Line is a piece of text with its file line.
type Line struct {
	Text string
	Line int
}

// AssertionKind says what an assertion expects.
type AssertionKind string

// Assertion kinds, named as the YAML keys.
const (
	AssertTrue     AssertionKind = "assertTrue"
	AssertFalse    AssertionKind = "assertFalse"
	AssertCaveated AssertionKind = "assertCaveated"
)

// Assertion is one `object#permission@subject` expected true, false or caveated.
type Assertion struct {
	Kind AssertionKind
	Line
}

// Expectation is the exact expected subject set of one `object#relation`.
type Expectation struct {
	Key      Line // object#relation
	Subjects []Line
}

// Error is a problem at a line of a file, printed `path:line: msg`.
type Error struct {
	Path string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line <= 0 {
		return fmt.Sprintf("%s: %s", e.Path, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
}

// ReadFile reads and parses the validation file at path, resolving schemaFile
// relative to it.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse parses a validation file. Malformed input is an *Error with the line; a
// schemaFile is read relative to path's directory.
func Parse(path string, data []byte) (*File, error) {
	f := &File{Path: path}
	errAt := func(line int, format string, args ...any) error {
		return &Error{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line := yamlErrorLine(err)
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.TrimPrefix(msg, fmt.Sprintf("line %d: ", line)) // the line is already in front
		return nil, errAt(line, "invalid YAML: %s", msg)
	}
	if len(doc.Content) == 0 {
		return nil, errAt(1, "empty file")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, errAt(root.Line, "expected a mapping with schema, relationships, assertions, validation")
	}
	rawLines := strings.Split(string(data), "\n")
	schemaKey := ""
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		if key.Value == "schema" || key.Value == "schemaFile" {
			if schemaKey != "" {
				return nil, errAt(key.Line, "%s: the file already has %s: set schema or schemaFile, not both", key.Value, schemaKey)
			}
			schemaKey = key.Value
		}
		switch key.Value {
		case "schema":
			if val.Kind != yaml.ScalarNode {
				return nil, errAt(val.Line, "schema: expected text")
			}
			f.Schema = val.Value
			f.SchemaLine, f.SchemaLiteral = textStart(val)
		case "schemaFile":
			if val.Kind != yaml.ScalarNode {
				return nil, errAt(val.Line, "schemaFile: expected a path")
			}
			p := val.Value
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(path), p)
			}
			text, err := os.ReadFile(p)
			if err != nil {
				return nil, errAt(val.Line, "schemaFile: %v", err)
			}
			f.Schema = string(text)
			f.SchemaLine, f.SchemaLiteral, f.SchemaFile = val.Line, false, p
		case "relationships":
			if val.Kind != yaml.ScalarNode {
				return nil, errAt(val.Line, "relationships: expected text, one tuple a line")
			}
			f.Relationships = textLines(val, rawLines)
		case "assertions":
			as, err := parseAssertions(path, val)
			if err != nil {
				return nil, err
			}
			f.Assertions = as
		case "validation":
			vs, err := parseValidation(path, val)
			if err != nil {
				return nil, err
			}
			f.Validation = vs
		default:
			return nil, errAt(key.Line, "unknown key %q (want schema, schemaFile, relationships, assertions or validation)", key.Value)
		}
	}
	return f, nil
}

// textStart returns the file line of a scalar's first line and whether its lines map
// one to one onto file lines (literal block scalars do).
func textStart(n *yaml.Node) (int, bool) {
	switch n.Style {
	case yaml.LiteralStyle:
		return n.Line + 1, true
	case yaml.FoldedStyle:
		return n.Line + 1, false
	}
	return n.Line, false
}

// textLines splits a text scalar into its non-empty, non-comment lines and finds the
// file line of each by searching the raw file forward from the scalar.
func textLines(n *yaml.Node, raw []string) []Line {
	start, _ := textStart(n)
	next := start - 1 // index into raw
	var out []Line
	for _, l := range strings.Split(n.Value, "\n") {
		l = cutComment(l)
		if l == "" || strings.HasPrefix(l, "//") {
			continue
		}
		line := n.Line
		// A line that is exactly the tuple (after a trailing comment is cut) is the one;
		// a mere mention, in a comment above it, is not. Quoted scalars fall back to any
		// line containing it.
		if j := findLine(raw, max(next, 0), func(r string) bool { return cutComment(r) == l }); j >= 0 {
			line, next = j+1, j+1
		} else if j := findLine(raw, max(next, 0), func(r string) bool { return strings.Contains(r, l) }); j >= 0 {
			line, next = j+1, j+1
		}
		out = append(out, Line{Text: l, Line: line})
	}
	return out
}

// findLine returns the index of the first of raw[from:] that match accepts, or -1.
func findLine(raw []string, from int, match func(string) bool) int {
	for j := from; j < len(raw); j++ {
		if match(raw[j]) {
			return j
		}
	}
	return -1
}

// cutComment trims a raw line and drops a trailing ` //` comment.
func cutComment(r string) string {
	r = strings.TrimSpace(r)
	if i := strings.Index(r, " //"); i >= 0 {
		r = strings.TrimSpace(r[:i])
	}
	return r
}

func parseAssertions(path string, n *yaml.Node) ([]Assertion, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, &Error{Path: path, Line: n.Line, Msg: "assertions: expected a mapping of assertTrue, assertFalse, assertCaveated"}
	}
	var out []Assertion
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		kind := AssertionKind(key.Value)
		switch kind {
		case AssertTrue, AssertFalse, AssertCaveated:
		default:
			return nil, &Error{Path: path, Line: key.Line, Msg: fmt.Sprintf("assertions: unknown key %q (want assertTrue, assertFalse or assertCaveated)", key.Value)}
		}
		if val.Kind == yaml.ScalarNode && val.Tag == "!!null" {
			continue
		}
		if val.Kind != yaml.SequenceNode {
			return nil, &Error{Path: path, Line: val.Line, Msg: fmt.Sprintf("assertions: %s: expected a list", key.Value)}
		}
		for _, item := range val.Content {
			if item.Kind != yaml.ScalarNode {
				return nil, &Error{Path: path, Line: item.Line, Msg: fmt.Sprintf("assertions: %s: expected object#permission@subject", key.Value)}
			}
			out = append(out, Assertion{Kind: kind, Line: Line{Text: strings.TrimSpace(item.Value), Line: item.Line}})
		}
	}
	return out, nil
}

func parseValidation(path string, n *yaml.Node) ([]Expectation, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, &Error{Path: path, Line: n.Line, Msg: "expected a mapping from object#relation to subjects"}
	}
	var out []Expectation
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		exp := Expectation{Key: Line{Text: strings.TrimSpace(key.Value), Line: key.Line}}
		switch {
		case val.Kind == yaml.ScalarNode && val.Tag == "!!null":
		case val.Kind == yaml.SequenceNode:
			for _, item := range val.Content {
				if item.Kind != yaml.ScalarNode {
					return nil, &Error{Path: path, Line: item.Line, Msg: "expected `[subject] is <object#relation>`"}
				}
				exp.Subjects = append(exp.Subjects, Line{Text: strings.TrimSpace(item.Value), Line: item.Line})
			}
		default:
			return nil, &Error{Path: path, Line: val.Line, Msg: fmt.Sprintf("%s: expected a list", key.Value)}
		}
		out = append(out, exp)
	}
	return out, nil
}

// yamlErrorLine extracts "line N" from a YAML error, or 0.
func yamlErrorLine(err error) int {
	msg := err.Error()
	if i := strings.Index(msg, "line "); i >= 0 {
		var n int
		if _, scanErr := fmt.Sscanf(msg[i:], "line %d", &n); scanErr == nil {
			return n
		}
	}
	return 0
}
