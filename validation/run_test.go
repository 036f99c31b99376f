package validation

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var update = flag.Bool("update", false, "rewrite the .golden files in testdata")

// TestEngineSemantics runs the engine's validation files (check/testdata): they pass.
func TestEngineSemantics(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "check", "testdata", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			problems, err := RunFile(context.Background(), path)
			require.NoError(t, err)
			for _, p := range problems {
				t.Error(p)
			}
		})
	}
}

// TestFailures runs testdata/*.yaml and compares the problems reported with
// testdata/*.golden (rewrite them with -update).
func TestFailures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			problems, err := RunFile(context.Background(), path)
			require.NoError(t, err)
			var b strings.Builder
			for _, p := range problems {
				b.WriteString(p.Error() + "\n")
			}
			golden := strings.TrimSuffix(path, ".yaml") + ".golden"
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(b.String()), 0o644))
				return
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			require.Equal(t, string(want), b.String())
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"yaml", "schema: [\n", "f.yaml:1: invalid YAML"},
		{"yaml line once", "schema: x\nassertions:\n  assertTrue:\n    - \"a\n", "f.yaml:4: invalid YAML: found unexpected end of stream"},
		{"unknown key", "schema: x\nbogus: 1\n", `f.yaml:2: unknown key "bogus"`},
		{"assertions", "schema: x\nassertions:\n  assertMaybe: []\n", `f.yaml:3: assertions: unknown key "assertMaybe"`},
		{"validation", "schema: x\nvalidation:\n  doc:1#view: 3\n", "f.yaml:3: doc:1#view: expected a list"},
		{"schemaFile", "schemaFile: missing.zed\n", "f.yaml:1: schemaFile:"},
		{"schema and schemaFile", "schema: x\nschemaFile: missing.zed\n", "f.yaml:2: schemaFile: the file already has schema: set schema or schemaFile, not both"},
		{"schemaFile and schema", "schemaFile: testdata/schemafile_error.zed\nschema: x\n", "f.yaml:2: schema: the file already has schemaFile"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tc.src))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}
