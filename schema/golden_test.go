package schema

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/relata/relata/internal/conformance"
)

// goldenInputs returns the .zed files of testdata/dir.
func goldenInputs(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.zed"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return files
}

// TestFormatGolden formats testdata/format/X.zed into X.golden and checks that the
// result is a fixed point.
func TestFormatGolden(t *testing.T) {
	t.Parallel()
	for _, path := range goldenInputs(t, "format") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(path)
			require.NoError(t, err)
			out, err := Format(src)
			require.NoError(t, err)
			golden(t, strings.TrimSuffix(path, ".zed")+".golden", string(out))

			again, err := Format(out)
			require.NoError(t, err)
			require.Equal(t, string(out), string(again), "formatting is not idempotent")

			f1, err := Parse("", src)
			require.NoError(t, err)
			f2, err := Parse("", out)
			require.NoError(t, err)
			require.Equal(t, dumpFile(f1), dumpFile(f2), "formatting changed the tree")
		})
	}
}

// TestErrorsGolden compiles testdata/errors/X.zed and compares every error with
// X.golden.
func TestErrorsGolden(t *testing.T) {
	t.Parallel()
	for _, path := range goldenInputs(t, "errors") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(path)
			require.NoError(t, err)
			s, err := Compile(filepath.Base(path), src)
			require.Nil(t, s)
			require.Error(t, err)
			golden(t, strings.TrimSuffix(path, ".zed")+".golden", errorLines(err))
		})
	}
}

// TestCompileGolden compiles testdata/compile/X.zed and compares the rewrite trees
// with X.golden.
func TestCompileGolden(t *testing.T) {
	t.Parallel()
	for _, path := range goldenInputs(t, "compile") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(path)
			require.NoError(t, err)
			s := mustCompile(t, string(src))
			golden(t, strings.TrimSuffix(path, ".zed")+".golden", dumpSchema(s))
		})
	}
}

type conformanceSchema struct {
	file   string
	schema string
}

// conformanceSchemas reads the schema: block of every conformance file in dir (see
// package internal/conformance).
func conformanceSchemas(t testing.TB, dir string) []conformanceSchema {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "spicedb", "*.yaml"))
	require.NoError(t, err)
	if len(files) == 0 {
		t.Fatalf("no conformance files in %s", filepath.Join(dir, "spicedb"))
	}
	var out []conformanceSchema
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var doc struct {
			Schema string `yaml:"schema"`
		}
		require.NoError(t, yaml.Unmarshal(b, &doc), f)
		if doc.Schema == "" {
			continue
		}
		out = append(out, conformanceSchema{file: filepath.Base(f), schema: doc.Schema})
	}
	return out
}

// usesCaveatsOrExpiration tells the conformance files Relata must refuse.
func usesCaveatsOrExpiration(src string) bool {
	return strings.Contains(src, "caveat ") || strings.Contains(src, " with ")
}

// TestConformanceRoundTrip checks every schema of the conformance suite: those using
// caveats or expiration fail with "not supported yet", all others compile, and
// parse → format → parse gives the same compiled tree.
func TestConformanceRoundTrip(t *testing.T) {
	t.Parallel()
	schemas := conformanceSchemas(t, conformance.Dir(t))
	require.GreaterOrEqual(t, len(schemas), 25)
	for _, cs := range schemas {
		t.Run(cs.file, func(t *testing.T) {
			t.Parallel()
			src := []byte(cs.schema)
			out, err := Format(src)
			require.NoError(t, err, "format:\n%s", errorLines(err))
			again, err := Format(out)
			require.NoError(t, err)
			require.Equal(t, string(out), string(again), "formatting is not idempotent")
			f1, err := Parse("", src)
			require.NoError(t, err)
			f2, err := Parse("", out)
			require.NoError(t, err)
			require.Equal(t, dumpFile(f1), dumpFile(f2))

			s1, err := Compile(cs.file, src)
			require.NoError(t, err, "compile:\n%s", errorLines(err))
			s2, err := Compile(cs.file, out)
			require.NoError(t, err)
			require.Equal(t, dumpSchema(s1), dumpSchema(s2))
			require.Equal(t, string(out), string(s1.Text()))
		})
	}
}
