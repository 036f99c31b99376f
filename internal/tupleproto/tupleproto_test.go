package tupleproto

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
)

func TestTuple(t *testing.T) {
	exp := time.Date(2027, 1, 2, 3, 4, 5, 6, time.UTC)
	tests := []struct {
		name, text string
		caveat     *tuples.Caveat
		expires    time.Time
	}{
		{name: "plain", text: "flow:f1#user_granted@user:anne"},
		{name: "userset", text: "flow:f1#viewer@team:t1#member"},
		{name: "caveat with context", text: "flow:f1#user_granted@user:anne",
			caveat: &tuples.Caveat{Name: "from_network", Context: map[string]any{"cidr": "10.0.0.0/8"}}},
		{name: "caveat without context", text: "flow:f1#user_granted@user:anne", caveat: &tuples.Caveat{Name: "c"}},
		{name: "expiration", text: "flow:f1#user_granted@user:anne", expires: exp},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, err := tuples.ParseTuple(tc.text)
			require.NoError(t, err)
			in.Caveat, in.ExpiresAt = tc.caveat, tc.expires
			got := Tuple(in)
			require.Equal(t, in.Object.Type, got.GetObject().GetType())
			require.Equal(t, in.Object.ID, got.GetObject().GetId())
			require.Equal(t, in.Relation, got.GetRelation())
			require.Equal(t, in.Subject.Object.ID, got.GetSubject().GetObject().GetId())
			require.Equal(t, in.Subject.Relation, got.GetSubject().GetRelation())
			if tc.caveat == nil {
				require.Nil(t, got.GetCaveat())
			} else {
				require.Equal(t, tc.caveat.Name, got.GetCaveat().GetName())
				require.Equal(t, len(tc.caveat.Context), len(got.GetCaveat().GetContext().AsMap()))
			}
			if tc.expires.IsZero() {
				require.Nil(t, got.GetExpiresAt())
			} else {
				require.True(t, tc.expires.Equal(got.GetExpiresAt().AsTime()))
			}
		})
	}
}
