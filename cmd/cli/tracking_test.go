package cli

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples/pgstore"
	"github.com/relata/relata/tuples/pgstore/pgtest"
)

// TestServeNoCrossNodeTracking: the measurement-only flag is hidden, is not read from
// the environment, needs --datastore, warns loudly when it runs, and is refused while
// another node follows the database.
func TestServeNoCrossNodeTracking(t *testing.T) {
	require.NotContains(t, runCLI("serve --help", ""), noTrackingFlag)
	require.Contains(t, runCLI("serve --data-dir "+t.TempDir()+" --"+noTrackingFlag, ""), "needs --datastore (Pebble has one node and nothing to track)\nexit 2")

	url := pgtest.NewDatabase(t)
	// From the environment it is ignored: this serve runs with tracking on.
	t.Setenv("RELATA_MEASURE_NO_CROSS_NODE_TRACKING", "true")
	p := startServe(t, "--datastore", url, "--ui=false")
	require.NotContains(t, p.logs.String(), "MEASUREMENT ONLY")
	require.Equal(t, ExitOK, p.stop())
	t.Setenv("RELATA_MEASURE_NO_CROSS_NODE_TRACKING", "")

	p = startServe(t, "--datastore", url, "--ui=false", "--"+noTrackingFlag)
	require.Contains(t, p.logs.String(), "MEASUREMENT ONLY")
	require.Equal(t, ExitOK, p.stop())

	// A node with tracking on follows the database (its LISTEN connection shows).
	ctx := context.Background()
	other, err := pgstore.Open(ctx, url, &pgstore.Options{GCInterval: -1})
	require.NoError(t, err)
	defer other.Close()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	require.Eventually(t, func() bool {
		var n int
		err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'").Scan(&n)
		return err == nil && n > 0
	}, time.Minute, 10*time.Millisecond)
	out := runCLI("serve --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --ui=false --datastore "+url+" --"+noTrackingFlag, "")
	require.Contains(t, out, "another relata node follows this database")
	require.Contains(t, out, "exit 1")
}
