package pgstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/tuplestest"
)

// TestImportPaths: an import of new tuples (the COPY path) and one that meets live
// tuples in the middle of its batch (the COPY fails on the version key, and the
// import takes the conflict path inside the same transaction and revision) both
// write exactly the versions and change log of a TOUCH of their distinct tuples: a
// tuple live with the same caveat and expiration is left alone, one live with another
// caveat context or expiration is replaced (the old version stays readable before
// the import's revision), the first of duplicate keys wins, and caveats and
// expirations are carried whole.
func TestImportPaths(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, nil)
	tt := func(text string) tuples.Tuple { return tuplestest.T(t, text) }
	texts := func(ts ...string) []string { return ts }
	changesAfter := func(after tuples.Revision) []string {
		out := []string{}
		for c, err := range s.Changes(ctx, after) {
			require.NoError(t, err)
			out = append(out, fmt.Sprintf("%d %s %s", c.Revision, c.Op, c.Tuple))
		}
		return out
	}
	read := func(rev tuples.Revision) []string {
		return tuplestest.Strings(t, tuplestest.Reader(t, s, rev).Read(ctx, tuples.Filter{ObjectType: "doc"}, nil))
	}
	versions := func() (n, ended int) {
		require.NoError(t, s.pool.QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE deleted_rev < "+maxRev+") FROM relata_tuple").Scan(&n, &ended))
		return n, ended
	}
	later := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second).Add(123456789 * time.Nanosecond)
	t1, t2 := later.Format(time.RFC3339Nano), later.Add(time.Hour).Format(time.RFC3339Nano)

	// New tuples only: the COPY path, caveat contexts and expirations included.
	rev1, err := s.Import(ctx, []tuples.Tuple{
		tt(`doc:f#viewer@user:exp[expiration:` + t1 + `]`),
		tt(`doc:b#viewer@user:same`),
		tt(`doc:d#viewer@user:ctx[on_net:{"cidr":"10.0.0.0/8"}]`),
		tt(`doc:b#viewer@user:same[on_net]`), // a duplicate key: the first wins
	}, 0)
	require.NoError(t, err)
	first := texts(
		`doc:b#viewer@user:same`,
		`doc:d#viewer@user:ctx[on_net:{"cidr":"10.0.0.0/8"}]`,
		`doc:f#viewer@user:exp[expiration:`+t1+`]`)
	require.Equal(t, first, read(rev1))
	require.Equal(t, texts(
		fmt.Sprintf(`%d TOUCH doc:b#viewer@user:same`, rev1),
		fmt.Sprintf(`%d TOUCH doc:d#viewer@user:ctx[on_net:{"cidr":"10.0.0.0/8"}]`, rev1),
		fmt.Sprintf(`%d TOUCH doc:f#viewer@user:exp[expiration:%s]`, rev1, t1)), changesAfter(rev1-1))

	// Live tuples in the middle of the batch: the conflict path.
	batch := []tuples.Tuple{
		tt(`doc:g#viewer@user:new3[expiration:` + t2 + `]`),
		tt(`doc:a#viewer@user:new1`),
		tt(`doc:b#viewer@user:same`),                                  // live, identical: left alone
		tt(`doc:d#viewer@user:ctx[on_net:{"cidr":"192.168.0.0/16"}]`), // live, another context: replaced
		tt(`doc:c#viewer@user:new2[on_net:{"cidr":"1.2.3.0/24"}]`),
		tt(`doc:f#viewer@user:exp[expiration:` + t2 + `]`), // live, another expiration: replaced
		tt(`doc:a#viewer@user:new1[on_net]`),               // a duplicate key: the first wins
	}
	rev2, err := s.Import(ctx, batch, 0)
	require.NoError(t, err)
	require.Equal(t, rev1+1, rev2, "one revision for the batch")
	head, err := s.HeadRevision(ctx)
	require.NoError(t, err)
	require.Equal(t, rev2, head)
	require.Equal(t, texts(
		fmt.Sprintf(`%d TOUCH doc:a#viewer@user:new1`, rev2),
		fmt.Sprintf(`%d TOUCH doc:c#viewer@user:new2[on_net:{"cidr":"1.2.3.0/24"}]`, rev2),
		fmt.Sprintf(`%d TOUCH doc:d#viewer@user:ctx[on_net:{"cidr":"192.168.0.0/16"}]`, rev2),
		fmt.Sprintf(`%d TOUCH doc:f#viewer@user:exp[expiration:%s]`, rev2, t2),
		fmt.Sprintf(`%d TOUCH doc:g#viewer@user:new3[expiration:%s]`, rev2, t2)), changesAfter(rev1),
		"the change log holds what changed, in key order")
	require.Equal(t, texts(
		`doc:a#viewer@user:new1`,
		`doc:b#viewer@user:same`,
		`doc:c#viewer@user:new2[on_net:{"cidr":"1.2.3.0/24"}]`,
		`doc:d#viewer@user:ctx[on_net:{"cidr":"192.168.0.0/16"}]`,
		`doc:f#viewer@user:exp[expiration:`+t2+`]`,
		`doc:g#viewer@user:new3[expiration:`+t2+`]`), read(rev2))
	require.Equal(t, first, read(rev1), "the replaced versions stay readable before the import")
	n, ended := versions()
	require.Equal(t, 3+5, n, "versions: 3 from the first import, 5 new (3 inserted, 2 replacing)")
	require.Equal(t, 2, ended)

	// The same batch again: a revision of its own that changes nothing.
	rev3, err := s.Import(ctx, batch, 0)
	require.NoError(t, err)
	require.Equal(t, rev2+1, rev3)
	require.Empty(t, changesAfter(rev2))
	require.Equal(t, read(rev2), read(rev3))
	n, ended = versions()
	require.Equal(t, 8, n)
	require.Equal(t, 2, ended)

	// A conflicting import whose schema check fails changes nothing at all.
	_, err = s.Import(ctx, batch, rev3)
	require.ErrorIs(t, err, tuples.ErrSchemaChanged)
	head, err = s.HeadRevision(ctx)
	require.NoError(t, err)
	require.Equal(t, rev3, head)
}

