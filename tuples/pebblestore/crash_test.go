package pebblestore

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
)

// The crash test re-executes the test binary as a child process (selected by
// crashDirEnv) that writes batches through the store and prints each acknowledged
// batch and each acknowledged deletion of a batch. The parent SIGKILLs it at a random
// moment, reopens the store, and checks that every acknowledged write and delete is
// there and that every batch is all or nothing.
const (
	crashDirEnv   = "RELATA_PEBBLESTORE_CRASH_DIR"
	crashRoundEnv = "RELATA_PEBBLESTORE_CRASH_ROUND"
	// crashImportEnv makes the child only import, every import large enough to be
	// ingested as SSTables (TestCrashIngest).
	crashImportEnv = "RELATA_PEBBLESTORE_CRASH_IMPORT"
)

// A batch is k tuples `batch:ID#member@user:uI`, I < k, where ID ends in "-k<k>", so
// the reader can tell a complete batch from a torn one.
func batchTuples(id string, k int) []tuples.Tuple {
	ts := make([]tuples.Tuple, k)
	for i := range ts {
		ts[i] = tuples.Tuple{Object: tuples.ObjectRef{Type: "batch", ID: id}, Relation: "member",
			Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: "u" + strconv.Itoa(i)}}}
	}
	return ts
}

func batchSize(id string) (int, error) {
	i := strings.LastIndex(id, "-k")
	if i < 0 {
		return 0, fmt.Errorf("batch id %q has no size", id)
	}
	return strconv.Atoi(id[i+2:])
}

func TestCrash(t *testing.T) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(t, dir, os.Getenv(crashRoundEnv), os.Getenv(crashImportEnv) != "")
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	crashRounds(t, "TestCrash", false)
}

// TestCrashIngest is TestCrash with a child that only imports, 500 to 5,000 tuples
// at a time, each ingested as SSTables: a kill during the build of the tables or
// the ingest loses no acknowledged import and exposes no partial one.
func TestCrashIngest(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		return // TestCrash runs the child
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	crashRounds(t, "TestCrash", true)
}

// crashRounds runs the child (the test named run, in this binary) five times on one
// directory, killing it at a random moment each time, and verifies the store after
// each kill.
func crashRounds(t *testing.T, run string, importOnly bool) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	acked := map[string]tuples.Revision{}
	const rounds = 5
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^"+run+"$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashRoundEnv+"="+strconv.Itoa(round))
		if importOnly {
			cmd.Env = append(cmd.Env, crashImportEnv+"=1")
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())

		lines := make(chan string, 1024)
		go func() {
			defer close(lines)
			br := bufio.NewReader(stdout)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return // a torn last line is ignored: not acknowledged as far as we know
				}
				lines <- strings.TrimSuffix(line, "\n")
			}
		}()
		// Kill at a random moment after the child's first acknowledgement.
		n := 0
		var killAt <-chan time.Time
	wait:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					break wait
				}
				n += record(t, acked, line)
				if killAt == nil {
					killAt = time.After(time.Duration(10+rng.IntN(200)) * time.Millisecond)
				}
			case <-killAt:
				break wait
			}
		}
		require.NoError(t, cmd.Process.Kill()) // SIGKILL
		for line := range lines {
			n += record(t, acked, line)
		}
		err = cmd.Wait()
		require.Error(t, err, "child exited by itself: %s", stderr.String())
		t.Logf("round %d: %d writes and deletes acknowledged, %d batches known", round, n, len(acked))
		verifyCrash(t, dir, acked)
	}
}

// Revisions recorded for batches whose fate is not a written batch.
const (
	deletedBatch  tuples.Revision = 0         // an acknowledged delete: must be absent
	deletingBatch tuples.Revision = 1<<64 - 1 // a delete in flight: either is fine
)

// record notes one line of the child: "ack REV ID" (batch written), "deleting 0 ID"
// (a delete about to be sent) or "del REV ID" (the delete acknowledged).
func record(t *testing.T, acked map[string]tuples.Revision, line string) int {
	var op string
	var rev uint64
	var id string
	_, err := fmt.Sscanf(line, "%s %d %s", &op, &rev, &id)
	require.NoError(t, err, "line %q", line)
	switch op {
	case "ack":
		acked[id] = tuples.Revision(rev)
	case "deleting":
		acked[id] = deletingBatch
	case "del":
		acked[id] = deletedBatch
	default:
		t.Fatalf("line %q", line)
	}
	return 1
}

// verifyCrash reopens the store: every batch present is complete, and every
// acknowledged batch is present at its revision.
func verifyCrash(t *testing.T, dir string, acked map[string]tuples.Revision) {
	verifyCrashFS(t, vfs.Default, dir, acked)
}

