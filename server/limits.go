package server

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Connection limits (issue 16): idle and slow connections must not pile up until the
// process runs out of file descriptors and stops accepting, health checks included.
//
//   - REST: idle keep-alive connections close after Config.HTTPIdleTimeout (60 s),
//     headers must arrive within 10 s and a request body within
//     Config.HTTPReadTimeout (30 s), set per request so that long responses (Watch)
//     are not cut.
//   - gRPC: connections idle for Config.GRPCMaxConnectionIdle (5 min) get GOAWAY;
//     clients may ping at most every grpcMinPingInterval.
//   - Both listeners share a cap on open connections, Config.MaxConnections, by
//     default three quarters of the descriptor limit less 64 (the store and the
//     process keep the rest). At the cap, a new connection (REST or gRPC, including
//     the REST gateway's own loopback connection) evicts the REST connection idle
//     the longest (keep-alive, or never sent a request); when none is idle, the new
//     connection is closed at once. Refusals are logged at most once a second.

// Defaults of the connection limits.
const (
	DefaultHTTPIdleTimeout       = 60 * time.Second
	DefaultHTTPReadTimeout       = 30 * time.Second
	DefaultGRPCMaxConnectionIdle = 5 * time.Minute
	grpcMinPingInterval          = 10 * time.Second
	httpReadHeaderTimeout        = 10 * time.Second
)

// defaultMaxConnections derives the connection cap from the descriptor limit.
func defaultMaxConnections() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return 1024
	}
	n := int64(rl.Cur)*3/4 - 64
	return int(max(min(n, 1<<20), 16))
}

// grpcKeepalive returns the gRPC server options of the connection limits.
func (c Config) grpcKeepalive() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: grpcMinPingInterval, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: c.GRPCMaxConnectionIdle, Time: 2 * time.Hour, Timeout: 20 * time.Second}),
	}
}

// connLimiter counts the open connections of both listeners against one cap.
type connLimiter struct {
	max  int64
	open atomic.Int64
	log  *slog.Logger

	mu      sync.Mutex
	idle    map[net.Conn]time.Time // REST connections idle (or new) since
	lastLog time.Time
	refused int // since the last log line
}

func newConnLimiter(max int, log *slog.Logger) *connLimiter {
	return &connLimiter{max: int64(max), log: log, idle: map[net.Conn]time.Time{}}
}

// limitedListener is a listener whose connections count against a connLimiter.
type limitedListener struct {
	net.Listener
	l     *connLimiter
	evict bool // may evict an idle REST connection to admit a new one
}

func (ln *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if ln.l.admit(ln.evict) {
			return &countedConn{Conn: c, l: ln.l}, nil
		}
		_ = c.Close()
		ln.l.noteRefused(c.RemoteAddr())
	}
}

// admit reserves a slot for a new connection, evicting the longest-idle REST
// connection at the cap when evict is set. It reports whether the connection may stay.
func (l *connLimiter) admit(evict bool) bool {
	if l.open.Add(1) <= l.max {
		return true
	}
	if evict && l.evictIdle() {
		return true // the evicted connection's slot is ours once it closes; briefly over
	}
	l.open.Add(-1)
	return false
}

// evictIdle closes the REST connection idle the longest, if any.
func (l *connLimiter) evictIdle() bool {
	l.mu.Lock()
	var oldest net.Conn
	var since time.Time
	for c, t := range l.idle {
		if oldest == nil || t.Before(since) {
			oldest, since = c, t
		}
	}
	if oldest != nil {
		delete(l.idle, oldest)
	}
	l.mu.Unlock()
	if oldest == nil {
		return false
	}
	_ = oldest.Close()
	return true
}

func (l *connLimiter) noteRefused(addr net.Addr) {
	l.mu.Lock()
	l.refused++
	now := time.Now()
	if now.Sub(l.lastLog) < time.Second {
		l.mu.Unlock()
		return
	}
	n := l.refused
	l.refused, l.lastLog = 0, now
	l.mu.Unlock()
	l.log.Warn("relata: connection refused: too many open connections", "max", l.max, "refused", n, "last_remote", addr.String())
}

// connState tracks which REST connections are idle, for eviction (http.Server.ConnState).
func (l *connLimiter) connState(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch st {
	case http.StateNew, http.StateIdle:
		l.idle[c] = time.Now()
	default:
		delete(l.idle, c)
	}
}

// countedConn releases its slot once when closed.
type countedConn struct {
	net.Conn
	l    *connLimiter
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}

// bodyDeadline bounds how long reading a REST request body may take, and lifts the
// bound once the body is read, so that a streamed response is not cut.
func bodyDeadline(w http.ResponseWriter, timeout time.Duration) (done func()) {
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return func() {}
	}
	return func() { _ = rc.SetReadDeadline(time.Time{}) }
}
