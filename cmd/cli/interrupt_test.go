package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
)

// mainEnv, when set in the environment of this test binary, makes it run as the
// relata command (as cmd/relata does: interrupts end the context) with its
// arguments, instead of running the tests: a real process to send signals to.
const mainEnv = "RELATA_CLI_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// waitForTuples waits until the store holds n tuples at its head and fails if it holds
// more.
func waitForTuples(t *testing.T, store tuples.Store, n int) {
	t.Helper()
	ctx := context.Background()
	waiter := store.(tuples.RevisionWaiter)
	for after := tuples.Revision(0); ; {
		head, err := waiter.WaitForRevision(ctx, after)
		require.NoError(t, err)
		if got := countAt(t, store, head); got >= n {
			require.Equal(t, n, got)
			return
		}
		after = head
	}
}

func countAt(t *testing.T, store tuples.Store, rev tuples.Revision) int {
	t.Helper()
	ctx := context.Background()
	r, err := store.ReaderAt(ctx, rev)
	require.NoError(t, err)
	n := 0
	for _, err := range r.Read(ctx, tuples.Filter{}, nil) {
		require.NoError(t, err)
		n++
	}
	return n
}

var importStopped = regexp.MustCompile(`import stopped: (\d+) tuples committed \(written at \S+\); every line up to (\d+) is committed, resume with --resume-from (\d+)`)

// TestImportInterrupted interrupts a real `relata import` process (SIGINT, as Ctrl-C
// does, and SIGTERM) after the server committed part of its input, in the middle of
// an Import call, and checks that it prints exactly the number of tuples the server
// holds and the line to resume from; resuming from it imports the rest.
func TestImportInterrupted(t *testing.T) {
	const sent, batch, total = 1000, 100, 1050
	var input strings.Builder
	for i := 1; i <= total; i++ {
		fmt.Fprintf(&input, "flow:f%d#granted@user:u%d\n", i, i)
	}
	lines := strings.SplitAfter(input.String(), "\n")
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			srv := startBulkServer(t, filepath.Join(dir, "db"), "127.0.0.1:0")
			cmd := exec.Command(os.Args[0], "import", "--endpoint", srv.addr, "--progress", "none",
				"--batch-size", strconv.Itoa(batch), "-")
			cmd.Env = append(os.Environ(), mainEnv+"=1")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			stdin, err := cmd.StdinPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			defer stdin.Close()

			// The first `sent` lines make full batches, which the importer sends in
			// one Import call (--chunk is far larger) that stays open: nothing of
			// it is acknowledged yet. The last lines make a batch not yet full.
			_, err = stdin.Write([]byte(strings.Join(lines[:sent], "")))
			require.NoError(t, err)
			_, err = stdin.Write([]byte(strings.Join(lines[sent:], "")))
			require.NoError(t, err)
			waitForTuples(t, srv.store, sent)

			require.NoError(t, cmd.Process.Signal(sig))
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case err = <-exited:
			case <-time.After(time.Minute): // a watchdog, not a measure: it exits at once
				_ = cmd.Process.Kill()
				<-exited
				t.Fatalf("the import did not exit after %v\nstderr %s", sig, stderr.String())
			}
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "stdout %s\nstderr %s", stdout.String(), stderr.String())
			require.Equal(t, ExitError, exit.ExitCode(), stderr.String())

			m := importStopped.FindStringSubmatch(stderr.String())
			require.NotNil(t, m, stderr.String())
			require.Contains(t, stderr.String(), "relata: interrupted\n")
			head, err := srv.store.HeadRevision(context.Background())
			require.NoError(t, err)
			require.Equal(t, strconv.Itoa(countAt(t, srv.store, head)), m[1], "the count printed is the count committed")
			require.Equal(t, strconv.Itoa(sent), m[1])
			require.Equal(t, strconv.Itoa(sent), m[2])
			require.Equal(t, strconv.Itoa(sent+1), m[3])

			// Resuming from the line it names imports the rest.
			path := filepath.Join(dir, "tuples.txt")
			require.NoError(t, os.WriteFile(path, []byte(input.String()), 0o644))
			out, errText, code := relata("", "import", "--endpoint", srv.addr, "--progress", "none", "--resume-from", m[3], path)
			require.Equal(t, ExitOK, code, errText)
			require.Contains(t, out, fmt.Sprintf("imported %d tuples", total-sent))
			head, err = srv.store.HeadRevision(context.Background())
			require.NoError(t, err)
			require.Equal(t, total, countAt(t, srv.store, head))
		})
	}
}
