package tuples

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/stretchr/testify/require"
)

// TestText runs testdata/text: `parse`, `parse-object` and `parse-subject` take one
// input per line and print the canonical form or the error. Regenerate with -update.
func TestText(t *testing.T) {
	runDataDriven(t, "testdata/text", func(t *testing.T, td *datadriven.TestData) string {
		var out strings.Builder
		for _, line := range strings.Split(td.Input, "\n") {
			var (
				v   fmt.Stringer
				err error
			)
			switch td.Cmd {
			case "parse":
				v, err = ParseTuple(line)
			case "parse-object":
				v, err = ParseObject(line)
			case "parse-subject":
				v, err = ParseSubject(line)
			default:
				t.Fatalf("unknown command %q", td.Cmd)
			}
			fmt.Fprintf(&out, "%s → %s\n", line, result(v, err))
		}
		return out.String()
	})
}

// result prints a parse result: the canonical text, or the error with its class.
func result(v fmt.Stringer, err error) string {
	var verr *ValidationError
	switch {
	case errors.As(err, &verr):
		return fmt.Sprintf("invalid field=%s: %v", verr.Field, err)
	case errors.Is(err, ErrNotSupported):
		return fmt.Sprintf("not supported: %v", err)
	case err != nil:
		return fmt.Sprintf("error: %v", err)
	}
	return v.String()
}

func TestTupleValidateFieldPrefix(t *testing.T) {
	tup := Tuple{Object: ObjectRef{"flow", "f1"}, Relation: "granted", Subject: SubjectRef{Object: ObjectRef{"user", "a b"}}}
	err := tup.ValidateField("updates[3].tuple.")
	var verr *ValidationError
	require.ErrorAs(t, err, &verr)
	require.Equal(t, "updates[3].tuple.subject.object.id", verr.Field)
	require.Equal(t, "a b", verr.Value)
}

func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"a:1#r@u:1", "a:1#r@u:1", 0},
		{"a:1#r@u:1", "a:1#r@u:1#m", -1},
		{"a:1#r@u:2", "a:1#r@u:1#m", 1},
		{"a:1#r@u:1", "a:10#r@u:1", -1},
		{"b:1#r@u:1", "a:2#r@u:1", 1},
	} {
		a, err := ParseTuple(tc.a)
		require.NoError(t, err)
		b, err := ParseTuple(tc.b)
		require.NoError(t, err)
		require.Equal(t, tc.want, Compare(a, b), "%s vs %s", tc.a, tc.b)
	}
}

func TestFilterValidate(t *testing.T) {
	require.NoError(t, Filter{}.Validate())
	require.NoError(t, Filter{ObjectType: "flow", SubjectID: "*", SubjectRelation: Ellipsis}.Validate())
	var verr *ValidationError
	require.ErrorAs(t, Filter{Relation: "Bad"}.Validate(), &verr)
	require.Equal(t, "filter.relation", verr.Field)
}

func TestFilterMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		filter Filter
		tuple  string
		want   bool
	}{
		{Filter{}, "flow:f#granted@user:*", true},
		{Filter{SubjectType: "user", SubjectRelation: Ellipsis}, "flow:f#granted@user:anne", true},
		{Filter{SubjectType: "user", SubjectRelation: Ellipsis}, "flow:f#granted@user:*", true},
		{Filter{SubjectType: "user", SubjectRelation: Ellipsis}, "flow:f#granted@user:anne#friend", false},
		{Filter{SubjectType: "user", SubjectRelation: Ellipsis, NoWildcard: true}, "flow:f#granted@user:anne", true},
		{Filter{SubjectType: "user", SubjectRelation: Ellipsis, NoWildcard: true}, "flow:f#granted@user:*", false},
		{Filter{NoWildcard: true}, "flow:f#granted@role:ops#member", true},
		{Filter{SubjectID: "*", NoWildcard: true}, "flow:f#granted@user:*", false},
		{Filter{ObjectType: "flow", ObjectID: "g"}, "flow:f#granted@user:anne", false},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, tc.filter.Matches(mustParse(t, tc.tuple)), "%+v matches %s", tc.filter, tc.tuple)
	}
}

func TestPreconditionErrorNamesFilter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  *PreconditionError
		want string
	}{
		{
			&PreconditionError{Precondition: Precondition{Op: MustMatch, Filter: Filter{ObjectType: "flow", ObjectID: "zzz"}}},
			"precondition failed: no tuple matches the must-match filter {object_type=flow object_id=zzz}",
		},
		{
			&PreconditionError{
				Precondition: Precondition{Op: MustNotMatch, Filter: Filter{ObjectType: "flow", Relation: "granted", SubjectType: "user", SubjectRelation: Ellipsis, NoWildcard: true}},
				Tuple:        mustParse(t, "flow:f#granted@user:anne"),
			},
			"precondition failed: tuple flow:f#granted@user:anne matches the must-not-match filter {object_type=flow relation=granted subject_type=user subject_relation=... no_wildcard}",
		},
		{
			&PreconditionError{Precondition: Precondition{Op: MustMatch}},
			"precondition failed: no tuple matches the must-match filter {}",
		},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, tc.err.Error())
	}
}

func mustParse(t *testing.T, s string) Tuple {
	t.Helper()
	tup, err := ParseTuple(s)
	require.NoError(t, err)
	return tup
}

// FuzzParseTuple checks that whatever parses prints to a form that parses back to
// the same tuple, and that printing is a fixed point.
func FuzzParseTuple(f *testing.F) {
	for _, s := range []string{
		"flow:f1#granted@role:ops#member", "flow:f1#granted@user:*", "doc:a@b#viewer@user:tom#...",
		"acme/flow:x#r@acme/user:y", "a:b#c@d:e[caveat:x]", "", "#@", "a:#b@c:d",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tup, err := ParseTuple(s)
		if err != nil {
			return
		}
		text := tup.String()
		again, err := ParseTuple(text)
		require.NoError(t, err, "reparse %q (from %q)", text, s)
		require.Equal(t, tup, again)
		require.Equal(t, text, again.String())
	})
}