// TestImportLarge: a batch whose COPY data spans many of the 64 KB chunks pgconn
// sends (hand-encoded binary COPY, see copy.go), with long ids, caveat contexts and
// expirations (nanoseconds included) spread through it, reads back exactly and logs
// every tuple in key order; the same batch with one more tuple (its COPY fails on the
// live tuples) takes the conflict path through the staging table, copied from the
// same encoding, and changes exactly that tuple.
func TestImportLarge(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, nil)
	exp := time.Now().Add(72 * time.Hour).UTC().Truncate(time.Second).Add(987654321 * time.Nanosecond).Format(time.RFC3339Nano)
	var batch []tuples.Tuple
	var want []string
	for i := range 6000 {
		text := fmt.Sprintf("doc:d%05d-%s#viewer@user:u%d", i, strings.Repeat("x", i%50), i%977)
		switch i % 7 {
		case 3:
			text += fmt.Sprintf(`[on_net:{"cidr":"10.%d.0.0/16","n":%d}]`, i%256, i)
		case 5:
			text += "[expiration:" + exp + "]"
		}
		batch = append(batch, tuplestest.T(t, text))
		want = append(want, text)
	}
	slices.Sort(want)
	rev, err := s.Import(ctx, batch, 0)
	require.NoError(t, err)
	read := func(rev tuples.Revision) []string {
		return tuplestest.Strings(t, tuplestest.Reader(t, s, rev).Read(ctx, tuples.Filter{ObjectType: "doc"}, nil))
	}
	require.Equal(t, want, read(rev))
	var logged []string
	for c, err := range s.Changes(ctx, rev-1) {
		require.NoError(t, err)
		require.Equal(t, rev, c.Revision)
		require.Equal(t, tuples.OpTouch, c.Op)
		logged = append(logged, c.Tuple.String())
	}
	require.Equal(t, want, logged)

	extra := tuplestest.T(t, "doc:zzz#viewer@user:last")
	rev2, err := s.Import(ctx, append(slices.Clone(batch), extra), 0)
	require.NoError(t, err)
	require.Equal(t, append(slices.Clone(want), extra.String()), read(rev2))
	var changes []string
	for c, err := range s.Changes(ctx, rev) {
		require.NoError(t, err)
		changes = append(changes, fmt.Sprintf("%d %s %s", c.Revision, c.Op, c.Tuple))
	}
	require.Equal(t, []string{fmt.Sprintf("%d TOUCH %s", rev2, extra)}, changes)
}

