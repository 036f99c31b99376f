package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateCommand(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"passing", []string{"validate", "../../check/testdata/semantics.yaml"}, ExitOK,
			"../../check/testdata/semantics.yaml: ok\n", ""},
		{"failing", []string{"validate", "../../check/validationfile/testdata/failing_assertions.yaml"}, ExitError,
			"", "../../check/validationfile/testdata/failing_assertions.yaml:14: assertTrue failed: doc:1#view@user:bob: expected true, got false\n"},
		{"caveats", []string{"validate", "../../../shared/conformance/spicedb/caveatip.yaml"}, ExitError,
			"", "caveats are not supported yet"},
		{"no files", []string{"validate"}, ExitUsage, "", "requires at least 1 arg"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Main(context.Background(), tc.args, strings.NewReader(""), &out, &errOut)
			require.Equal(t, tc.code, code, "stderr: %s", errOut.String())
			require.Equal(t, tc.stdout, out.String())
			require.Contains(t, errOut.String(), tc.stderr)
		})
	}
}
