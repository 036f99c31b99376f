package server

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/tuples"
)

func TestFilterFromProto(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    *relatav1.TupleFilter
		field string // "" when valid
	}{
		{"nil selects everything", nil, ""},
		{"full", &relatav1.TupleFilter{ObjectType: "flow", ObjectId: "f1", Relation: "granted", Subject: &relatav1.SubjectFilter{Type: "role", Id: "ops", Relation: "member"}}, ""},
		{"plain subjects only", &relatav1.TupleFilter{ObjectType: "flow", Subject: &relatav1.SubjectFilter{Type: "user", Relation: "..."}}, ""},
		{"wildcard subject id", &relatav1.TupleFilter{Subject: &relatav1.SubjectFilter{Type: "user", Id: "*"}}, ""},
		{"bad type", &relatav1.TupleFilter{ObjectType: "Flow"}, "filter.object_type"},
		{"id without type", &relatav1.TupleFilter{ObjectId: "f1"}, "filter.object_id"},
		{"bad id", &relatav1.TupleFilter{ObjectType: "flow", ObjectId: "f 1"}, "filter.object_id"},
		{"subject id without type", &relatav1.TupleFilter{Subject: &relatav1.SubjectFilter{Id: "anne"}}, "filter.subject.id"},
		{"bad subject relation", &relatav1.TupleFilter{Subject: &relatav1.SubjectFilter{Type: "role", Relation: "#"}}, "filter.subject.relation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := filterFromProto("filter", tc.in)
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			var verr *tuples.ValidationError
			require.ErrorAs(t, err, &verr)
			require.Equal(t, tc.field, verr.Field)
		})
	}
}

// FuzzTupleFromProto checks that request validation never panics, names a field when
// it refuses, and accepts exactly the tuples whose text form parses back to them.
func FuzzTupleFromProto(f *testing.F) {
	f.Add("flow", "f1", "granted", "role", "ops", "member")
	f.Add("flow", "f 1", "", "user", "*", "")
	f.Add("acme/flow", "a|b=c", "x", "user", "*", "member")
	f.Add("", "", "", "", "", "...")
	f.Fuzz(func(t *testing.T, ot, oid, rel, st, sid, srel string) {
		in := &relatav1.Tuple{
			Object:   &relatav1.ObjectRef{Type: ot, Id: oid},
			Relation: rel,
			Subject:  &relatav1.SubjectRef{Object: &relatav1.ObjectRef{Type: st, Id: sid}, Relation: srel},
		}
		got, err := tupleFromProto("tuple.", in)
		if err != nil {
			var verr *tuples.ValidationError
			require.True(t, errors.As(err, &verr), "%v", err)
			require.NotEmpty(t, verr.Field)
			return
		}
		back, err := tuples.ParseTuple(got.String())
		require.NoError(t, err, got.String())
		require.Equal(t, got, back)
	})
}
