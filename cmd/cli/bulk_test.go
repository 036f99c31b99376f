package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/relata/relata/client"
	relatav1 "github.com/relata/relata/proto/relata/v1"

	"github.com/relata/relata/server"
	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/pebblestore"
)

// bulkSchema is the schema of the bulk tests and benchmarks.
const bulkSchema = `definition user {}
definition role {
    relation member: user | role#member
}
definition flow {
    relation granted: user | role#member | user:*
    relation denied: user | role#member
    permission execute = granted - denied
}
`

// bulkServer is a real server on loopback ports over an on-disk Pebble store.
type bulkServer struct {
	addr  string // gRPC
	http  string // REST base URL
	store *pebblestore.Store
	stop  func()
}

// startBulkServer opens (or reopens) the store in dir, writes bulkSchema when it has
// none, and serves it on grpcAddr ("127.0.0.1:0" for any port). stop shuts the server
// down and closes the store; it is also registered as a cleanup.
func startBulkServer(tb testing.TB, dir, grpcAddr string) *bulkServer {
	tb.Helper()
	store, err := pebblestore.Open(dir, &pebblestore.Options{GCInterval: -1})
	require.NoError(tb, err)
	srv, err := server.New(server.Config{Store: store, GRPCAddr: grpcAddr, HTTPAddr: "127.0.0.1:0", Quantization: -1})
	require.NoError(tb, err)
	ctx := context.Background()
	head, err := store.HeadRevision(ctx)
	require.NoError(tb, err)
	r, err := store.ReaderAt(ctx, head)
	require.NoError(tb, err)
	if _, _, err := r.Schema(ctx); errors.Is(err, tuples.ErrNoSchema) {
		_, err = srv.WriteSchema(ctx, "schema", []byte(bulkSchema))
		require.NoError(tb, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		require.NoError(tb, <-done)
		require.NoError(tb, store.Close())
	}
	tb.Cleanup(stop)
	return &bulkServer{addr: srv.GRPCAddr().String(), http: "http://" + srv.HTTPAddr().String(), store: store, stop: stop}
}

// relata runs one command line and returns stdout, stderr and the exit code.
func relata(stdin string, args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, bytesReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

func bytesReader(s string) *bytes.Reader { return bytes.NewReader([]byte(s)) }

// timing matches the figures of an import summary that vary from run to run.
var timing = regexp.MustCompile(`in [0-9.]+ s \([0-9]+ tuples/s\)`)

// TestBulkCommands runs testdata/bulk.txt: `server` starts a fresh server (bulkSchema,
// empty store) in a fresh working directory, `file name=F` writes the input to F
// there, and `relata` runs a command line and prints its stdout, stderr and exit
// code, with import timings and zookies (ZOOKIE@REV) masked. Regenerate with -update.
func TestBulkCommands(t *testing.T) {
	runDataDriven(t, "testdata/bulk.txt", func(t *testing.T, d *datadriven.TestData) string {
		switch d.Cmd {
		case "server":
			dir := t.TempDir()
			srv := startBulkServer(t, filepath.Join(dir, "db"), "127.0.0.1:0")
			t.Setenv("RELATA_ENDPOINT", srv.addr)
			t.Chdir(dir)
			return ""
		case "file":
			var name string
			d.ScanArgs(t, "name", &name)
			require.NoError(t, os.WriteFile(name, []byte(d.Input), 0o644))
			return ""
		case "relata":
			out := runCLI(strings.TrimSpace(d.Input), "")
			return maskZookies(timing.ReplaceAllString(out, "in X s (R tuples/s)"))
		}
		t.Fatalf("unknown directive %q", d.Cmd)
		return ""
	})
}

// sortedLines returns the non-empty lines of text, sorted.
func sortedLines(text string) []string {
	var lines []string
	for l := range strings.SplitSeq(text, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	slices.Sort(lines)
	return lines
}

// TestImportExportRoundTrip imports 100,000 generated tuples, exports them (text and
// JSON), checks that the export is exactly the file's tuples, and that importing the
// export into an empty server reproduces them.
func TestImportExportRoundTrip(t *testing.T) {
	const n = 100_000
	dir := t.TempDir()
	path := writeBulkFile(t, dir, n)
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	a := startBulkServer(t, filepath.Join(dir, "a"), "127.0.0.1:0")

	out, errOut, code := relata("", "import", "--endpoint", a.addr, "--progress", "none", "--chunk", "30000", path)
	require.Equal(t, ExitOK, code, errOut)
	require.Contains(t, out, fmt.Sprintf("imported %d tuples", n))

	exported, errOut, code := relata("", "export", "--endpoint", a.addr)
	require.Equal(t, ExitOK, code, errOut)
	require.Equal(t, sortedLines(string(want)), strings.Split(strings.TrimSuffix(exported, "\n"), "\n"), "export is in canonical order")
	require.Regexp(t, fmt.Sprintf(`^exported %d tuples at \S+\n$`, n), errOut)

	// Re-running the import is idempotent.
	_, errOut, code = relata("", "import", "--endpoint", a.addr, "--progress", "none", path)
	require.Equal(t, ExitOK, code, errOut)
	again, _, code := relata("", "export", "--endpoint", a.addr)
	require.Equal(t, ExitOK, code)
	require.Equal(t, exported, again)

	// export --json | import --format json into an empty server.
	js, errOut, code := relata("", "export", "--endpoint", a.addr, "--json")
	require.Equal(t, ExitOK, code, errOut)
	b := startBulkServer(t, filepath.Join(dir, "b"), "127.0.0.1:0")
	_, errOut, code = relata(js, "import", "--endpoint", b.addr, "--progress", "none", "--format", "json", "-")
	require.Equal(t, ExitOK, code, errOut)
	copied, _, code := relata("", "export", "--endpoint", b.addr)
	require.Equal(t, ExitOK, code)
	require.Equal(t, exported, copied)
}

// TestExportCursorAndSnapshot checks that an export pins one revision (--at) and that
// a cursor resumes it exactly after the tuples already printed.
func TestExportCursorAndSnapshot(t *testing.T) {
	srv := startBulkServer(t, t.TempDir(), "127.0.0.1:0")
	var text strings.Builder
	for i := range 2500 {
		fmt.Fprintf(&text, "flow:f%04d#granted@user:u%d\n", i, i)
	}
	_, errOut, code := relata(text.String(), "import", "--endpoint", srv.addr, "--progress", "none")
	require.Equal(t, ExitOK, code, errOut)
	c, err := client.New(srv.addr, client.WithInsecure())
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()

	stream, err := c.Relationships().Export(ctx, &relatav1.ExportRequest{})
	require.NoError(t, err)
	first, err := stream.Recv()
	require.NoError(t, err)
	k := len(first.GetTuples())
	require.True(t, k > 0 && k < 2500, "first response has %d tuples", k)
	zookie := first.GetExportedAt()

	// Writes after the snapshot are not exported by the cursor or by --at.
	_, err = c.Write(ctx, []client.Update{{Op: tuples.OpTouch, Tuple: mustTuple(t, "flow:f0000#denied@user:late")}})
	require.NoError(t, err)
	rest, errOut, code := relata("", "export", "--endpoint", srv.addr, "--cursor", first.GetCursor())
	require.Equal(t, ExitOK, code, errOut)
	require.Equal(t, 2500-k, len(sortedLines(rest)))
	require.Equal(t, fmt.Sprintf("flow:f%04d#granted@user:u%d", k, k), strings.SplitN(rest, "\n", 2)[0])
	at, _, code := relata("", "export", "--endpoint", srv.addr, "--at", zookie, "flow:f0000")
	require.Equal(t, ExitOK, code)
	require.Equal(t, "flow:f0000#granted@user:u0\n", at)
	now, _, code := relata("", "export", "--endpoint", srv.addr, "flow:f0000")
	require.Equal(t, ExitOK, code)
	require.Equal(t, "flow:f0000#denied@user:late\nflow:f0000#granted@user:u0\n", now)

	// A cursor carries its filter; a different one is refused.
	stream, err = c.Relationships().Export(ctx, &relatav1.ExportRequest{Filter: &relatav1.TupleFilter{ObjectType: "flow"}})
	require.NoError(t, err)
	resp, err := stream.Recv()
	require.NoError(t, err)
	stream, err = c.Relationships().Export(ctx, &relatav1.ExportRequest{Cursor: resp.GetCursor(), Filter: &relatav1.TupleFilter{ObjectType: "role"}})
	require.NoError(t, err)
	_, err = stream.Recv()
	var cerr *client.Error
	require.ErrorAs(t, client.FromStatus(err), &cerr)
	require.Equal(t, codes.InvalidArgument, cerr.Code)
}

func mustTuple(t *testing.T, s string) tuples.Tuple {
	t.Helper()
	tup, err := tuples.ParseTuple(s)
	require.NoError(t, err)
	return tup
}

// cancelOnWrite is an io.Writer that cancels a context once the output contains a
// progress line naming a committed line.
type cancelOnWrite struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	cancel context.CancelFunc
}

var committedThrough = regexp.MustCompile(`committed through line ([1-9][0-9]*)`)

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if committedThrough.Match(w.buf.Bytes()) {
		w.cancel()
	}
	return len(p), nil
}

// TestImportResume kills an import (cancels it) after its first committed chunk,
// resumes it from the line the output names, and checks that the store then holds
// exactly the file's tuples.
func TestImportResume(t *testing.T) {
	const n = 40_000
	dir := t.TempDir()
	path := writeBulkFile(t, dir, n)
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	srv := startBulkServer(t, filepath.Join(dir, "db"), "127.0.0.1:0")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &cancelOnWrite{cancel: cancel}
	var errOut bytes.Buffer
	code := Main(ctx, []string{"import", "--endpoint", srv.addr, "--progress", "lines", "--interval", "1ms",
		"--chunk", "1000", "--batch-size", "250", path}, bytesReader(""), out, &errOut)
	require.Equal(t, ExitError, code, "the import was not interrupted: %s", out.buf.String())
	m := regexp.MustCompile(`every line up to (\d+) is committed, resume with --resume-from (\d+)`).FindStringSubmatch(errOut.String())
	require.NotNil(t, m, errOut.String())
	var last, from int
	fmt.Sscan(m[1], &last)
	fmt.Sscan(m[2], &from)
	require.Equal(t, last+1, from)
	require.Less(t, last, n, "the import finished before it was interrupted")

	// Every line up to `last` is committed.
	partial, _, code := relata("", "export", "--endpoint", srv.addr)
	require.Equal(t, ExitOK, code)
	lines := strings.SplitAfter(string(want), "\n")
	require.Subset(t, sortedLines(partial), sortedLines(strings.Join(lines[:last], "")))

	stdout, errText, code := relata("", "import", "--endpoint", srv.addr, "--progress", "none", "--resume-from", fmt.Sprint(from), path)
	require.Equal(t, ExitOK, code, errText)
	require.Contains(t, stdout, fmt.Sprintf("through line %d", n))
	exported, _, code := relata("", "export", "--endpoint", srv.addr)
	require.Equal(t, ExitOK, code)
	require.Equal(t, sortedLines(string(want)), sortedLines(exported))
}

// TestWatchAcrossRestart watches from a zookie taken before a batch of writes, restarts
// the server in the middle, and checks that the watcher sees every change exactly
// once, in commit order.
func TestWatchAcrossRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	srv := startBulkServer(t, dir, "127.0.0.1:0")
	addr := srv.addr
	c, err := client.New(addr, client.WithInsecure())
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	from, err := c.Write(ctx, []client.Update{{Op: tuples.OpTouch, Tuple: mustTuple(t, "role:base#member@user:zero")}})
	require.NoError(t, err)

	type change struct {
		op  string
		tup string
	}
	var want []change
	write := func(op tuples.Operation, ts ...string) {
		t.Helper()
		ups := make([]client.Update, len(ts))
		for i, s := range ts {
			ups[i] = client.Update{Op: op, Tuple: mustTuple(t, s)}
			name := "TOUCH"
			if op == tuples.OpDelete {
				name = "DELETE"
			}
			want = append(want, change{name, s})
		}
		_, err := c.Write(ctx, ups)
		require.NoError(t, err)
	}
	for i := range 20 {
		write(tuples.OpTouch, fmt.Sprintf("flow:a%d#granted@user:u%d", i, i), fmt.Sprintf("role:r%d#member@user:u%d", i, i))
	}
	write(tuples.OpDelete, "flow:a3#granted@user:u3")

	var (
		mu      sync.Mutex
		got     []change
		revs    []string
		watched = make(chan error, 1)
	)
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	go func() {
		watched <- watchChanges(ctx, c, from, nil, 30*time.Second, func(resp *relatav1.WatchResponse) error {
			mu.Lock()
			defer mu.Unlock()
			for _, ch := range resp.GetChanges() {
				got = append(got, change{ch.GetOperation().String(), client.TupleFromProto(ch.GetTuple()).String()})
				revs = append(revs, ch.GetRevision())
			}
			return nil
		})
	}()
	require.Eventually(t, func() bool { return count() == len(want) }, 10*time.Second, 5*time.Millisecond)

	srv.stop()
	srv = startBulkServer(t, dir, addr)
	// The client's connection may still be in its reconnect backoff: wait until it is
	// ready, or the first write fails UNAVAILABLE (this flaked under load).
	readyCtx, readyCancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = c.Schema().ReadSchema(readyCtx, &relatav1.ReadSchemaRequest{}, grpc.WaitForReady(true))
	readyCancel()
	require.NoError(t, err)
	for i := range 20 {
		write(tuples.OpTouch, fmt.Sprintf("flow:b%d#granted@user:u%d", i, i))
	}
	write(tuples.OpDelete, "role:r7#member@user:u7", "flow:b1#granted@user:u1")
	require.Eventually(t, func() bool { return count() >= len(want) }, 10*time.Second, 5*time.Millisecond)
	time.Sleep(50 * time.Millisecond) // a duplicate would arrive now
	cancel()
	require.ErrorIs(t, <-watched, context.Canceled)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, want, got)
	for i := 1; i < len(revs); i++ {
		r0, err := tuples.ParseZookie(revs[i-1])
		require.NoError(t, err)
		r1, err := tuples.ParseZookie(revs[i])
		require.NoError(t, err)
		require.LessOrEqual(t, r0, r1)
	}
}

