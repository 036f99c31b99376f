package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/relata/relata/client"
	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/server"
	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/pebblestore"
)

const streamsSchema = `definition user {}
definition doc {
	relation viewer: user
	permission view = viewer
}`

// testServer is a Relata server over a Pebble store in dir, on addr ("127.0.0.1:0"
// for any port), that can be stopped and started again on the same address.
type testServer struct {
	t    *testing.T
	dir  string
	addr string
	stop func()
}

func (s *testServer) start() {
	s.t.Helper()
	store, err := pebblestore.Open(s.dir, nil)
	require.NoError(s.t, err)
	srv, err := server.New(server.Config{Store: store, GRPCAddr: s.addr, HTTPAddr: "127.0.0.1:0", PresharedKey: "sekret"})
	require.NoError(s.t, err)
	s.addr = srv.GRPCAddr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	s.stop = func() {
		cancel()
		require.NoError(s.t, <-done)
		require.NoError(s.t, store.Close())
		s.stop = nil
	}
}

func newTestServer(t *testing.T, addr string) *testServer {
	s := &testServer{t: t, dir: t.TempDir(), addr: addr}
	s.start()
	t.Cleanup(func() {
		if s.stop != nil {
			s.stop()
		}
	})
	return s
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// TestWaitForReady: a client created before its server listens, whose first call
// starts before the server does, waits for the server and succeeds; with no server,
// the first call ends with the caller's context.
func TestWaitForReady(t *testing.T) {
	addr := freeAddr(t)
	dialed := make(chan struct{})
	var once sync.Once
	dialer := func(ctx context.Context, a string) (net.Conn, error) {
		defer once.Do(func() { close(dialed) })
		return (&net.Dialer{}).DialContext(ctx, "tcp", a)
	}
	c, err := client.New(addr, client.WithInsecure(), client.WithToken("sekret"),
		client.WithReadyTimeout(time.Minute), client.WithDialOptions(grpc.WithContextDialer(dialer)))
	require.NoError(t, err)
	defer c.Close()

	type answer struct {
		schema string
		err    error
	}
	got := make(chan answer, 1)
	go func() {
		s, _, err := c.ReadSchema(context.Background(), client.MinimizeLatency())
		got <- answer{s, err}
	}()
	<-dialed // the call is under way and found nothing listening
	srv := newTestServer(t, addr)
	a := <-got
	require.ErrorIs(t, a.err, tuples.ErrNoSchema) // an answer from the server, not UNAVAILABLE
	_, err = c.WriteSchema(context.Background(), streamsSchema)
	require.NoError(t, err)
	srv.stop()

	// Nothing listens: the wait ends with the caller's deadline.
	lonely, err := client.New(freeAddr(t), client.WithInsecure(), client.WithReadyTimeout(time.Hour))
	require.NoError(t, err)
	defer lonely.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, _, err = lonely.ReadSchema(ctx, client.MinimizeLatency())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, lonely.WaitReady(ctx), context.DeadlineExceeded)
}

func dial(t *testing.T, addr string) *client.Client {
	c, err := client.New(addr, client.WithInsecure(), client.WithToken("sekret"))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestWatchResumesAcrossRestart: a Watch sees every change exactly once although the
// server restarts between two writes.
func TestWatchResumesAcrossRestart(t *testing.T) {
	srv := newTestServer(t, "127.0.0.1:0")
	c := dial(t, srv.addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	from, err := c.WriteSchema(ctx, streamsSchema)
	require.NoError(t, err)

	changes := make(chan client.Change, 100)
	type result struct {
		through string
		err     error
	}
	done := make(chan result, 1)
	go func() {
		through, err := c.Watch(ctx, client.WatchOptions{From: from, ObjectTypes: []string{"doc"}}, func(b client.WatchBatch) error {
			for _, ch := range b.Changes {
				changes <- ch
			}
			return nil
		})
		done <- result{through, err}
	}()

	first, err := client.Touch("doc:1#viewer@user:anne")
	require.NoError(t, err)
	_, err = c.Write(ctx, first)
	require.NoError(t, err)
	ch := <-changes
	require.Equal(t, "doc:1#viewer@user:anne", ch.Tuple.String())
	require.Equal(t, tuples.OpTouch, ch.Op)

	srv.stop()
	srv.start() // the same data, the same address

	second, err := client.Delete("doc:1#viewer@user:anne")
	require.NoError(t, err)
	z, err := c.Write(ctx, second) // retried until the server is back
	require.NoError(t, err)
	ch = <-changes
	require.Equal(t, "doc:1#viewer@user:anne", ch.Tuple.String())
	require.Equal(t, tuples.OpDelete, ch.Op, "the touch was not sent again")
	require.Equal(t, z, ch.Revision)

	cancel()
	r := <-done
	require.ErrorIs(t, r.err, context.Canceled)
	require.NotEqual(t, from, r.through)
	require.Empty(t, changes)

	// A watch the server refuses ends at once with the server's error.
	_, err = c.Watch(context.Background(), client.WatchOptions{From: "bogus"}, func(client.WatchBatch) error { return nil })
	require.ErrorIs(t, err, tuples.ErrInvalidZookie)
}

// cutProxy forwards loopback TCP connections to target. Once armed with cutAfter(n),
// it closes every connection open through it after n more bytes went from the server
// to the client: a network failure in the middle of a stream.
type cutProxy struct {
	l        net.Listener
	target   string
	mu       sync.Mutex
	conns    []net.Conn
	budget   atomic.Int64 // bytes until the cut; < 0 when not armed
	accepted atomic.Int32
	cuts     atomic.Int32
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutProxy{l: l, target: target}
	p.budget.Store(-1)
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.accepted.Add(1)
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go p.down(in, out)
		}
	}()
	t.Cleanup(func() { l.Close(); p.cut() })
	return p
}

