package schema

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/internal/conformance"
)

// FuzzParse checks that no input makes the parser, checker or formatter panic or hang,
// and that formatting anything that parses gives source that parses to the same tree
// (and compiles to the same rewrites), and is a fixed point of the formatter.
func FuzzParse(f *testing.F) {
	// The conformance schemas are seeds when they are there (see internal/conformance);
	// the fuzz test runs without them on the seeds below.
	if dir, err := conformance.Lookup(); err == nil {
		for _, cs := range conformanceSchemas(f, dir) {
			f.Add([]byte(cs.schema))
		}
	} else if !conformance.IsAbsent(err) {
		f.Fatal(err)
	}
	for _, dir := range []string{"format", "errors", "compile"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.zed"))
		for _, path := range files {
			src, err := os.ReadFile(path)
			require.NoError(f, err)
			f.Add(src)
		}
	}
	f.Add([]byte(designExample))
	for _, s := range []string{
		"",
		"definition a { permission p = (((a - b) & c) + d)->e.all(f) }",
		"use self definition a { relation r: a | a#r | a:* ; permission p = self - nil }",
		"definition a { /* x */ } // y\n/** z */",
		"caveat c(a map<list<int>>) { a['}'] == \"{\" }",
		"definition a { relation r: a with c and expiration | a:* with expiration }",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		s1, cerr1 := Compile("", src)
		f1, err := Parse("", src)
		if err != nil {
			require.Error(t, cerr1, "Compile accepted what Parse refused")
			return
		}
		out := FormatFile(f1)
		f2, err := Parse("", out)
		require.NoError(t, err, "formatted source does not parse:\n%s", out)
		require.Equal(t, dumpFile(f1), dumpFile(f2), "formatting changed the tree:\n%s", out)
		require.Equal(t, string(out), string(FormatFile(f2)), "formatting is not idempotent")

		s2, cerr2 := Compile("", out)
		require.Equal(t, cerr1 == nil, cerr2 == nil, "compile results differ: %v / %v", cerr1, cerr2)
		if cerr1 == nil {
			require.Equal(t, dumpSchema(s1), dumpSchema(s2))
		}
	})
}
