package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/relata/relata/client"
	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/tuples"
)

func TestClientErrors(t *testing.T) {
	endpoint, stop := startExampleServer()
	defer stop()
	ctx := context.Background()

	noToken, err := client.New(endpoint, client.WithInsecure())
	require.NoError(t, err)
	defer noToken.Close()
	_, _, err = noToken.ReadSchema(ctx, client.MinimizeLatency())
	var cerr *client.Error
	require.ErrorAs(t, err, &cerr)
	require.Equal(t, codes.Unauthenticated, cerr.Code)
	require.Equal(t, "UNAUTHENTICATED", cerr.Reason)

	c, err := client.New(endpoint, client.WithInsecure(), client.WithToken("sekret"))
	require.NoError(t, err)
	defer c.Close()
	_, _, err = c.ReadSchema(ctx, client.FullyConsistent())
	require.ErrorIs(t, err, tuples.ErrNoSchema)

	// Malformed text fails locally with the tuples package's error.
	_, err = c.Check(ctx, "flow:f 1", "execute", "user:anne", client.MinimizeLatency())
	var verr *tuples.ValidationError
	require.ErrorAs(t, err, &verr)
	_, err = client.Touch("flow:f1#granted")
	require.ErrorAs(t, err, &verr)

	_, err = c.WriteSchema(ctx, "definition user {}\ndefinition doc { relation viewer: user\n permission view = viewer + editor }")
	require.ErrorAs(t, err, &cerr)
	require.Equal(t, codes.InvalidArgument, cerr.Code)
	require.Equal(t, "INVALID_SCHEMA", cerr.Reason)

	z, err := c.WriteSchema(ctx, "definition user {}\ndefinition doc { relation viewer: user\n permission view = viewer }")
	require.NoError(t, err)
	// A zookie with a middle character changed (the last one may hold only padding
	// bits; the store id makes zookies random, so pick a character that differs).
	mid, repl := len(z)/2, "A"
	if z[mid] == 'A' {
		repl = "B"
	}
	_, err = c.Check(ctx, "doc:1", "view", "user:anne", client.AtExactSnapshot(z[:mid]+repl+z[mid+1:]))
	require.ErrorIs(t, err, tuples.ErrInvalidZookie)
	_, err = c.Check(ctx, "doc:1", "nope", "user:anne", client.AtLeastAsFresh(z))
	require.ErrorIs(t, err, client.ErrNotFound)

	creates, err := client.Create("doc:1#viewer@user:anne")
	require.NoError(t, err)
	_, err = c.Write(ctx, creates)
	require.NoError(t, err)
	_, err = c.Write(ctx, creates)
	require.ErrorAs(t, err, &cerr)
	require.Equal(t, codes.AlreadyExists, cerr.Code)

	items := []client.BulkItem{{Object: "doc:1", Permission: "view", Subject: "user:anne"}, {Object: "doc:1", Permission: "nope", Subject: "user:anne"}}
	_, err = c.CheckBulk(ctx, items, client.FullyConsistent())
	require.NoError(t, err)
	require.True(t, items[0].Allowed)
	require.ErrorIs(t, items[1].Err, client.ErrNotFound)

	subjects, _, err := c.LookupSubjects(ctx, "doc:1", "view", "user", client.FullyConsistent())
	require.NoError(t, err)
	require.Equal(t, []string{"user:anne"}, subjects)

	// Lookups and reads ask for batched results (many a message): more than one
	// batch's worth comes back whole and in order.
	var many []string
	for i := range 1500 {
		many = append(many, fmt.Sprintf("doc:m%04d#viewer@user:bob", i))
	}
	for chunk := range slices.Chunk(many, 1000) {
		touches, err := client.Touch(chunk...)
		require.NoError(t, err)
		_, err = c.Write(ctx, touches)
		require.NoError(t, err)
	}
	docs, _, err := c.LookupResources(ctx, "doc", "view", "user:bob", client.FullyConsistent())
	require.NoError(t, err)
	require.Len(t, docs, 1500)
	require.True(t, slices.IsSorted(docs))
	require.Equal(t, "doc:m0000", docs[0])
	page, err := c.Read(ctx, &relatav1.TupleFilter{ObjectType: "doc"}, client.FullyConsistent(), "", 1200)
	require.NoError(t, err)
	require.Len(t, page.Tuples, 1200)
	require.NotEmpty(t, page.Cursor)
	rest, err := c.Read(ctx, &relatav1.TupleFilter{ObjectType: "doc"}, client.FullyConsistent(), page.Cursor, 0)
	require.NoError(t, err)
	require.Len(t, rest.Tuples, 301) // doc:1#viewer@user:anne and the rest of bob's
	require.Empty(t, rest.Cursor)

	// A server that is not there is UNAVAILABLE, in one line.
	gone, err := client.New("127.0.0.1:1", client.WithInsecure())
	require.NoError(t, err)
	defer gone.Close()
	_, _, err = gone.ReadSchema(ctx, client.MinimizeLatency())
	require.ErrorAs(t, err, &cerr)
	require.Equal(t, codes.Unavailable, cerr.Code)
	require.False(t, errors.Is(err, tuples.ErrNoSchema))
}

func TestParseConsistency(t *testing.T) {
	z := tuples.NewZookies(tuples.Identity{ID: tuples.NewStoreID()}).Encode(42)
	for _, tc := range []struct {
		in   string
		want string // the oneof case, or "" for minimize_latency
		err  bool
	}{
		{"", "", false},
		{"min", "", false},
		{"full", "full", false},
		{z, "fresh " + z, false},
		{"exact:" + z, "exact " + z, false},
		{"exact:nope", "", true},
		{"bogus", "", true},
	} {
		c, err := client.ParseConsistency(tc.in)
		if tc.err {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		if tc.want == "" {
			require.Nil(t, c.Proto(), tc.in)
			continue
		}
		p := c.Proto()
		got := map[bool]string{true: "full"}[p.GetFullyConsistent()]
		if p.GetAtLeastAsFresh() != "" {
			got = "fresh " + p.GetAtLeastAsFresh()
		}
		if p.GetAtExactSnapshot() != "" {
			got = "exact " + p.GetAtExactSnapshot()
		}
		require.Equal(t, tc.want, got, tc.in)
	}
}