// TestWatchFilterAndExpired checks the object-type filter and that a zookie GC has
// passed is FAILED_PRECONDITION.
func TestWatchFilterAndExpired(t *testing.T) {
	srv := startBulkServer(t, t.TempDir(), "127.0.0.1:0")
	c, err := client.New(srv.addr, client.WithInsecure())
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	old, err := c.Write(ctx, []client.Update{{Op: tuples.OpTouch, Tuple: mustTuple(t, "role:a#member@user:x")}})
	require.NoError(t, err)
	_, err = c.Write(ctx, []client.Update{{Op: tuples.OpTouch, Tuple: mustTuple(t, "flow:f#granted@user:x")}, {Op: tuples.OpTouch, Tuple: mustTuple(t, "role:b#member@user:x")}})
	require.NoError(t, err)

	// With `from`, the first message already carries the changes after it.
	stream, err := c.Relationships().Watch(ctx, &relatav1.WatchRequest{From: old, ObjectTypes: []string{"role"}})
	require.NoError(t, err)
	resp, err := stream.Recv()
	require.NoError(t, err)
	require.Len(t, resp.GetChanges(), 1)
	require.Equal(t, "role:b#member@user:x", client.TupleFromProto(resp.GetChanges()[0].GetTuple()).String())

	head, err := srv.store.HeadRevision(ctx)
	require.NoError(t, err)
	_, err = srv.store.CollectGarbage(ctx, head)
	require.NoError(t, err)
	stream, err = c.Relationships().Watch(ctx, &relatav1.WatchRequest{From: old})
	require.NoError(t, err)
	_, err = stream.Recv()
	var cerr *client.Error
	require.ErrorAs(t, client.FromStatus(err), &cerr)
	require.Equal(t, codes.FailedPrecondition, cerr.Code)
	require.Equal(t, "ZOOKIE_EXPIRED", cerr.Reason)

	// The CLI says why in one line, without a hint to resume from the refused zookie.
	for _, tc := range []struct{ from, reason string }{
		{old, "ZOOKIE_EXPIRED"},
		{"bogus", "INVALID_ZOOKIE"},
	} {
		_, errOut, code := relata("", "watch", "--endpoint", srv.addr, "--from", tc.from)
		require.Equal(t, ExitError, code)
		require.Contains(t, errOut, tc.reason)
		require.NotContains(t, errOut, "resume with")
		require.Equal(t, 1, strings.Count(errOut, "\n"), errOut)
	}
}

