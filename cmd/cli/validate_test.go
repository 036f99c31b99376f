package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/internal/conformance"
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
		{"failing", []string{"validate", "../../validation/testdata/failing_assertions.yaml"}, ExitError,
			"", "../../validation/testdata/failing_assertions.yaml:14: assertTrue failed: doc:1#view@user:bob: expected true, got false\n"},
		{"no files", []string{"validate"}, ExitUsage, "", "requires at least 1 arg"},
		{"several files", []string{"validate", "../../check/testdata/semantics.yaml", "../../validation/testdata/failing.yaml"}, ExitError,
			"../../check/testdata/semantics.yaml: ok\n", "../../validation/testdata/failing.yaml:10: relationship doc:1#editor@user:tom"},
		{"summary", []string{"validate", "../../check/testdata/semantics.yaml", "../../validation/testdata/failing.yaml"}, ExitError,
			"../../check/testdata/semantics.yaml: ok\n", "1 of 2 files failed\n"},
		{"wrong expected set", []string{"validate", "../../validation/testdata/validation_sets.yaml"}, ExitError,
			"", "validation_sets.yaml:17: doc:1#view: expected subjects [user:a], [user:c]; got [user:a], [user:b]\n"},
		{"json passing", []string{"validate", "--json", "../../check/testdata/semantics.yaml"}, ExitOK,
			`{"file":"../../check/testdata/semantics.yaml","ok":true,"problems":[]}` + "\n", ""},
		{"json failing", []string{"validate", "--json", "../../validation/testdata/failing.yaml"}, ExitError,
			`{"file":"../../validation/testdata/failing.yaml","ok":false,"problems":[{"line":10,"message":"relationship doc:1#editor@user:tom: schema: type doc has no relation or permission editor"}]}` + "\n", ""},
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

// TestValidateConformanceFile runs validate on conformance files that use caveats
// and expiration (see internal/conformance for where the files come from).
func TestValidateConformanceFile(t *testing.T) {
	for _, name := range []string{"caveatip.yaml", "relexpiration.yaml", "multibranchcaveatwitharrows.yaml"} {
		path := filepath.Join(conformance.Dir(t), "spicedb", name)
		var out, errOut bytes.Buffer
		code := Main(context.Background(), []string{"validate", path}, strings.NewReader(""), &out, &errOut)
		require.Equal(t, 0, code, "stderr: %s", errOut.String())
		require.Equal(t, path+": ok\n", out.String())
	}
}
