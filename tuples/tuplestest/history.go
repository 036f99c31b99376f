package tuplestest

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
)

// testSchemaHistory: every schema write is kept and listed newest first, up to a
// revision; a revision past the head is refused.
func testSchemaHistory(t *testing.T, s tuples.Store) {
	ctx := context.Background()
	history := func(at tuples.Revision) []tuples.SchemaVersion {
		t.Helper()
		var out []tuples.SchemaVersion
		for v, err := range s.SchemaHistory(ctx, at) {
			require.NoError(t, err)
			out = append(out, v)
		}
		return out
	}
	require.Empty(t, history(head(t, s)))
	v1 := []byte("definition user {}")
	s1, err := s.WriteSchema(ctx, v1, nil)
	require.NoError(t, err)
	Write(t, s, tuples.OpTouch, "doc:1#viewer@user:a")
	v2 := []byte("definition user {}\ndefinition doc { relation viewer: user }")
	s2, err := s.WriteSchema(ctx, v2, nil)
	require.NoError(t, err)

	require.Equal(t, []tuples.SchemaVersion{{Revision: s2, Text: v2}, {Revision: s1, Text: v1}}, history(head(t, s)))
	require.Equal(t, []tuples.SchemaVersion{{Revision: s1, Text: v1}}, history(s2-1))
	require.Empty(t, history(s1-1))
	for _, err := range s.SchemaHistory(ctx, head(t, s)+10) {
		require.ErrorIs(t, err, tuples.ErrRevisionInFuture)
	}
}

// testFormFilterAndCount: FormOnly selects tuples by caveat and expiration form, in
// reads, counts and schema preconditions.
func testFormFilterAndCount(t *testing.T, s tuples.Store) {
	ctx := context.Background()
	rev := Write(t, s, tuples.OpTouch, "doc:1#viewer@user:a", "doc:2#viewer@user:b", "doc:3#viewer@user:c", "doc:1#owner@user:a")
	plain := tuples.Filter{ObjectType: "doc", Relation: "viewer", SubjectType: "user", SubjectRelation: tuples.Ellipsis, FormOnly: true}
	n, first, err := tuples.Count(ctx, Reader(t, s, rev), plain)
	require.NoError(t, err)
	require.Equal(t, int64(3), n)
	require.Equal(t, "doc:1#viewer@user:a", first.String())
	n, first, err = tuples.Count(ctx, Reader(t, s, rev), tuples.Filter{ObjectType: "doc", Relation: "editor"})
	require.NoError(t, err)
	require.Zero(t, n)
	require.Nil(t, first)

	withCaveat := plain
	withCaveat.Caveat = "on_net"
	rows := Strings(t, Reader(t, s, rev).Read(ctx, withCaveat, nil))
	require.Empty(t, rows, "no tuple carries the caveat")
	_, err = s.WriteSchema(ctx, []byte("definition user {}"), []tuples.Precondition{{Op: tuples.MustNotMatch, Filter: withCaveat}})
	require.NoError(t, err, "a form no tuple has guards nothing")
	_, err = s.WriteSchema(ctx, []byte("definition user {}"), []tuples.Precondition{{Op: tuples.MustNotMatch, Filter: plain}})
	var perr *tuples.PreconditionError
	require.ErrorAs(t, err, &perr)

	// With caveated tuples (on stores that keep them): the form filter tells them apart.
	_, err = s.Write(ctx, tuples.WriteRequest{Updates: Updates(t, tuples.OpTouch, "doc:4#viewer@user:d[on_net]")})
	if errors.Is(err, tuples.ErrNotSupported) {
		return
	}
	require.NoError(t, err)
	rev = head(t, s)
	require.Equal(t, []string{"doc:4#viewer@user:d[on_net]"}, Strings(t, Reader(t, s, rev).Read(ctx, withCaveat, nil)))
	n, _, err = tuples.Count(ctx, Reader(t, s, rev), plain)
	require.NoError(t, err)
	require.Equal(t, int64(3), n, "the caveated tuple is not of the plain form")
	n, _, err = tuples.Count(ctx, Reader(t, s, rev), withCaveat)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	_, err = s.WriteSchema(ctx, []byte("definition user {}"), []tuples.Precondition{{Op: tuples.MustNotMatch, Filter: withCaveat}})
	require.ErrorAs(t, err, &perr)
	require.Equal(t, "doc:4#viewer@user:d", perr.Tuple.Key().String())
}