// TestBulkREST reads /v1/watch and /v1/tuples/export as newline-delimited JSON.
func TestBulkREST(t *testing.T) {
	srv := startBulkServer(t, t.TempDir(), "127.0.0.1:0")
	_, errOut, code := relata("flow:f1#granted@user:anne\nflow:f2#granted@user:*\n", "import", "--endpoint", srv.addr, "--progress", "none")
	require.Equal(t, ExitOK, code, errOut)

	resp, err := http.Post(srv.http+"/v1/tuples/export", "application/json", strings.NewReader(`{"filter":{"objectType":"flow"}}`))
	require.NoError(t, err)
	body := readAllString(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Contains(t, body, `{"tuples":[{"object":{"type":"flow","id":"f1"},"relation":"granted"`)
	require.Equal(t, 1, strings.Count(body, "\n"), body)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.http+"/v1/watch", strings.NewReader(`{"from":""}`))
	require.NoError(t, err)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	sc := bufio.NewScanner(resp.Body)
	require.True(t, sc.Scan())
	require.Contains(t, sc.Text(), `"changesThrough"`)
	_, errOut, code = relata("flow:f3#granted@user:bob\n", "import", "--endpoint", srv.addr, "--progress", "none")
	require.Equal(t, ExitOK, code, errOut)
	require.True(t, sc.Scan())
	require.Contains(t, sc.Text(), `"operation":"TOUCH","tuple":{"object":{"type":"flow","id":"f3"}`)
	require.NotContains(t, sc.Text(), "OPERATION_")
}

