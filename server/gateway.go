package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"

	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/server/writes"
	"github.com/relata/relata/tuples"
)

// httpHandler builds the REST side: the grpc-gateway mux (registered on conn, a
// loopback connection to our own gRPC server, because the in-process registration
// cannot stream), GET /healthz, GET /openapi.json and, when Config.Console is set,
// the web console at GET /ui/ (404 there otherwise, token or not).
//
// JSON is printed as MarshalJSON prints it (lowerCamelCase names, enums as requests
// spell them, empty fields left out except the answers' "allowed":false and counts),
// and a request with unknown fields is rejected with 400. Streams are
// newline-delimited JSON, one response message a line, as README.md shows them
// (`{"object":…,"lookedUpAt":…,"cursor":…}`, not grpc-gateway's {"result":{…}}
// envelope); an error mid-stream is an {"error":{…}} line. gRPC codes map to HTTP statuses as grpc-gateway does
// (INVALID_ARGUMENT 400, UNAUTHENTICATED 401, NOT_FOUND 404, ALREADY_EXISTS 409,
// RESOURCE_EXHAUSTED 429), except FAILED_PRECONDITION, which is 412 on unary and
// streaming routes alike. A body that does not decode is INVALID_ARGUMENT with
// reason INVALID_REQUEST naming the JSON path of the offending field (see
// decodeBody), and a method other than POST on an API route is 405.
func (s *Server) httpHandler(ctx context.Context, conn *grpc.ClientConn) (http.Handler, error) {
	gw := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &compactJSONPb{runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}}),
		runtime.WithErrorHandler(httpErrorHandler),
		runtime.WithStreamErrorHandler(streamErrorHandler),
		runtime.WithRoutingErrorHandler(routingErrorHandler),
		runtime.WithMetadata(s.gatewayMetadata),
	)
	for name, register := range map[string]func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		"PermissionService":   relatav1.RegisterPermissionServiceHandler,
		"RelationshipService": relatav1.RegisterRelationshipServiceHandler,
		"SchemaService":       relatav1.RegisterSchemaServiceHandler,
		"AdminService":        relatav1.RegisterAdminServiceHandler,
	} {
		if err := register(ctx, gw, conn); err != nil {
			return nil, fmt.Errorf("registering the %s gateway: %w", name, err)
		}
	}
	limit := int64(s.cfg.MaxMessageBytes)
	mux := http.NewServeMux()
	for pattern, h := range s.plainRoutes(gw) {
		mux.Handle(pattern, h)
	}
	if s.cfg.Console != nil {
		mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	} else {
		mux.Handle("/ui/", http.NotFoundHandler())
		mux.Handle("/ui", http.NotFoundHandler())
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// The token first, so that a caller without it learns nothing from the
		// answers about the body (the gRPC interceptor checks it again, and the
		// scope).
		r, ok := s.authHTTP(w, r, restFail(gw, w, r))
		if !ok {
			return
		}
		if r.ContentLength > limit {
			_, m := runtime.MarshalerForRequest(gw, r)
			runtime.HTTPError(r.Context(), gw, m, w, r, newStatus(codes.InvalidArgument, relatav1.ErrorReason_LIMIT_EXCEEDED,
				bodyTooLarge(r.URL.Path, fmt.Sprintf(" of %d bytes", r.ContentLength), limit).Error(),
				map[string]string{"field": "body"}))
			return
		}
		st := &restState{path: r.URL.Path}
		r = r.WithContext(context.WithValue(r.Context(), restStateKey{}, st))
		r.Body = &requestBody{ReadCloser: http.MaxBytesReader(w, r.Body, limit), state: st,
			read: bodyDeadline(w, s.cfg.HTTPReadTimeout)}
		sw := &streamStatusWriter{ResponseWriter: w, state: st}
		gw.ServeHTTP(sw, r)
		if !sw.wrote {
			// Only a stream with no message ends without a word from the gateway:
			// it is an empty newline-delimited JSON body, labelled as such.
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.WriteHeader(http.StatusOK)
		}
	})
	return s.accessLog(mux), nil
}

