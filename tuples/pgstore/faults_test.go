package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/pgstore/pgtest"
	"github.com/relata/relata/tuples/tuplestest"
)

// storeFault reports whether err is what a store may answer while its database is
// down: UNAVAILABLE, or an unknown commit outcome.
func storeFault(err error) bool {
	return errors.Is(err, tuples.ErrUnavailable) || errors.Is(err, tuples.ErrWriteOutcomeUnknown)
}

// TestRestartUnderLoad restarts PostgreSQL while writers and readers run: every
// failure is UNAVAILABLE (or an unknown commit outcome) within the request deadline,
// never another error or a wrong answer, the store recovers by itself once the
// database is back, and every acknowledged write is there.
func TestRestartUnderLoad(t *testing.T) {
	pg := pgtest.StartServer(t)
	ctx := context.Background()
	_, _, err := Migrate(ctx, pg.URL, nil)
	require.NoError(t, err)
	s := openURL(t, pg.URL, &Options{GCInterval: -1, MaxConns: 8, PollInterval: 50 * time.Millisecond})

	const deadline = 5 * time.Second
	var (
		mu      sync.Mutex
		acked   []string
		faults  atomic.Int64
		succ    atomic.Int64
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		counter atomic.Int64
	)
	op := func(f func(ctx context.Context) error) {
		cctx, cancel := context.WithTimeout(ctx, deadline)
		defer cancel()
		start := time.Now()
		err := f(cctx)
		if took := time.Since(start); took > deadline+time.Second {
			t.Errorf("an operation took %s, past its %s deadline", took, deadline)
		}
		switch {
		case err == nil:
			succ.Add(1)
		case storeFault(err):
			faults.Add(1)
		default:
			t.Errorf("not UNAVAILABLE: %v", err)
		}
	}
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				text := fmt.Sprintf("doc:d%d#viewer@user:u", counter.Add(1))
				op(func(ctx context.Context) error {
					_, err := s.Write(ctx, tuples.WriteRequest{Updates: tuplestest.Updates(t, tuples.OpTouch, text)})
					if err == nil {
						mu.Lock()
						acked = append(acked, text)
						mu.Unlock()
					}
					return err
				})
			}
		})
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				op(func(ctx context.Context) error {
					head, err := s.HeadRevision(ctx)
					if err != nil {
						return err
					}
					r, err := s.ReaderAt(ctx, head)
					if err != nil {
						return err
					}
					n := 0
					for _, err := range r.Read(ctx, tuples.Filter{ObjectType: "doc"}, nil) {
						if err != nil {
							return err
						}
						n++
					}
					if n != int(head) { // every write touches one new tuple
						t.Errorf("%d tuples at revision %d", n, head)
					}
					return nil
				})
			}
		})
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for start := time.Now(); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Since(start) > 2*time.Minute {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	nacked := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	waitFor("writes before the restart", func() bool { return nacked() >= 10 })
	pg.Stop()
	waitFor("UNAVAILABLE while the database is down", func() bool { return faults.Load() > 0 })
	before, beforeOps := nacked(), succ.Load()
	pg.Start()
	waitFor("the store to recover by itself", func() bool { return nacked() >= before+10 && succ.Load() > beforeOps+20 })
	close(stop)
	wg.Wait()

	head, err := s.HeadRevision(ctx)
	require.NoError(t, err)
	got := map[string]bool{}
	for _, s := range tuplestest.Strings(t, tuplestest.Reader(t, s, head).Read(ctx, tuples.Filter{}, nil)) {
		got[s] = true
	}
	for _, a := range acked {
		require.True(t, got[a], "acknowledged write %s lost", a)
	}
	t.Logf("%d operations succeeded, %d failed UNAVAILABLE, %d writes acknowledged", succ.Load(), faults.Load(), len(acked))
}

// TestCommitOutcomeUnknown cuts the connection right after the COMMIT of a write
// leaves the store: the write is reported as WRITE_OUTCOME_UNKNOWN, never as success
// or a plain failure, and the store works on afterwards.
func TestCommitOutcomeUnknown(t *testing.T) {
	s0, dbURL := openTest(t, nil)
	ctx := context.Background()
	p := newCuttingProxy(t, dbURL)
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	u.Host = p.addr
	s := openURL(t, u.String(), nil)
	tuplestest.Write(t, s, tuples.OpTouch, "doc:1#viewer@user:a")

	p.armed.Store(true)
	_, err = s.Write(ctx, tuples.WriteRequest{Updates: tuplestest.Updates(t, tuples.OpTouch, "doc:2#viewer@user:a")})
	require.ErrorIs(t, err, tuples.ErrWriteOutcomeUnknown)
	require.True(t, p.cut.Load(), "the proxy cut a COMMIT")

	rev := tuplestest.Write(t, s, tuples.OpTouch, "doc:3#viewer@user:a")
	require.True(t, tuplestest.Contains(t, tuplestest.Reader(t, s0, rev), "doc:3#viewer@user:a"))
}

// cuttingProxy forwards TCP to a PostgreSQL server; when armed, it closes both sides
// of a connection right after forwarding a simple-query COMMIT (as pgx sends it).
type cuttingProxy struct {
	addr  string
	armed atomic.Bool
	cut   atomic.Bool
}

var commitMsg = append([]byte{'Q', 0, 0, 0, 11}, "commit\x00"...)

func newCuttingProxy(t *testing.T, target string) *cuttingProxy {
	u, err := url.Parse(target)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cuttingProxy{addr: l.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = l.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.serve(c, u.Host) })
		}
	})
	return p
}

func (p *cuttingProxy) serve(c net.Conn, target string) {
	defer c.Close()
	d, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer d.Close()
	var severed atomic.Bool // set before a COMMIT goes out: no answer comes back
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, err := d.Read(buf)
			if severed.Load() {
				return
			}
			if n > 0 {
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			cut := p.armed.Load() && bytes.Contains(buf[:n], commitMsg) && p.armed.CompareAndSwap(true, false)
			if cut {
				severed.Store(true)
			}
			if _, werr := d.Write(buf[:n]); werr != nil {
				break
			}
			if cut {
				p.cut.Store(true)
				break // the COMMIT reached the server; its answer never reaches the client
			}
		}
		if err != nil {
			break
		}
	}
	_ = c.Close()
	_ = d.Close()
	<-done
}