func readAllString(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	_, err := bufio.NewReader(resp.Body).WriteTo(&b)
	require.NoError(t, err)
	return b.String()
}

// lineWriter collects output and calls done once it holds n lines.
type lineWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	n    int
	done func()
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Count(w.buf.String(), "\n") >= w.n {
		w.done()
	}
	return len(p), nil
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestWatchJSONSpelling checks that `watch --json` prints operations as requests spell
// them (TOUCH, DELETE) and tuples exactly as `export --json` does (empty fields left out).
func TestWatchJSONSpelling(t *testing.T) {
	srv := startBulkServer(t, t.TempDir(), "127.0.0.1:0")
	c, err := client.New(srv.addr, client.WithInsecure())
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	from, err := c.Write(ctx, []client.Update{{Op: tuples.OpTouch, Tuple: mustTuple(t, "role:a#member@user:x")}})
	require.NoError(t, err)
	_, err = c.Write(ctx, []client.Update{{Op: tuples.OpTouch, Tuple: mustTuple(t, "flow:f1#granted@user:anne")}})
	require.NoError(t, err)
	_, err = c.Write(ctx, []client.Update{{Op: tuples.OpDelete, Tuple: mustTuple(t, "role:a#member@user:x")}})
	require.NoError(t, err)

	exported, errOut, code := relata("", "export", "--endpoint", srv.addr, "--json")
	require.Equal(t, ExitOK, code, errOut)
	exportLine := strings.TrimSuffix(exported, "\n")
	require.NotContains(t, exportLine, `"relation":""`)

	wctx, stop := context.WithCancel(ctx)
	defer stop()
	out := &lineWriter{n: 2, done: stop}
	var errBuf bytes.Buffer
	code = Main(wctx, []string{"watch", "--endpoint", srv.addr, "--insecure", "--json", "--from", from}, bytesReader(""), out, &errBuf)
	require.Equal(t, ExitOK, code, errBuf.String())
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, lines, 2, out.String())
	require.Contains(t, lines[0], `"operation":"TOUCH","tuple":`+exportLine+`,"revision":`)
	require.Contains(t, lines[1], `"operation":"DELETE","tuple":{"object":{"type":"role","id":"a"},"relation":"member","subject":{"object":{"type":"user","id":"x"}}}`)
	require.NotContains(t, out.String(), "OPERATION_")
}
