package conformance

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// recorder is a testing.TB that records how Dir ended instead of ending the test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
}

func TestDir(t *testing.T) {
	present := t.TempDir()
	// A repository root with ../shared/conformance beside it, and one without.
	withShared := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(withShared, "repo", "pkg"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(withShared, "shared", "conformance"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(withShared, "repo", "go.mod"), []byte("module x\n"), 0o644))
	alone := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(alone, "repo", "pkg"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(alone, "repo", "go.mod"), []byte("module x\n"), 0o644))

	cases := []struct {
		name          string
		env, ci, cwd  string
		want          string
		skip, failure string
	}{
		{name: "variable", env: present, cwd: filepath.Join(alone, "repo", "pkg"), want: present},
		{name: "variable wins over the default", env: present, cwd: filepath.Join(withShared, "repo", "pkg"), want: present},
		{name: "variable naming nothing fails", env: filepath.Join(present, "nope"), cwd: filepath.Join(alone, "repo", "pkg"), failure: "RELATA_CONFORMANCE_DIR="},
		{name: "default beside the root", cwd: filepath.Join(withShared, "repo", "pkg"), want: filepath.Join(withShared, "repo", "..", "shared", "conformance")},
		{name: "absent skips", cwd: filepath.Join(alone, "repo", "pkg"), skip: "set RELATA_CONFORMANCE_DIR to the directory holding spicedb/*.yaml to run this test"},
		{name: "absent under CI fails", ci: "true", cwd: filepath.Join(alone, "repo", "pkg"), failure: "conformance files not found and CI=true"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvVar, tc.env)
			t.Setenv("CI", tc.ci)
			t.Chdir(tc.cwd)
			r := &recorder{TB: t}
			got := Dir(r)
			require.Equal(t, tc.want, got)
			require.Contains(t, r.skipped, tc.skip)
			require.Contains(t, r.failed, tc.failure)
			require.Equal(t, tc.skip == "", r.skipped == "", "skipped: %q", r.skipped)
			require.Equal(t, tc.failure == "", r.failed == "", "failed: %q", r.failed)
		})
	}
}
