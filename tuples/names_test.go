package tuples

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The reference name patterns; the hand-written validators must agree.
var (
	namePattern     = regexp.MustCompile(`^(?:[a-z][a-z0-9_]{0,62}/)*[a-z][a-z0-9_]{0,62}$`)
	objectIDPattern = regexp.MustCompile(`^[a-zA-Z0-9_|\-=+/.@]+$`) // RE2 caps repeats at 1000
)

func TestValidators(t *testing.T) {
	for _, s := range []string{
		"", "a", "a1", "a_", "_a", "1a", "A", "acme/flow", "acme/", "/flow", "a/b/c", "a//b",
		strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 63) + "/" + strings.Repeat("b", 63),
		"f1", "a b", "*", "a:b", "a#b", "x@y.z", "A-Z=+|/._@", "é", strings.Repeat("x", 1024), strings.Repeat("x", 1025),
	} {
		require.Equal(t, namePattern.MatchString(s) && len(s) <= 255, validName(s), "name %q", s)
		require.Equal(t, objectIDPattern.MatchString(s) && len(s) <= 1024, validObjectID(s), "id %q", s)
	}
}

func FuzzValidators(f *testing.F) {
	f.Add("acme/flow")
	f.Add("x@y.z")
	f.Fuzz(func(t *testing.T, s string) {
		require.Equal(t, namePattern.MatchString(s) && len(s) <= 255, validName(s), "name %q", s)
		require.Equal(t, objectIDPattern.MatchString(s) && len(s) <= 1024, validObjectID(s), "id %q", s)
	})
}

func TestValidateErrors(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 1025)
	huge := strings.Repeat("y", 5000)
	tests := []struct {
		name      string
		err       error
		wantField string
		wantValue string
		wantIn    string // a part of the reason
	}{
		{"1024-byte id", ValidateObjectID("object.id", strings.Repeat("x", 1024)), "", "", ""},
		{"1025-byte id quoted whole", ValidateObjectID("object.id", long), "object.id", long, "1025 bytes is longer than 1024"},
		{"huge id quoted in part", ValidateObjectID("subject.object.id", huge), "subject.object.id", huge[:maxEchoedValue] + "…", "5000 bytes"},
		{"wildcard object id", ValidateObjectID("object.id", "*"), "object.id", "*", "only as a subject id"},
		{"wildcard subject id", ValidateSubjectID("subject.object.id", "*"), "", "", ""},
		{"bad subject id", ValidateSubjectID("subject.object.id", "a:b"), "subject.object.id", "a:b", ObjectIDRule},
		{"63-byte name", ValidateName("object.type", strings.Repeat("a", 63)), "", "", ""},
		{"64-byte name", ValidateName("object.type", strings.Repeat("a", 64)), "object.type", strings.Repeat("a", 64), NameRule},
		{"empty prefix", ValidateName("relation", "a//c"), "relation", "a//c", NameRule},
		{"upper case", ValidateName("subject.object.type", "User"), "subject.object.type", "User", NameRule},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wantField == "" {
				require.NoError(t, tc.err)
				return
			}
			var verr *ValidationError
			require.ErrorAs(t, tc.err, &verr)
			require.Equal(t, tc.wantField, verr.Field)
			require.Equal(t, tc.wantValue, verr.Value)
			require.Contains(t, verr.Reason, tc.wantIn)
			require.Contains(t, verr.Error(), tc.wantField)
		})
	}
}
