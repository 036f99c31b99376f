package server

import (
	"context"
	"iter"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/relata/relata/check"
	"github.com/relata/relata/tuples"
)

// Tracing: with Config.TracerProvider set, every RPC is a server span
// whose parent is the caller's W3C trace context (the traceparent and tracestate
// gRPC metadata; REST requests' headers of those names reach it through the
// gateway), a check runs in a "relata.check" span with what the engine did, and each
// store read under a recorded span is a "relata.store.*" span. Without a provider
// no interceptor is installed and readers are not wrapped: tracing off costs nothing.
// The engine knows nothing of OpenTelemetry: its CheckStats fill the attributes.

// tracerName is the instrumentation scope of Relata's spans.
const tracerName = "github.com/relata/relata/server"

// Span attribute keys.
const (
	attrPermission = attribute.Key("relata.permission")
	attrObjectType = attribute.Key("relata.object_type")
	attrRelation   = attribute.Key("relata.relation")
	attrRevision   = attribute.Key("relata.revision")
	attrAllowed    = attribute.Key("relata.allowed")
	attrCond       = attribute.Key("relata.conditional")
	attrDispatches = attribute.Key("relata.dispatches")
	attrReads      = attribute.Key("relata.reads")
	attrCacheHits  = attribute.Key("relata.cache_hits")
	attrCacheHit   = attribute.Key("relata.cache_hit")
	attrDepth      = attribute.Key("relata.depth")
	attrTuples     = attribute.Key("relata.tuples")
)

// traceContext is the W3C Trace Context propagator (traceparent, tracestate).
var traceContext = propagation.TraceContext{}

// mdCarrier adapts gRPC metadata to propagation.TextMapCarrier.
type mdCarrier metadata.MD

func (c mdCarrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c mdCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

func (c mdCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// startRPC starts the server span of an RPC, child of the trace context the caller
// sent in metadata.
func (s *Server) startRPC(ctx context.Context, method string) (context.Context, trace.Span) {
	md, _ := metadata.FromIncomingContext(ctx)
	ctx = traceContext.Extract(ctx, mdCarrier(md))
	service, name := splitMethod(method)
	return s.tracer.Start(ctx, service+"/"+name, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("rpc.system", "grpc"), attribute.String("rpc.service", service), attribute.String("rpc.method", name)))
}

// endRPC records an RPC's outcome on its span and ends it.
func endRPC(span trace.Span, err error) {
	code := status.Code(err)
	span.SetAttributes(attribute.Int("rpc.grpc.status_code", int(code)))
	if err != nil {
		span.SetStatus(otelcodes.Error, code.String())
	}
	span.End()
}

// splitMethod splits "/relata.v1.PermissionService/Check" into service and method.
func splitMethod(full string) (string, string) {
	if len(full) > 0 && full[0] == '/' {
		full = full[1:]
	}
	for i := len(full) - 1; i >= 0; i-- {
		if full[i] == '/' {
			return full[:i], full[i+1:]
		}
	}
	return "", full
}

func (s *Server) traceUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, span := s.startRPC(ctx, info.FullMethod)
	resp, err := handler(ctx, req)
	endRPC(span, err)
	return resp, err
}

func (s *Server) traceStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, span := s.startRPC(ss.Context(), info.FullMethod)
	err := handler(srv, &ctxStream{ServerStream: ss, ctx: ctx})
	endRPC(span, err)
	return err
}

// check runs the engine's Check, in a "relata.check" span when the request is traced.
func (s *Server) check(ctx context.Context, r tuples.Reader, req check.CheckRequest) (check.CheckResult, error) {
	if s.tracer == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return s.cfg.Engine.Check(ctx, r, req)
	}
	ctx, span := s.tracer.Start(ctx, "relata.check", trace.WithAttributes(
		attrObjectType.String(req.Object.Type), attrPermission.String(req.Permission),
		attribute.String("relata.subject_type", req.Subject.Object.Type), attrRevision.Int64(int64(r.Revision()))))
	defer span.End()
	res, err := s.cfg.Engine.Check(ctx, r, req)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(otelcodes.Error, err.Error())
		return res, err
	}
	st := res.Stats
	span.SetAttributes(attrAllowed.Bool(res.Allowed), attrCond.Bool(res.Conditional),
		attrDispatches.Int64(st.Dispatches), attrReads.Int64(st.Reads), attrCacheHits.Int64(st.CacheHits),
		attrCacheHit.Bool(st.Reads == 0 && st.CacheHits > 0), attrDepth.Int64(st.Depth))
	return res, err
}

// traced wraps r so that its reads are spans, when ctx's span is recorded.
func (s *Server) traced(ctx context.Context, r tuples.Reader) tuples.Reader {
	if s.tracer == nil || r == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return r
	}
	return &tracedReader{r: r, tracer: s.tracer}
}

// tracedReader is a tuples.Reader whose reads are "relata.store.*" spans. It has
// every optional capability of a Reader (ScopeTracker, ObjectsAfterReader, Counter),
// forwarding to r's when r has it and answering as a reader without it otherwise
// (scopes unknown, ObjectsAfter by skipping, a counting scan).
type tracedReader struct {
	r      tuples.Reader
	tracer trace.Tracer
}

