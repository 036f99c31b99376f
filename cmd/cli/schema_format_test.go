package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// runSchemaFormatCLI runs the relata command line in process and returns its exit
// code and output.
func runSchemaFormatCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeTempSchema(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "schema.zed")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o640))
	return path
}

const messySchema = "definition user {}\ndefinition doc {\n  /** who may read */\n  relation viewer:user|user:*\n  permission view=viewer - nil + viewer\n}\n"

const formattedSchema = "definition user {}\n\ndefinition doc {\n\t/** who may read */\n\trelation viewer: user | user:*\n\tpermission view = viewer - (nil + viewer)\n}\n"

func TestSchemaFormat(t *testing.T) {
	t.Parallel()
	path := writeTempSchema(t, messySchema)
	code, stdout, stderr := runSchemaFormatCLI(t, "schema", "format", path)
	require.Equal(t, ExitOK, code, stderr)
	require.Equal(t, formattedSchema, stdout)
	require.Empty(t, stderr)

	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, messySchema, string(got), "without -w the file is left alone")
}

func TestSchemaFormatWrite(t *testing.T) {
	t.Parallel()
	path := writeTempSchema(t, messySchema)
	code, stdout, stderr := runSchemaFormatCLI(t, "schema", "format", "-w", path)
	require.Equal(t, ExitOK, code, stderr)
	require.Empty(t, stdout)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, formattedSchema, string(got))
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o640), info.Mode().Perm(), "-w keeps the file mode")
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left behind")
}

func TestSchemaFormatErrors(t *testing.T) {
	t.Parallel()
	// An unknown subject type on line 3 and an unknown relation on line 4.
	path := writeTempSchema(t, "definition user {}\ndefinition doc {\n\trelation viewer: usr\n\tpermission view = viewr\n}\n")
	code, stdout, stderr := runSchemaFormatCLI(t, "schema", "format", "-w", path)
	require.Equal(t, ExitError, code)
	require.Empty(t, stdout)
	require.Equal(t,
		path+":3:19: unknown type usr in relation doc#viewer\n"+
			path+":4:20: unknown relation or permission viewr in definition doc\n",
		stderr)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(got), "viewr", "a schema with errors is not rewritten")
}

func TestSchemaFormatUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{name: "missing file argument", args: []string{"schema", "format"}, code: ExitUsage, stderr: "accepts 1 arg"},
		{name: "file does not exist", args: []string{"schema", "format", filepath.Join(t.TempDir(), "nope.zed")}, code: ExitError, stderr: "no such file"},
		{name: "caveat not bool", args: []string{"schema", "format", writeTempSchema(t, "caveat c(x int) { x + 1 }\n")}, code: ExitError, stderr: ":1:18: caveat c: expression has type int, want bool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, _, stderr := runSchemaFormatCLI(t, tt.args...)
			require.Equal(t, tt.code, code, stderr)
			require.Contains(t, stderr, tt.stderr)
		})
	}
}
