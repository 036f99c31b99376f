package validation

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/internal/conformance"
)

// expectedFailures lists the conformance files that fail because they use a feature
// Relata does not implement yet, with that feature. The list only shrinks: the test
// fails when a listed file passes or an unlisted file fails.
var expectedFailures = map[string]string{}

func TestConformance(t *testing.T) {
	conformanceDir := filepath.Join(conformance.Dir(t), "spicedb")
	files, err := filepath.Glob(filepath.Join(conformanceDir, "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no conformance files in %s", conformanceDir)
	for name := range expectedFailures {
		_, err := os.Stat(filepath.Join(conformanceDir, name))
		require.NoError(t, err, "listed file %s is gone: remove it from expectedFailures", name)
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			problems, err := RunFile(context.Background(), path)
			require.NoError(t, err)
			feature, listed := expectedFailures[name]
			if !listed {
				for _, p := range problems {
					t.Error(p)
				}
				return
			}
			require.NotEmpty(t, problems, "%s passes now: remove it from expectedFailures", name)
			var text []string
			for _, p := range problems {
				text = append(text, p.Error())
			}
			all := strings.Join(text, "\n")
			require.Contains(t, all, "not supported yet", "%s must fail because of %s", name, feature)
		})
	}
}