var (
	_ tuples.ScopeTracker       = (*tracedReader)(nil)
	_ tuples.ObjectsAfterReader = (*tracedReader)(nil)
	_ tuples.Counter            = (*tracedReader)(nil)
)

func (t *tracedReader) ForwardScope(object tuples.ObjectRef, relation string) tuples.Scope {
	if st, ok := t.r.(tuples.ScopeTracker); ok {
		return st.ForwardScope(object, relation)
	}
	return 0
}

func (t *tracedReader) ReverseScope(subject tuples.SubjectRef, objectType, relation string) tuples.Scope {
	if st, ok := t.r.(tuples.ScopeTracker); ok {
		return st.ReverseScope(subject, objectType, relation)
	}
	return 0
}

func (t *tracedReader) UnchangedSince(scope tuples.Scope, since tuples.Revision) bool {
	if st, ok := t.r.(tuples.ScopeTracker); ok {
		return st.UnchangedSince(scope, since)
	}
	return false
}

func (t *tracedReader) ObjectsAfter(ctx context.Context, subject tuples.SubjectRef, objectType, relation, after string) iter.Seq2[tuples.Tuple, error] {
	attrs := []attribute.KeyValue{attrObjectType.String(objectType), attrRelation.String(relation)}
	if ar, ok := t.r.(tuples.ObjectsAfterReader); ok {
		return t.seq(ctx, "objects", ar.ObjectsAfter(ctx, subject, objectType, relation, after), attrs...)
	}
	inner := t.r.Objects(ctx, subject, objectType, relation)
	return t.seq(ctx, "objects", func(yield func(tuples.Tuple, error) bool) {
		for tp, err := range inner {
			if err == nil && tp.Object.ID <= after {
				continue
			}
			if !yield(tp, err) {
				return
			}
		}
	}, attrs...)
}

func (t *tracedReader) CountMatching(ctx context.Context, f tuples.Filter) (int64, error) {
	span := t.start(ctx, "count", attrObjectType.String(f.ObjectType), attrRelation.String(f.Relation))
	var n int64
	var err error
	if c, ok := t.r.(tuples.Counter); ok {
		n, err = c.CountMatching(ctx, f)
	} else {
		for _, e := range t.r.Read(ctx, f, nil) {
			if e != nil {
				err = e
				break
			}
			n++
		}
	}
	endRead(span, int(n), err)
	return n, err
}

func (t *tracedReader) start(ctx context.Context, name string, attrs ...attribute.KeyValue) trace.Span {
	_, span := t.tracer.Start(ctx, "relata.store."+name, trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(append(attrs, attrRevision.Int64(int64(t.r.Revision())))...))
	return span
}

func endRead(span trace.Span, n int, err error) {
	span.SetAttributes(attrTuples.Int(n))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(otelcodes.Error, err.Error())
	}
	span.End()
}

// seq yields inner's tuples inside a span that ends with the iteration.
func (t *tracedReader) seq(ctx context.Context, name string, inner iter.Seq2[tuples.Tuple, error], attrs ...attribute.KeyValue) iter.Seq2[tuples.Tuple, error] {
	return func(yield func(tuples.Tuple, error) bool) {
		span := t.start(ctx, name, attrs...)
		n := 0
		var ferr error
		defer func() { endRead(span, n, ferr) }()
		for tp, err := range inner {
			if err != nil {
				ferr = err
			} else {
				n++
			}
			if !yield(tp, err) {
				return
			}
		}
	}
}

func (t *tracedReader) Revision() tuples.Revision { return t.r.Revision() }

func (t *tracedReader) Contains(ctx context.Context, tp tuples.Tuple) (bool, error) {
	span := t.start(ctx, "contains", attrObjectType.String(tp.Object.Type), attrRelation.String(tp.Relation))
	ok, err := t.r.Contains(ctx, tp)
	n := 0
	if ok {
		n = 1
	}
	endRead(span, n, err)
	return ok, err
}

func (t *tracedReader) Subjects(ctx context.Context, object tuples.ObjectRef, relation, subjectType string) iter.Seq2[tuples.Tuple, error] {
	return t.seq(ctx, "subjects", t.r.Subjects(ctx, object, relation, subjectType), attrObjectType.String(object.Type), attrRelation.String(relation))
}

func (t *tracedReader) Objects(ctx context.Context, subject tuples.SubjectRef, objectType, relation string) iter.Seq2[tuples.Tuple, error] {
	return t.seq(ctx, "objects", t.r.Objects(ctx, subject, objectType, relation), attrObjectType.String(objectType), attrRelation.String(relation))
}

func (t *tracedReader) Read(ctx context.Context, f tuples.Filter, after *tuples.Tuple) iter.Seq2[tuples.Tuple, error] {
	return t.seq(ctx, "read", t.r.Read(ctx, f, after), attrObjectType.String(f.ObjectType), attrRelation.String(f.Relation))
}

func (t *tracedReader) Schema(ctx context.Context) ([]byte, tuples.Revision, error) {
	span := t.start(ctx, "schema")
	text, rev, err := t.r.Schema(ctx)
	endRead(span, 0, err)
	return text, rev, err
}