// plainRoutes returns the routes the server serves beside the gateway's, by
// http.ServeMux pattern: the health checks, the OpenAPI document, the metrics and,
// when Config.Console is set, the web console. The OpenAPI document describes each
// (scripts/openapipatch adds them), and a test holds the two together.
func (s *Server) plainRoutes(gw *runtime.ServeMux) map[string]http.Handler {
	metrics := s.metrics.handler(slog.NewLogLogger(s.log.Handler(), slog.LevelWarn))
	routes := map[string]http.Handler{
		"GET /healthz": http.HandlerFunc(s.serveHealthz),
		"GET /readyz":  http.HandlerFunc(s.serveReadyz),
		"GET /openapi.json": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, ok := s.authHTTP(w, r, restFail(gw, w, r)); !ok {
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(relatav1.OpenAPI())
		}),
		"GET /metrics": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, ok := s.authHTTP(w, r, restFail(gw, w, r)); !ok {
				return
			}
			metrics.ServeHTTP(w, r)
		}),
	}
	if s.cfg.Console != nil {
		routes["GET /ui/"] = s.cfg.Console
	}
	return routes
}

// restFail returns a function that answers r with err as the gateway answers errors.
func restFail(gw *runtime.ServeMux, w http.ResponseWriter, r *http.Request) func(error) {
	return func(err error) {
		_, m := runtime.MarshalerForRequest(gw, r)
		runtime.HTTPError(r.Context(), gw, m, w, r, err)
	}
}

// serveHealthz answers 200 {"status":"SERVING"} while the store answers, else 503.
func (s *Server) serveHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if _, err := s.cfg.Store.HeadRevision(r.Context()); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "NOT_SERVING", "error": err.Error()})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "SERVING"})
}

// restState is what one REST request's hooks tell each other: the body decoder
// records why the body did not decode, and the stream error handler records the
// code a stream failed with, for the response writer.
type restState struct {
	path       string     // the route, for error messages
	bodyErr    error      // set by (*compactJSONPb).NewDecoder
	streamCode codes.Code // set by streamErrorHandler; OK until a stream fails
}

type restStateKey struct{}

// requestBody is a REST request body that carries its request's restState to the
// decoder, which the gateway hands only the body.
type requestBody struct {
	io.ReadCloser
	state *restState
	read  func() // called once the body is read to its end (lifts its read deadline)
	done  bool
}

func (b *requestBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.done {
		b.done = true
		b.read()
	}
	return n, err
}

// httpErrorHandler is grpc-gateway's default error handler with FAILED_PRECONDITION
// answered as 412 Precondition Failed instead of 400, and a body that did not decode
// reported as the decoder classified it (INVALID_REQUEST naming the field, or
// LIMIT_EXCEEDED) instead of a bare message.
func httpErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if rb, ok := r.Body.(*requestBody); ok && rb.state.bodyErr != nil && status.Code(err) == codes.InvalidArgument {
		code, reason, md := classify(rb.state.bodyErr)
		err = newStatus(code, reason, rb.state.bodyErr.Error(), md)
	}
	if st, ok := status.FromError(err); ok {
		err = restFieldPaths(st).Err()
	}
	switch {
	case status.Code(err) == codes.FailedPrecondition:
		w = &statusOverride{ResponseWriter: w, code: http.StatusPreconditionFailed}
	case status.Code(err) == codes.ResourceExhausted && errorReason(err) == relatav1.ErrorReason_STORAGE_FULL.String():
		w = &statusOverride{ResponseWriter: w, code: http.StatusInsufficientStorage}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// streamErrorHandler is grpc-gateway's default stream error handler that also records
// the code in the request's restState, so that streamStatusWriter can answer
// FAILED_PRECONDITION with 412 as unary routes do.
func streamErrorHandler(ctx context.Context, err error) *status.Status {
	st := restFieldPaths(runtime.DefaultStreamErrorHandler(ctx, err))
	if rs, ok := ctx.Value(restStateKey{}).(*restState); ok {
		rs.streamCode = st.Code()
	}
	return st
}

// streamStatusWriter answers 412 instead of the gateway's 400 when a stream failed
// with FAILED_PRECONDITION before its first message, and records whether anything
// was written.
type streamStatusWriter struct {
	http.ResponseWriter
	state *restState
	wrote bool
}

func (w *streamStatusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *streamStatusWriter) WriteHeader(code int) {
	w.wrote = true
	if code == http.StatusBadRequest && w.state.streamCode == codes.FailedPrecondition {
		code = http.StatusPreconditionFailed
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *streamStatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// routingErrorHandler answers a method other than POST on an API route with 405
// Method Not Allowed and an Allow header (grpc-gateway answers 501), and leaves the
// other routing errors (404) to grpc-gateway.
func routingErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	if httpStatus != http.StatusMethodNotAllowed {
		runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, httpStatus)
		return
	}
	w.Header().Set("Allow", http.MethodPost)
	err := newStatus(codes.Unimplemented, relatav1.ErrorReason_METHOD_NOT_ALLOWED,
		fmt.Sprintf("%s %s: method not allowed; the API takes POST", r.Method, r.URL.Path), nil)
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, &statusOverride{ResponseWriter: w, code: http.StatusMethodNotAllowed}, r, err)
}

