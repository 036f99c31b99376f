package tuples

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The reference patterns from design §1; the hand-written validators must agree.
var (
	namePattern     = regexp.MustCompile(`^(?:[a-z][a-z0-9_]{0,62}/)?[a-z][a-z0-9_]{0,62}$`)
	objectIDPattern = regexp.MustCompile(`^[a-zA-Z0-9_|\-=+/.@]+$`) // RE2 caps repeats at 1000
)

func TestValidators(t *testing.T) {
	for _, s := range []string{
		"", "a", "a1", "a_", "_a", "1a", "A", "acme/flow", "acme/", "/flow", "a/b/c", "a//b",
		strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 63) + "/" + strings.Repeat("b", 63),
		"f1", "a b", "*", "a:b", "a#b", "x@y.z", "A-Z=+|/._@", "é", strings.Repeat("x", 1024), strings.Repeat("x", 1025),
	} {
		require.Equal(t, namePattern.MatchString(s), validName(s), "name %q", s)
		require.Equal(t, objectIDPattern.MatchString(s) && len(s) <= 1024, validObjectID(s), "id %q", s)
	}
}

func FuzzValidators(f *testing.F) {
	f.Add("acme/flow")
	f.Add("x@y.z")
	f.Fuzz(func(t *testing.T, s string) {
		require.Equal(t, namePattern.MatchString(s), validName(s), "name %q", s)
		require.Equal(t, objectIDPattern.MatchString(s) && len(s) <= 1024, validObjectID(s), "id %q", s)
	})
}
