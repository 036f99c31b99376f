package server

import (
	"context"
	"crypto/rand"
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

// withRequestInfo returns ctx carrying a new requestInfo with requestID.
func withRequestInfo(ctx context.Context, requestID string) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, &requestInfo{requestID: requestID})
}

// infoOf returns the requestInfo of ctx, nil outside a request.
func infoOf(ctx context.Context) *requestInfo {
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

// maxRequestIDLen bounds a caller-supplied request id.
const maxRequestIDLen = 128

// requestID returns the caller's id when it is a sane one (1 to 128 printable ASCII
// characters without spaces), else a new random one.
func requestID(supplied string) string {
	if n := len(supplied); n > 0 && n <= maxRequestIDLen && strings.IndexFunc(supplied, func(r rune) bool {
		return r <= ' ' || r > '~'
	}) < 0 {
		return supplied
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
