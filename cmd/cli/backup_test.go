package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/client"
	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/pebblestore"
)

// TestBackupDuringWrites takes a backup while writers keep writing, verifies it, and
// restores it: every write acknowledged at or before the backup's revision is in it,
// none after.
func TestBackupDuringWrites(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, "--data-dir", filepath.Join(dir, "data"))
	c, err := client.New(p.grpcAddr, client.WithInsecure())
	require.NoError(t, err)
	defer c.Close()

	type acked struct {
		tuple string
		rev   tuples.Revision
	}
	var (
		mu      sync.Mutex
		writes  []acked
		wg      sync.WaitGroup
		backupC = make(chan struct{})
		once    sync.Once
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const writers = 4
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				default:
				}
				tup := fmt.Sprintf("role:w%d-%d#member@user:u%d", w, i, i)
				z, err := c.Write(ctx, []client.Update{{Op: tuples.OpTouch, Tuple: mustTuple(t, tup)}})
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					t.Errorf("write %s: %v", tup, err)
					once.Do(func() { close(backupC) })
					return
				}
				rev, err := tuples.ParseZookie(z)
				if err != nil {
					t.Errorf("zookie %q: %v", z, err)
					return
				}
				mu.Lock()
				writes = append(writes, acked{tup, rev})
				n := len(writes)
				mu.Unlock()
				if n == 200 {
					once.Do(func() { close(backupC) }) // enough writes before; the writers go on during the backup
				}
			}
		}()
	}
	<-backupC
	require.False(t, t.Failed())
	backupDir := filepath.Join(dir, "backup")
	out := runCLI("backup create "+backupDir+" --endpoint "+p.grpcAddr, "")
	require.Contains(t, out, "exit 0", out)
	m := regexp.MustCompile(`backup of revision (\d+) in (\S+)`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	backupRev, err := strconv.ParseUint(m[1], 10, 64)
	require.NoError(t, err)
	require.Equal(t, backupDir, m[2])
	// Keep writing a little after the backup, then stop.
	mu.Lock()
	target := len(writes) + 50
	mu.Unlock()
	for {
		mu.Lock()
		n := len(writes)
		mu.Unlock()
		if n >= target || t.Failed() {
			break
		}
		runCLI("read role:w0-0 --endpoint "+p.grpcAddr, "") // yield to the writers without sleeping
	}
	cancel()
	wg.Wait()
	require.Equal(t, 0, p.stop())

	// A backup to a directory that exists is refused.
	p = startServe(t, "--data-dir", filepath.Join(dir, "data"))
	out = runCLI("backup create "+backupDir+" --endpoint "+p.grpcAddr, "")
	require.Contains(t, out, "already exists", out)
	require.Contains(t, out, "exit 1", out)
	require.Equal(t, 0, p.stop())

	before := 0
	var after []acked
	for _, w := range writes {
		if uint64(w.rev) <= backupRev {
			before++
		} else {
			after = append(after, w)
		}
	}
	require.NotEmpty(t, after, "writes went on after the backup")
	// verify prints the revision and the count: the schema, then one tuple a write.
	out = runCLI("backup verify "+backupDir, "")
	require.Contains(t, out, fmt.Sprintf("revision %d\ntuples %d\n", backupRev, before), out)

	// Restore: serve the backup; exactly the writes up to its revision are there.
	st, err := pebblestore.Open(backupDir, &pebblestore.Options{ReadOnly: true})
	require.NoError(t, err)
	defer st.Close()
	head, err := st.HeadRevision(context.Background())
	require.NoError(t, err)
	require.Equal(t, tuples.Revision(backupRev), head)
	r, err := st.ReaderAt(context.Background(), head)
	require.NoError(t, err)
	for _, w := range writes {
		ok, err := r.Contains(context.Background(), mustTuple(t, w.tuple))
		require.NoError(t, err)
		require.Equal(t, uint64(w.rev) <= backupRev, ok, "%s written at %d, backup at %d", w.tuple, w.rev, backupRev)
	}
	require.NoError(t, st.Close())
	p = startServe(t, "--data-dir", backupDir)
	out = runCLI("check role:w0-0 member user:u0 --endpoint "+p.grpcAddr+" --consistency full", "")
	require.Contains(t, out, "exit 0", out)
	require.Equal(t, 0, p.stop())
}
