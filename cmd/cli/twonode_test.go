package cli

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/client"
	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/pgstore/pgtest"
)

// TestTwoNodesOnPostgres runs two `relata serve --datastore` nodes, two OS processes,
// on one PostgreSQL database: a write through A is seen through B with its zookie (at_least_as_fresh)
// and, without it (minimize_latency), once --quantization has passed; Watch on B
// streams A's writes in order; a delete through B is seen through A.
func TestTwoNodesOnPostgres(t *testing.T) {
	url := pgtest.NewDatabase(t)
	const quantization = 300 * time.Millisecond
	a, _ := startServeProcess(t, "--datastore", url, "--quantization", quantization.String())
	b, _ := startServeProcess(t, "--datastore", url, "--quantization", quantization.String())
	require.Contains(t, a.logs.String(), "datastore migrated")
	require.NotContains(t, b.logs.String(), "datastore migrated", "B finds the database migrated")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dial := func(p *serveProc) *client.Client {
		c, err := client.New(p.grpcAddr, client.WithInsecure())
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	ca, cb := dial(a), dial(b)
	write := func(c *client.Client, op func(...string) ([]client.Update, error), ts ...string) string {
		t.Helper()
		us, err := op(ts...)
		require.NoError(t, err)
		z, err := c.Write(ctx, us)
		require.NoError(t, err)
		return z
	}
	check := func(c *client.Client, cons client.Consistency) bool {
		t.Helper()
		res, err := c.Check(ctx, "flow:invoice-sync", "execute", "user:anne", cons)
		require.NoError(t, err)
		return res.Allowed
	}

	seed := write(ca, client.Touch, "workspace:ops#tenant@tenant:acme", "flow:invoice-sync#workspace@workspace:ops")
	watch, err := cb.Relationships().Watch(ctx, &relatav1.WatchRequest{From: seed})
	require.NoError(t, err)
	require.False(t, check(cb, client.MinimizeLatency()), "B answers before A's grant")

	granted := write(ca, client.Touch, "tenant:acme#developer@user:anne")
	acked := time.Now()
	require.True(t, check(cb, client.AtLeastAsFresh(granted)), "at_least_as_fresh on B sees A's write")
	// The property under test is about time itself: any minimize_latency read that
	// starts --quantization after the write was acknowledged sees it. So wait for
	// that moment, then read once.
	time.Sleep(time.Until(acked.Add(quantization)))
	require.True(t, check(cb, client.MinimizeLatency()), "minimize_latency on B after --quantization")

	revoked := write(cb, client.Delete, "tenant:acme#developer@user:anne")
	require.False(t, check(ca, client.AtLeastAsFresh(revoked)), "A sees B's delete")

	var got []string
	for len(got) < 2 {
		resp, err := watch.Recv()
		require.NoError(t, err)
		for _, c := range resp.GetChanges() {
			got = append(got, fmt.Sprintf("%s %s", c.GetOperation(), client.TupleFromProto(c.GetTuple())))
		}
	}
	require.Equal(t, []string{"TOUCH tenant:acme#developer@user:anne", "DELETE tenant:acme#developer@user:anne"}, got)
	rg, _ := tuples.ParseZookie(granted)
	rr, _ := tuples.ParseZookie(revoked)
	require.Equal(t, rg+1, rr, "revisions are dense across nodes")
}

// TestServeDatastorePasswordHidden: the datastore URL's password appears neither in
// serve's logs and errors nor in --help.
func TestServeDatastorePasswordHidden(t *testing.T) {
	out := runCLI("serve --datastore postgres://relata:s3cret-pw@127.0.0.1:1/relata?connect_timeout=1 --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0", "")
	require.NotContains(t, out, "s3cret-pw")
	require.Contains(t, out, "relata:xxxxx@127.0.0.1:1")
	require.Contains(t, out, "exit 1")
	out = runCLI("migrate --datastore postgres://relata:s3cret-pw@127.0.0.1:1/relata?connect_timeout=1", "")
	require.NotContains(t, out, "s3cret-pw")
	require.Contains(t, out, "exit 1")
	t.Setenv("RELATA_DATASTORE", "postgres://relata:s3cret-pw@127.0.0.1:1/relata")
	for _, cmd := range []string{"serve --help", "migrate --help"} {
		out = runCLI(cmd, "")
		require.NotContains(t, out, "s3cret-pw")
		require.Contains(t, out, "--datastore")
	}
	require.Contains(t, runCLI("migrate", ""), "exit 1", "RELATA_DATASTORE is used")
}
