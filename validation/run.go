package validation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/relata/relata/check"
	"github.com/relata/relata/schema"
	"github.com/relata/relata/server/writes"
	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/pebblestore"
)

// importChunk bounds the tuples of one store import.
const importChunk = 10000

// RunFile reads and runs the validation file at path. It returns every problem found,
// each an *Error with the file line: a malformed file, a schema or tuple the runner
// cannot load, and each failing
// assertion or expectation with what was expected and what was got. The error result
// is for failures of the run itself (the store), not of the file.
func RunFile(ctx context.Context, path string) ([]*Error, error) {
	f, err := ReadFile(path)
	if err != nil {
		var fe *Error
		if errors.As(err, &fe) {
			return []*Error{fe}, nil
		}
		return []*Error{{Path: path, Msg: err.Error()}}, nil
	}
	return Run(ctx, f)
}

// Run loads f's schema and relationships into an in-memory Pebble store and checks
// its assertions and expectations; see RunFile.
func Run(ctx context.Context, f *File) ([]*Error, error) {
	var problems []*Error
	add := func(line int, format string, args ...any) {
		problems = append(problems, &Error{Path: f.Path, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(f.Schema) == "" {
		add(1, "no schema: set schema or schemaFile")
		return problems, nil
	}
	s, err := schema.Compile("schema", []byte(f.Schema))
	if err != nil {
		var list schema.ErrorList
		if errors.As(err, &list) {
			for _, se := range list {
				if f.SchemaFile != "" {
					add(f.SchemaLine, "schemaFile %s:%d:%d: %s", f.SchemaFile, se.Pos.Line, se.Pos.Column, se.Msg)
					continue
				}
				add(f.schemaLine(se.Pos.Line), "schema: %d:%d: %s", se.Pos.Line, se.Pos.Column, se.Msg)
			}
		} else {
			add(f.SchemaLine, "%v", err)
		}
		return problems, nil
	}
	var ts []tuples.Tuple
	firstLine := map[string]int{} // tuple text -> line it was first written on
	for _, l := range f.Relationships {
		t, err := tuples.ParseTuple(l.Text)
		if err == nil {
			err = s.ValidateTuple(t)
		}
		if err != nil {
			add(l.Line, "relationship %s: %v", l.Text, err)
			continue
		}
		// A repeated tuple is a mistake in the file (zed refuses it too), not a no-op.
		if first, ok := firstLine[t.String()]; ok {
			add(l.Line, "relationship %s: repeated relationship (first on line %d)", l.Text, first)
			continue
		}
		firstLine[t.String()] = l.Line
		ts = append(ts, t)
	}
	if len(problems) > 0 {
		return problems, nil
	}

	st, err := pebblestore.Open("validation", &pebblestore.Options{FS: vfs.NewMem(), GCInterval: -1, CacheSize: 8 << 20})
	if err != nil {
		return nil, err
	}
	defer func() { _ = st.Close() }()
	// The server's write path, so that a file loads exactly as the server would
	// load it. No shared cache: each assertion answers on its own, whatever ran before
	// it (a cached sub-problem could otherwise hide a depth error).
	e := check.New(check.Options{CacheBytes: -1})
	w := writes.New(writes.Config{Store: st, Engine: e})
	rev, err := w.WriteSchema(ctx, "schema", []byte(f.Schema))
	if err != nil {
		return nil, fmt.Errorf("writing schema: %w", err)
	}
	chunks := slices.Collect(slices.Chunk(ts, importChunk))
	next := func() ([]tuples.Tuple, error) {
		if len(chunks) == 0 {
			return nil, io.EOF
		}
		c := chunks[0]
		chunks = chunks[1:]
		return c, nil
	}
	if _, irev, err := w.Import(ctx, next); err != nil {
		return nil, fmt.Errorf("loading relationships: %w", err)
	} else if irev != 0 {
		rev = irev
	}
	r, err := st.ReaderAt(ctx, rev)
	if err != nil {
		return nil, err
	}
	for _, a := range f.Assertions {
		if msg := runAssertion(ctx, e, r, a); msg != "" {
			add(a.Line.Line, "%s", msg)
		}
	}
	for _, x := range f.Validation {
		msgs, err := runExpectation(ctx, e, r, x)
		if err != nil {
			return nil, err
		}
		problems = append(problems, withPath(f.Path, msgs)...)
	}
	return problems, nil
}

func withPath(path string, es []*Error) []*Error {
	for _, e := range es {
		e.Path = path
	}
	return es
}

// schemaLine maps a line of the schema text to a line of the file.
func (f *File) schemaLine(line int) int {
	if f.SchemaLiteral && line > 0 {
		return f.SchemaLine + line - 1
	}
	return f.SchemaLine
}

// runAssertion returns what is wrong with one assertion, or "". An assertion may end
// with ` with {JSON}`, the caveat context of its check; assertCaveated expects a
// conditional answer.
func runAssertion(ctx context.Context, e *check.Engine, r tuples.Reader, a Assertion) string {
	text := a.Text
	var reqCtx map[string]any
	if i := strings.Index(text, " with "); i >= 0 {
		raw := strings.TrimSpace(text[i+len(" with "):])
		text = strings.TrimSpace(text[:i])
		if err := json.Unmarshal([]byte(raw), &reqCtx); err != nil || reqCtx == nil {
			return fmt.Sprintf("%s %s: the context after `with` must be a JSON object: %s", a.Kind, a.Text, raw)
		}
	}
	t, err := tuples.ParseTuple(text)
	if err != nil {
		return fmt.Sprintf("%s %s: %v", a.Kind, a.Text, err)
	}
	res, err := e.Check(ctx, r, check.CheckRequest{Object: t.Object, Permission: t.Relation, Subject: t.Subject, Context: reqCtx})
	if err != nil {
		return fmt.Sprintf("%s %s: %v", a.Kind, a.Text, err)
	}
	got := describeResult(res)
	want := map[AssertionKind]string{AssertTrue: "true", AssertFalse: "false", AssertCaveated: "caveated"}[a.Kind]
	if got != want {
		return fmt.Sprintf("%s failed: %s: expected %s, got %s", a.Kind, a.Text, want, got)
	}
	return ""
}

// describeResult prints a check's answer: true, false or caveated (missing: …).
func describeResult(res check.CheckResult) string {
	switch {
	case res.Conditional:
		return "caveated"
	case res.Allowed:
		return "true"
	}
	return "false"
}