// down copies from the server to the client, cutting when the budget runs out.
func (p *cutProxy) down(in, out net.Conn) {
	defer in.Close()
	buf := make([]byte, 4096)
	for {
		n, err := out.Read(buf)
		if n > 0 {
			if b := p.budget.Load(); b >= 0 {
				if int64(n) >= b {
					p.budget.Store(-1)
					p.cuts.Add(1)
					p.cut()
					return
				}
				p.budget.Add(-int64(n))
			}
			if _, err := in.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *cutProxy) cutAfter(n int64) { p.budget.Store(n) }

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestImportExportRead: Import writes every tuple; an Export and a Read cut
// mid-stream resume after the last message received, and every tuple comes once, in
// order.
func TestImportExportRead(t *testing.T) {
	srv := newTestServer(t, "127.0.0.1:0")
	proxy := newCutProxy(t, srv.addr)
	c := dial(t, proxy.l.Addr().String())
	ctx := context.Background()
	_, err := c.WriteSchema(ctx, streamsSchema)
	require.NoError(t, err)

	var want []string
	for i := range 5000 {
		want = append(want, fmt.Sprintf("doc:d%05d#viewer@user:u%d", i, i%7))
	}
	n, z, err := c.Import(ctx, func(yield func(tuples.Tuple) bool) {
		for _, s := range want {
			tp, err := tuples.ParseTuple(s)
			require.NoError(t, err)
			if !yield(tp) {
				return
			}
		}
	})
	require.NoError(t, err)
	require.EqualValues(t, 5000, n)
	require.NotEmpty(t, z)

	var got []string
	proxy.cutAfter(30 << 10) // the export is ~200 KiB
	at, err := c.Export(ctx, client.ExportOptions{At: z}, func(batch []tuples.Tuple, cursor string) error {
		require.NotEmpty(t, cursor)
		for _, tp := range batch {
			got = append(got, tp.String())
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, z, at)
	require.Equal(t, want, got)
	require.EqualValues(t, 1, proxy.cuts.Load())
	require.GreaterOrEqual(t, proxy.accepted.Load(), int32(2), "the stream resumed on a new connection")

	proxy.cutAfter(30 << 10)
	page, err := c.Read(ctx, &relatav1.TupleFilter{ObjectType: "doc"}, client.AtExactSnapshot(z), "", 4500)
	require.NoError(t, err)
	require.EqualValues(t, 2, proxy.cuts.Load())
	got = got[:0]
	for _, tp := range page.Tuples {
		got = append(got, tp.String())
	}
	require.Equal(t, want[:4500], got)
	require.NotEmpty(t, page.Cursor)
	rest, err := c.Read(ctx, &relatav1.TupleFilter{ObjectType: "doc"}, client.FullyConsistent(), page.Cursor, 0)
	require.NoError(t, err)
	require.Len(t, rest.Tuples, 500)

	proxy.cutAfter(4 << 10) // the lookup is ~15 KiB
	docs, _, err := c.LookupResources(ctx, "doc", "view", "user:u3", client.AtExactSnapshot(z))
	require.NoError(t, err)
	require.EqualValues(t, 3, proxy.cuts.Load())
	var wantDocs []string
	for i := 3; i < 5000; i += 7 {
		wantDocs = append(wantDocs, fmt.Sprintf("doc:d%05d", i))
	}
	require.Equal(t, wantDocs, docs)

	// The caller's function ends an export with its error, not retried.
	stop := errors.New("enough")
	_, err = c.Export(ctx, client.ExportOptions{}, func([]tuples.Tuple, string) error { return stop })
	require.ErrorIs(t, err, stop)

	// An Import the server refuses writes nothing and says why.
	bad, err := tuples.ParseTuple("doc:x#nope@user:anne")
	require.NoError(t, err)
	_, _, err = c.Import(ctx, slices.Values([]tuples.Tuple{bad}))
	require.ErrorIs(t, err, client.ErrNotFound)
}

// TestWatchResumesAfterCut: a Watch whose connection is cut reconnects from the last
// revision it saw: the change before the cut is not sent again, the one after is.
func TestWatchResumesAfterCut(t *testing.T) {
	srv := newTestServer(t, "127.0.0.1:0")
	proxy := newCutProxy(t, srv.addr)
	watcher := dial(t, proxy.l.Addr().String())
	writer := dial(t, srv.addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	from, err := writer.WriteSchema(ctx, streamsSchema)
	require.NoError(t, err)

	changes := make(chan client.Change, 100)
	done := make(chan error, 1)
	go func() {
		_, err := watcher.Watch(ctx, client.WatchOptions{From: from}, func(b client.WatchBatch) error {
			for _, ch := range b.Changes {
				changes <- ch
			}
			return nil
		})
		done <- err
	}()
	for i, tuple := range []string{"doc:1#viewer@user:anne", "doc:2#viewer@user:bob"} {
		updates, err := client.Touch(tuple)
		require.NoError(t, err)
		z, err := writer.Write(ctx, updates)
		require.NoError(t, err)
		ch := <-changes
		require.Equal(t, tuple, ch.Tuple.String())
		require.Equal(t, z, ch.Revision)
		if i == 0 {
			proxy.cut()
		}
	}
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	require.Empty(t, changes, "no change came twice")
	require.GreaterOrEqual(t, proxy.accepted.Load(), int32(2), "the watch reconnected")
}
