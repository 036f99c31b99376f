package tuplestest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
)

// testObjectTuples checks tuples.ObjectReader where the store has it: all of one
// object's tuples (every relation, caveats and expirations kept, expired ones left
// out) in the order Read gives them, at the reader's snapshot, also for an object
// with more tuples than any batch or cache bound, read again at later revisions after
// writes to the object and elsewhere (a store that caches it must see the writes),
// and after a caller stopped early.
func testObjectTuples(t *testing.T, s tuples.Store) {
	ctx := context.Background()
	if _, ok := Reader(t, s, head(t, s)).(tuples.ObjectReader); !ok {
		t.Skip("the store's readers do not implement tuples.ObjectReader")
	}
	future := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	big := []string{}
	for i := range 70 {
		big = append(big, fmt.Sprintf("doc:big#r%d@user:u%02d", i%3, i))
	}
	r1 := Write(t, s, tuples.OpTouch, append(big,
		"flow:f1#owner@user:anne", "flow:f1#granted@role:ops#member", "flow:f1#granted@user:*",
		`flow:f1#granted@user:bob[on_net:{"cidr":"10.0.0.0/8"}]`, "flow:f1#granted@user:carl[expiration:"+future+"]",
		"flow:f1#granted@user:old[expiration:2023-12-01T00:00:00Z]", "flow:f1#tenant@tenant:t",
		"flow:f1#denied@user:dora", "flow:f10#owner@user:anne", "flow:f#owner@user:anne",
		"flowx:f1#owner@user:anne", "flow:f2#owner@user:anne", "flow:p#owner@user:anne", "flow:p#viewer@user:bob")...)
	want1 := []string{
		"flow:f1#denied@user:dora",
		"flow:f1#granted@role:ops#member",
		"flow:f1#granted@user:*",
		`flow:f1#granted@user:bob[on_net:{"cidr":"10.0.0.0/8"}]`,
		"flow:f1#granted@user:carl[expiration:" + future + "]",
		"flow:f1#owner@user:anne",
		"flow:f1#tenant@tenant:t",
	}
	f1 := tuples.ObjectRef{Type: "flow", ID: "f1"}
	bigRef := tuples.ObjectRef{Type: "doc", ID: "big"}
	objectTuples := func(rev tuples.Revision, o tuples.ObjectRef) []string {
		t.Helper()
		return Strings(t, Reader(t, s, rev).(tuples.ObjectReader).ObjectTuples(ctx, o))
	}
	byRead := func(rev tuples.Revision, o tuples.ObjectRef) []string {
		t.Helper()
		return Strings(t, Reader(t, s, rev).Read(ctx, tuples.Filter{ObjectType: o.Type, ObjectID: o.ID}, nil))
	}
	require.Equal(t, want1, objectTuples(r1, f1))
	require.Equal(t, want1, byRead(r1, f1), "the order Read gives")
	require.Empty(t, objectTuples(r1, tuples.ObjectRef{Type: "flow", ID: "none"}))

	// A caller that stops early, then one that reads everything.
	n := 0
	for _, err := range Reader(t, s, r1).(tuples.ObjectReader).ObjectTuples(ctx, bigRef) {
		require.NoError(t, err)
		if n++; n == 3 {
			break
		}
	}
	require.Len(t, objectTuples(r1, bigRef), 70)
	require.Equal(t, byRead(r1, bigRef), objectTuples(r1, bigRef))

	// A write elsewhere, then writes to the objects: later revisions see them, the
	// earlier one does not.
	p := tuples.ObjectRef{Type: "flow", ID: "p"}
	wantP := []string{"flow:p#owner@user:anne", "flow:p#viewer@user:bob"}
	require.Equal(t, wantP, objectTuples(r1, p))
	r2 := Write(t, s, tuples.OpTouch, "flow:f2#owner@user:bob")
	require.Equal(t, want1, objectTuples(r2, f1))
	require.Equal(t, wantP, objectTuples(r2, p))
	r3 := Write(t, s, tuples.OpTouch, "flow:f1#viewer@user:new", "doc:big#r0@user:new", "flow:p#editor@user:carl")
	r4 := Write(t, s, tuples.OpDelete, "flow:f1#owner@user:anne", "doc:big#r1@user:u01")
	want3 := append(append([]string{}, want1[:6]...), "flow:f1#tenant@tenant:t", "flow:f1#viewer@user:new")
	require.Equal(t, want3, objectTuples(r3, f1))
	want4 := append(append([]string{}, want1[:5]...), "flow:f1#tenant@tenant:t", "flow:f1#viewer@user:new")
	require.Equal(t, want4, objectTuples(r4, f1))
	require.Equal(t, want1, objectTuples(r1, f1), "an older snapshot")
	require.Equal(t, want4, byRead(r4, f1))
	for _, rev := range []tuples.Revision{r1, r2, r3, r4} {
		require.Equal(t, byRead(rev, bigRef), objectTuples(rev, bigRef), "revision %d", rev)
	}
	require.Len(t, objectTuples(r4, bigRef), 70)
	wantP3 := []string{"flow:p#editor@user:carl", "flow:p#owner@user:anne", "flow:p#viewer@user:bob"}
	require.Equal(t, wantP3, objectTuples(r3, p), "a write to another relation of the object")
	require.Equal(t, wantP, objectTuples(r2, p))
	r5 := Write(t, s, tuples.OpDelete, "flow:p#viewer@user:bob")
	require.Equal(t, wantP3[:2], objectTuples(r5, p))
	require.Equal(t, wantP3, objectTuples(r4, p))
}
