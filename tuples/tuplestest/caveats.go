package tuplestest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
)

// testCaveatsAndExpiration: a tuple's caveat (name and stored context) and expiration
// are kept per version and returned by every read, the change log and Import; writing
// the same tuple with another caveat replaces it at a new revision; an expired tuple
// is invisible to reads at revisions committed at or after its expiry, and one written
// already expired is accepted and never visible.
func testCaveatsAndExpiration(t *testing.T, s tuples.Store) {
	ctx := context.Background()
	future := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	// Every store keeps caveats (a store must never drop them: that would widen access).
	_, err := s.Write(ctx, tuples.WriteRequest{Updates: []tuples.Update{{Op: tuples.OpTouch, Tuple: T(t, `doc:9#viewer@user:anne[on_net]`)}}})
	require.NoError(t, err)
	Write(t, s, tuples.OpDelete, `doc:9#viewer@user:anne`)
	r1 := Write(t, s, tuples.OpTouch,
		`doc:1#viewer@user:anne[on_net:{"cidr":"10.0.0.0/8"}]`,
		`doc:1#viewer@user:bob[on_net]`,
		`doc:1#viewer@user:carl[expiration:`+future+`]`,
		`doc:1#viewer@user:dora[on_net:{"cidr":"10.0.0.0/8","n":[1,2]}][expiration:`+future+`]`,
		`doc:1#viewer@user:old[expiration:2023-12-01T00:00:00Z]`,
		`doc:1#viewer@user:plain`,
	)
	want := []string{
		`doc:1#viewer@user:anne[on_net:{"cidr":"10.0.0.0/8"}]`,
		`doc:1#viewer@user:bob[on_net]`,
		`doc:1#viewer@user:carl[expiration:` + future + `]`,
		`doc:1#viewer@user:dora[on_net:{"cidr":"10.0.0.0/8","n":[1,2]}][expiration:` + future + `]`,
		`doc:1#viewer@user:plain`,
	}
	r := Reader(t, s, r1)
	require.Equal(t, want, Strings(t, r.Read(ctx, tuples.Filter{}, nil)))
	require.Equal(t, want, Strings(t, r.Subjects(ctx, tuples.ObjectRef{Type: "doc", ID: "1"}, "viewer", "")))
	require.Equal(t, want[:1], Strings(t, r.Objects(ctx, T(t, want[0]).Subject, "doc", "viewer")))
	require.False(t, Contains(t, r, "doc:1#viewer@user:old"), "an expired tuple is invisible")
	require.True(t, Contains(t, r, "doc:1#viewer@user:anne"), "Contains matches the tuple whatever its caveat")

	// A touch with another caveat replaces the tuple at a new revision; the old
	// revision still reads the old caveat.
	r2 := Write(t, s, tuples.OpTouch, `doc:1#viewer@user:anne[on_net:{"cidr":"192.168.0.0/16"}]`)
	require.Greater(t, r2, r1)
	require.Equal(t, []string{`doc:1#viewer@user:anne[on_net:{"cidr":"192.168.0.0/16"}]`},
		Strings(t, Reader(t, s, r2).Read(ctx, tuples.Filter{SubjectType: "user", SubjectID: "anne"}, nil)))
	require.Equal(t, want[:1], Strings(t, Reader(t, s, r1).Read(ctx, tuples.Filter{SubjectType: "user", SubjectID: "anne"}, nil)))
	// The same caveat and context again changes nothing.
	Write(t, s, tuples.OpTouch, `doc:1#viewer@user:anne[on_net:{"cidr":"192.168.0.0/16"}]`)
	require.Equal(t, []string{fmt.Sprintf(`%d TOUCH doc:1#viewer@user:anne[on_net:{"cidr":"192.168.0.0/16"}]`, r2)}, changes(t, s, r1),
		"the change log carries caveats; an identical touch changes nothing")

	// Import keeps caveats and expirations.
	if imp, ok := s.(tuples.Importer); ok {
		rev, err := imp.Import(ctx, []tuples.Tuple{T(t, `doc:2#viewer@user:eve[on_net][expiration:`+future+`]`)}, 0)
		require.NoError(t, err)
		require.Equal(t, []string{`doc:2#viewer@user:eve[on_net][expiration:` + future + `]`},
			Strings(t, Reader(t, s, rev).Read(ctx, tuples.Filter{ObjectType: "doc", ObjectID: "2"}, nil)))

		// An import replaces a live tuple whose caveat differs, leaves an identical
		// one alone, and logs its revision's changes in key order.
		rev2, err := imp.Import(ctx, []tuples.Tuple{
			T(t, `doc:2#viewer@user:gus`),
			T(t, `doc:1#viewer@user:anne[on_net]`),
			T(t, `doc:1#viewer@user:bob[on_net]`),
			T(t, `doc:1#viewer@user:abe`),
		}, 0)
		require.NoError(t, err)
		require.Equal(t, []string{
			fmt.Sprintf(`%d TOUCH doc:1#viewer@user:abe`, rev2),
			fmt.Sprintf(`%d TOUCH doc:1#viewer@user:anne[on_net]`, rev2),
			fmt.Sprintf(`%d TOUCH doc:2#viewer@user:gus`, rev2),
		}, changes(t, s, rev))
		require.Equal(t, []string{`doc:1#viewer@user:anne[on_net]`},
			Strings(t, Reader(t, s, rev2).Read(ctx, tuples.Filter{SubjectType: "user", SubjectID: "anne"}, nil)))
		require.Equal(t, []string{`doc:1#viewer@user:anne[on_net:{"cidr":"192.168.0.0/16"}]`},
			Strings(t, Reader(t, s, rev).Read(ctx, tuples.Filter{SubjectType: "user", SubjectID: "anne"}, nil)),
			"the replaced version stays readable at the revisions before the import")
		require.Equal(t, []string{`doc:1#viewer@user:bob[on_net]`},
			Strings(t, Reader(t, s, rev2).Read(ctx, tuples.Filter{SubjectType: "user", SubjectID: "bob"}, nil)))
	}

	// A tuple expiring soon is visible before and invisible after.
	soon := time.Now().Add(300 * time.Millisecond).UTC()
	before := Write(t, s, tuples.OpTouch, `doc:3#viewer@user:fay[expiration:`+soon.Format(time.RFC3339Nano)+`]`)
	require.True(t, Contains(t, Reader(t, s, before), "doc:3#viewer@user:fay"))
	// Wait (by condition, not by a fixed sleep) until a revision commits after expiry.
	var after tuples.Revision
	require.Eventually(t, func() bool {
		after = Write(t, s, tuples.OpTouch, `doc:9#viewer@user:tick`)
		return time.Now().After(soon.Add(10 * time.Millisecond))
	}, 10*time.Second, 20*time.Millisecond)
	after = Write(t, s, tuples.OpTouch, `doc:9#viewer@user:tock`)
	require.False(t, Contains(t, Reader(t, s, after), "doc:3#viewer@user:fay"), "lapsed at a revision committed after its expiry")
	require.Empty(t, Strings(t, Reader(t, s, after).Subjects(ctx, tuples.ObjectRef{Type: "doc", ID: "3"}, "viewer", "")))
	require.Equal(t, []string{"doc:3#viewer@user:fay[expiration:" + soon.Format(time.RFC3339Nano) + "]"},
		Strings(t, Reader(t, s, before).Subjects(ctx, tuples.ObjectRef{Type: "doc", ID: "3"}, "viewer", "")),
		"still visible at the revision committed before its expiry")
}