// statusOverride replaces the status code written through it.
type statusOverride struct {
	http.ResponseWriter
	code int
}

func (w *statusOverride) WriteHeader(int) { w.ResponseWriter.WriteHeader(w.code) }

func (w *statusOverride) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// compactJSONPb is the gateway's JSONPb marshaler with its output compacted: protojson
// varies its white space from build to build on purpose, and REST callers deserve
// stable bytes.
type compactJSONPb struct {
	runtime.JSONPb
}

// StreamContentType is the media type of a streamed response: newline-delimited JSON,
// one response message a line.
func (j *compactJSONPb) StreamContentType(any) string { return "application/x-ndjson" }

// Marshal marshals v as MarshalJSON does. A stream chunk, which the gateway hands over
// as {"result": message}, is marshalled as the bare message.
func (j *compactJSONPb) Marshal(v any) ([]byte, error) {
	if chunk, ok := v.(map[string]any); ok && len(chunk) == 1 {
		if m, ok := chunk["result"].(proto.Message); ok {
			v = m
		}
	}
	if m, ok := v.(proto.Message); ok {
		return MarshalJSON(m)
	}
	b, err := j.JSONPb.Marshal(v)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b, nil
	}
	return buf.Bytes(), nil
}

// NewDecoder returns the decoder of one request message from r: it reads the whole
// body (which the REST handler bounds) and unmarshals it with protojson. A body that
// does not decode fails with a *bodyError naming the JSON path of the offending field,
// and one over the size limit with a *limitError; either is recorded in the request's
// restState for httpErrorHandler. An empty body decodes as io.EOF, which the gateway
// takes as an empty request.
func (j *compactJSONPb) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		err := j.decodeBody(r, v)
		var (
			berr *bodyError
			lerr *limitError
		)
		if rb, ok := r.(*requestBody); ok && (errors.As(err, &berr) || errors.As(err, &lerr)) {
			rb.state.bodyErr = err
		}
		return err
	})
}

func (j *compactJSONPb) decodeBody(r io.Reader, v any) error {
	b, err := io.ReadAll(r)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		path := ""
		if rb, ok := r.(*requestBody); ok {
			path = rb.state.path
		}
		return bodyTooLarge(path, "", tooBig.Limit)
	}
	if err != nil {
		return fmt.Errorf("reading the request body: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return io.EOF
	}
	m, ok := v.(proto.Message)
	if !ok {
		return j.JSONPb.Unmarshal(b, v)
	}
	if err := j.UnmarshalOptions.Unmarshal(b, m); err != nil {
		return newBodyError(b, err)
	}
	return nil
}

// bodyTooLarge is the error for a REST body over the size limit. On the routes whose
// body size is bounded by a count (a write's updates, a bulk check's items, a
// schema's bytes) it names that limit, which is usually the one the caller means to
// exceed.
func bodyTooLarge(path, size string, limit int64) error {
	msg := fmt.Sprintf("request body%s is larger than the limit of %d bytes", size, limit)
	switch path {
	case "/v1/tuples/write":
		msg += fmt.Sprintf("; a write takes at most %d updates", tuples.MaxUpdatesPerWrite)
	case "/v1/check/bulk":
		msg += fmt.Sprintf("; a bulk check takes at most %d items", MaxCheckBulkItems)
	case "/v1/schema/write":
		msg += fmt.Sprintf("; a schema is at most %d bytes", writes.MaxSchemaBytes)
	}
	return &limitError{field: "body", msg: msg}
}

// bodyError is a REST request body that does not decode into the request message:
// malformed JSON, an unknown field, a value of the wrong kind, an unknown enum name.
type bodyError struct {
	field string // JSON path of the offending field as the caller spelled it, or "body"
	value string // the offending scalar value, if any
	msg   string
}

func (e *bodyError) Error() string {
	if e.field == "body" {
		return "invalid request body: " + e.msg
	}
	return "invalid request body: " + e.field + ": " + e.msg
}

// protojsonPos matches the position and reason of a protojson error,
// "proto: (line 1:26): invalid value for enum field operation: \"BOGUS\"".
var protojsonPos = regexp.MustCompile(`\(line (\d+):(\d+)\): (.*)$`)

