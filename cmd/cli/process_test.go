package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/client"
	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/pgstore"
	"github.com/relata/relata/tuples/pgstore/pgtest"
)

// startServeProcess runs `relata serve ARGS --grpc-addr 127.0.0.1:0 --http-addr
// 127.0.0.1:0` as a separate OS process (this test binary as the relata command, see
// TestMain) and waits until it logs where it listens. stop sends SIGTERM and returns
// the exit code; kill sends SIGKILL.
func startServeProcess(t *testing.T, args ...string) (p *serveProc, kill func()) {
	t.Helper()
	args = append([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--ui=false"}, args...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	done := make(chan int, 1)
	go func() {
		_ = cmd.Wait()
		done <- cmd.ProcessState.ExitCode()
	}()
	p = &serveProc{logs: logs}
	var once sync.Once
	code := -1
	end := func(sig os.Signal) int {
		once.Do(func() {
			_ = cmd.Process.Signal(sig)
			code = <-done
		})
		return code
	}
	p.stop = func() int { return end(syscall.SIGTERM) }
	t.Cleanup(func() { p.stop() })
	for {
		if m := servingLine.FindStringSubmatch(logs.String()); m != nil {
			p.grpcAddr, p.httpAddr = m[1], m[2]
			return p, func() { end(syscall.SIGKILL) }
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d before serving:\n%s", code, logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestKill9DuringWritesPostgres kills a `relata serve --datastore` process with
// SIGKILL while writers are writing through it, then checks, reading the database
// directly, that every write it acknowledged is there, at or below its zookie's
// revision; a new node then serves the same data.
func TestKill9DuringWritesPostgres(t *testing.T) {
	url := pgtest.NewDatabase(t)
	node, kill := startServeProcess(t, "--datastore", url)
	c, err := client.New(node.grpcAddr, client.WithInsecure())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	type ack struct {
		tuple string
		rev   tuples.Revision
	}
	var mu sync.Mutex
	var acked []ack
	enough := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				tu := fmt.Sprintf("tenant:t%d#developer@user:u%d", w, i)
				us, err := client.Touch(tu)
				if err != nil {
					t.Error(err)
					return
				}
				z, err := c.Write(ctx, us)
				if err != nil {
					return // the node is gone: this write was not acknowledged
				}
				rev, err := tuples.ParseZookie(z)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked = append(acked, ack{tu, rev})
				if len(acked) == 100 {
					close(enough)
				}
				mu.Unlock()
			}
		})
	}
	select {
	case <-enough:
	case <-ctx.Done():
		t.Fatal("100 writes were not acknowledged")
	}
	kill()
	wg.Wait()

	store, err := pgstore.Open(ctx, url, &pgstore.Options{GCInterval: -1})
	require.NoError(t, err)
	defer store.Close()
	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(acked), 100)
	for _, a := range acked {
		tu, err := tuples.ParseTuple(a.tuple)
		require.NoError(t, err)
		r, err := store.ReaderAt(ctx, a.rev)
		require.NoError(t, err)
		ok, err := r.Contains(ctx, tu)
		require.NoError(t, err)
		require.True(t, ok, "acknowledged write %s at %d is lost", a.tuple, a.rev)
	}

	again, _ := startServeProcess(t, "--datastore", url)
	c2, err := client.New(again.grpcAddr, client.WithInsecure())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c2.Close() })
	last := acked[len(acked)-1]
	res, err := c2.Check(ctx, "tenant:t0", "developer", "user:u0", client.FullyConsistent())
	require.NoError(t, err)
	require.True(t, res.Allowed, "a new node serves the writes of the killed one (last acknowledged: %s)", last.tuple)
}
