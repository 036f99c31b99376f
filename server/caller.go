package server

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"sync/atomic"
)

// requestInfo is what the access log needs to know about one request, carried in
// its context from the outermost interceptor (or the REST access log) down: the
// request id (returned to the caller as X-Request-Id) and the id of the key the
// caller authenticated with (never the key itself), which authentication, running
// inside, records with setKeyID.
type requestInfo struct {
	requestID string
	keyID     atomic.Pointer[string]
}

type requestInfoKey struct{}

// requestCtx is a context carrying a requestInfo: what context.WithValue with a
// pointer to a new requestInfo would be, in one allocation instead of two (every
// call makes one).
type requestCtx struct {
	context.Context
	info requestInfo
}

// Value returns the request's info for requestInfoKey and asks the parent otherwise.
func (c *requestCtx) Value(key any) any {
	if _, ok := key.(requestInfoKey); ok {
		return &c.info
	}
	return c.Context.Value(key)
}

// withRequestInfo returns ctx carrying a new requestInfo with requestID.
func withRequestInfo(ctx context.Context, requestID string) context.Context {
	c := &requestCtx{Context: ctx}
	c.info.requestID = requestID
	return c
}

// infoOf returns the requestInfo of ctx, nil outside a request.
func infoOf(ctx context.Context) *requestInfo {
	if c, ok := ctx.(*requestCtx); ok {
		return &c.info
	}
	ri, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return ri
}

// setKeyID records the id of the key the request authenticated with, for the access
// log. It never takes the key itself.
func setKeyID(ctx context.Context, keyID string) {
	if ri := infoOf(ctx); ri != nil {
		ri.keyID.Store(&keyID)
	}
}

// KeyID returns the name of the key the request in ctx authenticated with (Caller.Name;
// "" when the server requires no credentials).
func KeyID(ctx context.Context) string {
	if ri := infoOf(ctx); ri != nil {
		if id := ri.keyID.Load(); id != nil {
			return *id
		}
	}
	return ""
}

// RequestID returns the id of the request in ctx ("" outside a request).
func RequestID(ctx context.Context) string {
	if ri := infoOf(ctx); ri != nil {
		return ri.requestID
	}
	return ""
}

// requestIDHeader is the HTTP header and (lower case) gRPC metadata key of request ids.
const requestIDHeader = "X-Request-Id"

// requestIDKey is requestIDHeader as gRPC metadata keys are: lower case.
const requestIDKey = "x-request-id"

// maxRequestIDLen bounds a caller-supplied request id.
const maxRequestIDLen = 128

// requestIDs makes the ids of requests: the caller's when it is a sane one (1 to 128
// printable ASCII characters without spaces), else a new one of 24 hex digits, a
// prefix drawn at random once per server followed by a counter. Request ids
// correlate log lines and answers; they are unique, not secret, so a request need
// not draw from crypto/rand (a CPU profile of peerbench's c=1 checks put
// crypto/rand.Read at 0.7% of the server's time).
type requestIDs struct {
	prefix [6]byte
	next   atomic.Uint64
}

func newRequestIDs() *requestIDs {
	g := &requestIDs{}
	var b [8]byte
	_, _ = rand.Read(g.prefix[:])
	_, _ = rand.Read(b[:])
	g.next.Store(binary.BigEndian.Uint64(b[:]))
	return g
}

// id returns supplied when it is a sane request id, else a new one.
func (g *requestIDs) id(supplied string) string {
	if n := len(supplied); n > 0 && n <= maxRequestIDLen && strings.IndexFunc(supplied, func(r rune) bool {
		return r <= ' ' || r > '~'
	}) < 0 {
		return supplied
	}
	var b [14]byte // prefix, then the counter's low 48 bits
	copy(b[:6], g.prefix[:])
	binary.BigEndian.PutUint64(b[6:], g.next.Add(1))
	copy(b[6:], b[8:])
	return hex.EncodeToString(b[:12])
}