// newBodyError locates the protojson error err in body.
func newBodyError(body []byte, err error) *bodyError {
	msg := err.Error()
	// protojson prefixes "proto:" and a space or a no-break space, at random.
	if rest, ok := strings.CutPrefix(msg, "proto:"); ok {
		msg = strings.TrimLeft(rest, " \u00a0")
	}
	m := protojsonPos.FindStringSubmatch(msg)
	if m == nil {
		return &bodyError{field: "body", msg: "malformed JSON: " + msg}
	}
	line, _ := strconv.Atoi(m[1])
	col, _ := strconv.Atoi(m[2])
	path, value := jsonPathAt(body, offsetOf(body, line, col))
	if path == "body" {
		return &bodyError{field: path, msg: "malformed JSON or not an object: " + m[3]}
	}
	return &bodyError{field: path, value: value, msg: m[3]}
}

// offsetOf returns the byte offset of line:column (both from 1, the column counted in
// runes as protojson counts it) in b.
func offsetOf(b []byte, line, col int) int {
	off := 0
	for ; line > 1; line-- {
		i := bytes.IndexByte(b[off:], '\n')
		if i < 0 {
			return len(b)
		}
		off += i + 1
	}
	for ; col > 1 && off < len(b); col-- {
		_, n := utf8.DecodeRune(b[off:])
		off += n
	}
	return off
}

// jsonPathAt returns the path ("updates[0].operation") of the member name or value of
// the JSON text b whose token covers byte offset off, and the value when it is a
// scalar. It returns "body" for the top level or an offset it cannot place.
func jsonPathAt(b []byte, off int) (path, value string) {
	type frame struct {
		array   bool
		wantKey bool   // object: the next token is a member name
		key     string // object: the current member's name
		index   int    // array: the current element's index
	}
	var stack []*frame
	pathOf := func() string {
		var sb strings.Builder
		for _, f := range stack {
			if f.array {
				fmt.Fprintf(&sb, "[%d]", f.index)
				continue
			}
			if sb.Len() > 0 {
				sb.WriteByte('.')
			}
			sb.WriteString(f.key)
		}
		if sb.Len() == 0 {
			return "body"
		}
		return sb.String()
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return pathOf(), ""
		}
		covers := int(dec.InputOffset()) > off
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && !stack[len(stack)-1].array {
				stack[len(stack)-1].wantKey = true
			}
			continue
		}
		if top != nil && top.wantKey {
			top.key, top.wantKey = fmt.Sprint(tok), false
			if covers {
				return pathOf(), ""
			}
			continue
		}
		if top != nil && top.array {
			top.index++
		}
		if d, ok := tok.(json.Delim); ok {
			if covers {
				return pathOf(), ""
			}
			stack = append(stack, &frame{array: d == '[', wantKey: d == '{', index: -1})
			continue
		}
		if covers {
			return pathOf(), fmt.Sprint(tok)
		}
		if top != nil && !top.array {
			top.wantKey = true
		}
	}
}

// restFieldPaths writes the request field an error names (its ErrorInfo "field" and
// the same path in its message) in the request's JSON spelling, the proto's
// lowerCamelCase (filter.objectType), as a REST caller wrote it; gRPC callers keep
// the proto names (filter.object_type).
func restFieldPaths(st *status.Status) *status.Status {
	details := st.Details()
	for i, d := range details {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok {
			continue
		}
		field := info.GetMetadata()["field"]
		json := jsonFieldPath(field)
		if json == field {
			return st
		}
		info = proto.Clone(info).(*errdetails.ErrorInfo)
		info.Metadata["field"] = json
		out := status.New(st.Code(), strings.ReplaceAll(st.Message(), field, json))
		rebuilt := make([]protoadapt.MessageV1, 0, len(details))
		for j, d := range details {
			if j == i {
				rebuilt = append(rebuilt, info)
			} else if m, ok := d.(protoadapt.MessageV1); ok {
				rebuilt = append(rebuilt, m)
			}
		}
		if withDetails, err := out.WithDetails(rebuilt...); err == nil {
			return withDetails
		}
		return st
	}
	return st
}

// jsonFieldPath returns a proto field path (updates[1].tuple.object_type) with each
// field name in its JSON spelling (updates[1].tuple.objectType).
func jsonFieldPath(path string) string {
	if !strings.Contains(path, "_") {
		return path
	}
	segs := strings.Split(path, ".")
	for i, seg := range segs {
		name, index, indexed := strings.Cut(seg, "[")
		var b strings.Builder
		for j, part := range strings.Split(name, "_") {
			if j > 0 && part != "" {
				part = strings.ToUpper(part[:1]) + part[1:]
			}
			b.WriteString(part)
		}
		if indexed {
			b.WriteString("[" + index)
		}
		segs[i] = b.String()
	}
	return strings.Join(segs, ".")
}