func verifyCrashFS(t *testing.T, fs vfs.FS, dir string, acked map[string]tuples.Revision) {
	ctx := context.Background()
	s, err := Open(dir, &Options{FS: fs, GCInterval: -1})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	head, err := s.HeadRevision(ctx)
	require.NoError(t, err)
	r, err := s.ReaderAt(ctx, head)
	require.NoError(t, err)
	counts := map[string]int{}
	for tup, err := range r.Read(ctx, tuples.Filter{ObjectType: "batch"}, nil) {
		require.NoError(t, err)
		counts[tup.Object.ID]++
	}
	for id, n := range counts {
		k, err := batchSize(id)
		require.NoError(t, err)
		require.Equal(t, k, n, "batch %s is torn", id)
	}
	for id, rev := range acked {
		k, _ := batchSize(id)
		switch rev {
		case deletedBatch:
			require.Zero(t, counts[id], "acknowledged delete of batch %s lost", id)
			continue
		case deletingBatch:
			continue // complete or absent, as checked above
		}
		require.Equal(t, k, counts[id], "acknowledged batch %s (revision %d) lost", id, rev)
		require.LessOrEqual(t, rev, head)
		at, err := s.ReaderAt(ctx, rev)
		require.NoError(t, err)
		ok, err := at.Contains(ctx, batchTuples(id, k)[k-1])
		require.NoError(t, err)
		require.True(t, ok, "batch %s not visible at its revision %d", id, rev)
	}
}

// TestPowerLoss simulates losing the machine, not just the process: while writers
// run, it clones the file system keeping only synced data plus a random half of the
// unsynced data (vfs.MemFS.CrashClone), reopens the clone, and checks that every
// batch acknowledged before the clone survived and none is torn. A store that
// acknowledged before its WAL sync would fail here, which a SIGKILL cannot show; so
// would an import acknowledged before its ingested tables were synced.
func TestPowerLoss(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewCrashableMem()
	s, err := Open("db", &Options{FS: fs, GCInterval: -1, IngestMinTuples: 100})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	var mu sync.Mutex
	acked := map[string]tuples.Revision{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				var (
					rev tuples.Revision
					err error
				)
				if w == 0 {
					// Imports of 100 tuples or more are ingested as SSTables.
					k := 50 + rng.IntN(500)
					id := fmt.Sprintf("w%d-n%d-k%d", w, n, k)
					rev, err = s.Import(ctx, batchTuples(id, k), 0)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					acked[id] = rev
					mu.Unlock()
					continue
				}
				k := 1 + rng.IntN(50)
				id := fmt.Sprintf("w%d-n%d-k%d", w, n, k)
				updates := make([]tuples.Update, k)
				for i, tup := range batchTuples(id, k) {
					updates[i] = tuples.Update{Op: tuples.OpCreate, Tuple: tup}
				}
				rev, err = s.Write(ctx, tuples.WriteRequest{Updates: updates})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[id] = rev
				mu.Unlock()
			}
		})
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 5 {
		time.Sleep(time.Duration(10+rng.IntN(40)) * time.Millisecond)
		mu.Lock()
		before := make(map[string]tuples.Revision, len(acked))
		for id, rev := range acked {
			before[id] = rev
		}
		mu.Unlock()
		clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rng})
		verifyCrashFS(t, clone, "db", before)
		t.Logf("%d acknowledged batches survived", len(before))
	}
	close(stop)
	wg.Wait()
}

// crashChild writes batches from four goroutines (only imports when importOnly), and
// deletes some it wrote, until it is killed (or 30 s pass, should the parent have
// died).
func crashChild(t *testing.T, dir, round string, importOnly bool) {
	// Imports of 500 tuples or more are ingested as SSTables, smaller ones committed
	// through a batch: the kill meets both.
	s, err := Open(dir, &Options{GCInterval: -1, IngestMinTuples: 500})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			var written []string
			for n := 0; time.Now().Before(deadline); n++ {
				var (
					rev tuples.Revision
					err error
				)
				if n%7 == 6 && len(written) > 0 {
					i := rng.IntN(len(written))
					id := written[i]
					written = append(written[:i], written[i+1:]...)
					fmt.Fprintf(os.Stdout, "deleting 0 %s\n", id)
					var deleted int
					rev, deleted, err = s.DeleteMatching(ctx, tuples.Filter{ObjectType: "batch", ObjectID: id}, nil)
					if err == nil {
						if k, _ := batchSize(id); deleted != k {
							err = fmt.Errorf("deleted %d tuples of batch %s", deleted, id)
						} else {
							fmt.Fprintf(os.Stdout, "del %d %s\n", rev, id)
						}
					}
				} else if importOnly {
					k := 500 + rng.IntN(4500)
					id := fmt.Sprintf("r%s-w%d-n%d-k%d", round, w, n, k)
					rev, err = s.Import(ctx, batchTuples(id, k), 0)
					if err == nil {
						fmt.Fprintf(os.Stdout, "ack %d %s\n", rev, id)
						written = append(written, id)
					}
				} else if n%5 == 4 {
					k := 1 + rng.IntN(2000)
					id := fmt.Sprintf("r%s-w%d-n%d-k%d", round, w, n, k)
					rev, err = s.Import(ctx, batchTuples(id, k), 0)
					if err == nil {
						fmt.Fprintf(os.Stdout, "ack %d %s\n", rev, id)
						written = append(written, id)
					}
				} else {
					k := 1 + rng.IntN(100)
					id := fmt.Sprintf("r%s-w%d-n%d-k%d", round, w, n, k)
					ts := batchTuples(id, k)
					updates := make([]tuples.Update, k)
					for i, tup := range ts {
						updates[i] = tuples.Update{Op: tuples.OpCreate, Tuple: tup}
					}
					rev, err = s.Write(ctx, tuples.WriteRequest{Updates: updates})
					if err == nil {
						fmt.Fprintf(os.Stdout, "ack %d %s\n", rev, id)
						written = append(written, id)
					}
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "child:", err)
					os.Exit(3)
				}
			}
		})
	}
	wg.Wait()
	_ = s.Close()
}