// TestChangeLogBatches: the change log of an import of new tuples is one
// relata_change_batch row (migration 0004), of other writes rows of relata_change;
// Changes interleaves them in revision order across its chunks (a write of more
// changes than one chunk between two imports), from any starting revision. An import
// larger than the store's bound logs rows instead, and GC drops batches with the
// revisions they belong to.
func TestChangeLogBatches(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, nil)
	var want []string
	logged := func(rev tuples.Revision, op tuples.Operation, ts ...tuples.Tuple) {
		sorted := slices.Clone(ts)
		slices.SortFunc(sorted, func(a, b tuples.Tuple) int { return tuples.ComparePtr(&a, &b) })
		for _, tu := range sorted {
			want = append(want, fmt.Sprintf("%d %s %s", rev, op, tu))
		}
	}
	many := func(prefix string, n int) []tuples.Tuple {
		var ts []tuples.Tuple
		for i := range n {
			ts = append(ts, tuplestest.T(t, fmt.Sprintf("doc:%s%04d#viewer@user:u%d", prefix, i, i%7)))
		}
		return ts
	}
	imported := func(ts []tuples.Tuple) tuples.Revision {
		rev, err := s.Import(ctx, ts, 0)
		require.NoError(t, err)
		logged(rev, tuples.OpTouch, ts...)
		return rev
	}
	written := func(ts []tuples.Tuple) tuples.Revision {
		var req tuples.WriteRequest
		for _, tu := range ts {
			req.Updates = append(req.Updates, tuples.Update{Op: tuples.OpTouch, Tuple: tu})
		}
		rev, err := s.Write(ctx, req)
		require.NoError(t, err)
		logged(rev, tuples.OpTouch, ts...)
		return rev
	}
	batches := func() (n int) {
		require.NoError(t, s.pool.QueryRow(ctx, "SELECT count(*) FROM relata_change_batch").Scan(&n))
		return n
	}
	revs := []tuples.Revision{
		written(many("a", 3)),
		imported(many("b", 1500)),
		imported(many("c", 10)), // two batch revisions in a row
		written(many("d", 1000)),
		written(many("e", 700)), // rows across a chunk boundary, between batches
		imported(many("f", 5)),
	}
	require.Equal(t, 3, batches())
	s.changeBatchMax = 100 // this import's rows are larger: a row a change
	revs = append(revs, imported(many("g", 20)))
	require.Equal(t, 3, batches())
	s.changeBatchMax = maxChangeBatch
	del, _, err := s.DeleteMatching(ctx, tuples.Filter{ObjectType: "doc", ObjectID: "c0003"}, nil)
	require.NoError(t, err)
	want = append(want, fmt.Sprintf("%d DELETE doc:c0003#viewer@user:u3", del))
	revs = append(revs, imported(many("h", 2)), del)
	slices.Sort(revs)

	changes := func(after tuples.Revision) []string {
		out := []string{}
		for c, err := range s.Changes(ctx, after) {
			require.NoError(t, err)
			out = append(out, fmt.Sprintf("%d %s %s", c.Revision, c.Op, c.Tuple))
		}
		return out
	}
	require.Equal(t, want, changes(0))
	for _, after := range revs {
		i := slices.IndexFunc(want, func(c string) bool { return parseRev(t, c) > after })
		if i < 0 {
			i = len(want)
		}
		require.Equal(t, want[i:], changes(after), "after %d", after)
	}

	// GC to the second batch's revision drops both batches up to it (and the rows).
	h, err := s.CollectGarbage(ctx, revs[2])
	require.NoError(t, err)
	require.Equal(t, revs[2], h)
	require.Equal(t, 2, batches())
	i := slices.IndexFunc(want, func(c string) bool { return parseRev(t, c) > revs[2] })
	require.Equal(t, want[i:], changes(revs[2]))
	for _, err := range s.Changes(ctx, revs[1]) {
		require.ErrorIs(t, err, tuples.ErrRevisionExpired)
		break
	}
}

// parseRev returns the revision a change string of TestChangeLogBatches starts with.
func parseRev(t *testing.T, change string) tuples.Revision {
	var rev uint64
	_, err := fmt.Sscan(change, &rev)
	require.NoError(t, err)
	return tuples.Revision(rev)
}
