// Package client is a small Go client of the Relata API for microservices. It dials a
// Relata server over gRPC (with a bearer token and TLS, or plaintext on a trusted
// network) and offers Check, CheckBulk, Write, the lookups and the schema calls with
// the text forms (`flow:f1`, `user:anne`, `role:ops#member`,
// `flow:f1#granted@role:ops#member`).
//
// Text arguments are parsed and validated locally; a malformed one fails with the
// *tuples.ValidationError the tuples package returns, before any call. Errors from the
// server are *Error values that carry the gRPC code and the server's reason (one of
// relatav1.ErrorReason, the list server and client share; ReasonOf returns it), and
// match the sentinels with errors.Is (tuples.ErrInvalidZookie, tuples.ErrRevisionExpired,
// tuples.ErrNoSchema, ErrNotFound, ErrMaxDepth, ...). The client talks to the wire
// only: it never imports the engine.
//
// The first call waits for the server to accept the connection (WithReadyTimeout,
// bounded by the call's context). A call that finds the server UNAVAILABLE (starting,
// restarting) is retried with backoff for a few seconds when that is safe: reads
// (streamed reads resume from their last cursor, Watch from the last revision it
// saw), and writes whose updates are all TOUCH or DELETE without preconditions.
// CREATE writes, preconditions, schema writes, deletes by filter and Import are not
// retried.
//
// Every read takes a Consistency (the zero value is minimize_latency) and every call
// returns the zookie of the revision it used or wrote: pass a write's zookie to
// AtLeastAsFresh to read your own write.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/relata/relata/internal/tupleproto"
	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/tuples"
)

// Client is a connection to a Relata server. It is safe for concurrent use; create one
// and share it. Close releases the connection.
type Client struct {
	conn        *grpc.ClientConn
	ready       *readiness
	permissions relatav1.PermissionServiceClient
	tuples      relatav1.RelationshipServiceClient
	schema      relatav1.SchemaServiceClient
}

type options struct {
	token        string
	insecure     bool
	tls          *tls.Config
	dial         []grpc.DialOption
	readyTimeout *time.Duration
}

// Option configures New.
type Option func(*options)

// WithToken sends "authorization: Bearer token" with every call (the server's
// --preshared-key).
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithInsecure dials without TLS, for a server on localhost or a trusted network.
func WithInsecure() Option { return func(o *options) { o.insecure = true } }

// WithTLSConfig dials with TLS using cfg (the default is TLS with the system roots).
func WithTLSConfig(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// WithDialOptions adds gRPC dial options.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dial = append(o.dial, opts...) }
}

// New returns a client of the server at endpoint ("host:port"). It does not connect
// until the first call, which waits for the server to accept the connection (a server
// still starting, or started after the client) for up to DefaultReadyTimeout (see
// WithReadyTimeout) and at most as long as the call's context allows. Without
// WithInsecure it uses TLS.
func New(endpoint string, opts ...Option) (*Client, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	creds := insecure.NewCredentials()
	if !o.insecure {
		cfg := o.tls
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		creds = credentials.NewTLS(cfg)
	}
	ready := &readiness{timeout: DefaultReadyTimeout}
	if o.readyTimeout != nil {
		ready.timeout = *o.readyTimeout
	}
	dial := append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds), reconnectBackoff,
		grpc.WithChainUnaryInterceptor(ready.unary, retryUnavailable),
		grpc.WithChainStreamInterceptor(ready.stream),
	}, o.dial...)
	if o.token != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(bearer{token: o.token, secure: !o.insecure}))
	}
	conn, err := grpc.NewClient(endpoint, dial...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", endpoint, err)
	}
	ready.conn = conn
	return &Client{
		conn:        conn,
		ready:       ready,
		permissions: relatav1.NewPermissionServiceClient(conn),
		tuples:      relatav1.NewRelationshipServiceClient(conn),
		schema:      relatav1.NewSchemaServiceClient(conn),
	}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Permissions returns the generated PermissionService client, for requests the helpers
// do not cover. Its errors are gRPC status errors; pass them to FromStatus.
func (c *Client) Permissions() relatav1.PermissionServiceClient { return c.permissions }

// Relationships returns the generated RelationshipService client.
func (c *Client) Relationships() relatav1.RelationshipServiceClient { return c.tuples }

// Schema returns the generated SchemaService client.
func (c *Client) Schema() relatav1.SchemaServiceClient { return c.schema }

// Admin returns the generated AdminService client (backups).
func (c *Client) Admin() relatav1.AdminServiceClient { return relatav1.NewAdminServiceClient(c.conn) }

// bearer sends the token as per-RPC credentials.
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.secure }

// Consistency says which revision a read uses. The zero value is minimize_latency.
type Consistency struct {
	pb *relatav1.Consistency
}

// MinimizeLatency reads a recent revision (the server's --quantization old at most).
func MinimizeLatency() Consistency { return Consistency{} }

// FullyConsistent reads the newest revision.
func FullyConsistent() Consistency {
	return Consistency{&relatav1.Consistency{Requirement: &relatav1.Consistency_FullyConsistent{FullyConsistent: true}}}
}

// AtLeastAsFresh reads a revision no older than the one zookie names.
func AtLeastAsFresh(zookie string) Consistency {
	return Consistency{&relatav1.Consistency{Requirement: &relatav1.Consistency_AtLeastAsFresh{AtLeastAsFresh: zookie}}}
}

// AtExactSnapshot reads exactly the revision zookie names.
func AtExactSnapshot(zookie string) Consistency {
	return Consistency{&relatav1.Consistency{Requirement: &relatav1.Consistency_AtExactSnapshot{AtExactSnapshot: zookie}}}
}

// Proto returns the relata.v1 message (nil for minimize_latency).
func (c Consistency) Proto() *relatav1.Consistency { return c.pb }

// ParseConsistency parses the CLI spelling: "min" (or ""), "full", "exact:ZOOKIE", or a
// bare ZOOKIE meaning at least as fresh as it.
func ParseConsistency(s string) (Consistency, error) {
	switch {
	case s == "" || s == "min":
		return MinimizeLatency(), nil
	case s == "full":
		return FullyConsistent(), nil
	case strings.HasPrefix(s, "exact:"):
		z := strings.TrimPrefix(s, "exact:")
		if _, err := tuples.ParseZookie(z); err != nil {
			return Consistency{}, err
		}
		return AtExactSnapshot(z), nil
	}
	if _, err := tuples.ParseZookie(s); err != nil {
		return Consistency{}, fmt.Errorf("consistency: want full, min, exact:ZOOKIE or a ZOOKIE: %w", err)
	}
	return AtLeastAsFresh(s), nil
}

// ObjectProto converts a tuples.ObjectRef.
func ObjectProto(o tuples.ObjectRef) *relatav1.ObjectRef { return tupleproto.Object(o) }

// SubjectProto converts a tuples.SubjectRef.
func SubjectProto(s tuples.SubjectRef) *relatav1.SubjectRef { return tupleproto.Subject(s) }

// TupleProto converts a tuples.Tuple with its caveat and expiration.
func TupleProto(t tuples.Tuple) *relatav1.Tuple { return tupleproto.Tuple(t) }

// ObjectFromProto converts to a tuples.ObjectRef.
func ObjectFromProto(o *relatav1.ObjectRef) tuples.ObjectRef {
	return tuples.ObjectRef{Type: o.GetType(), ID: o.GetId()}
}

// SubjectFromProto converts to a tuples.SubjectRef.
func SubjectFromProto(s *relatav1.SubjectRef) tuples.SubjectRef {
	return tuples.SubjectRef{Object: ObjectFromProto(s.GetObject()), Relation: s.GetRelation()}
}

// TupleFromProto converts to a tuples.Tuple.
func TupleFromProto(t *relatav1.Tuple) tuples.Tuple {
	out := tuples.Tuple{Object: ObjectFromProto(t.GetObject()), Relation: t.GetRelation(), Subject: SubjectFromProto(t.GetSubject())}
	if c := t.GetCaveat(); c != nil {
		out.Caveat = &tuples.Caveat{Name: c.GetName()}
		if m := c.GetContext().AsMap(); len(m) > 0 {
			out.Caveat.Context = m
		}
	}
	if e := t.GetExpiresAt(); e != nil {
		out.ExpiresAt = e.AsTime().UTC()
	}
	return out
}

// CheckResult is the answer of Check.
type CheckResult struct {
	Allowed bool
	// CheckedAt is the zookie of the revision used.
	CheckedAt string
	// Explanation is set by CheckExplain.
	Explanation *relatav1.Explanation
}

// Check asks whether subject (`user:anne`, `role:ops#member`) has permission on
// object (`flow:f1`).
func (c *Client) Check(ctx context.Context, object, permission, subject string, cons Consistency) (CheckResult, error) {
	return c.check(ctx, object, permission, subject, cons, false)
}

// CheckExplain is Check with the explanation tree.
func (c *Client) CheckExplain(ctx context.Context, object, permission, subject string, cons Consistency) (CheckResult, error) {
	return c.check(ctx, object, permission, subject, cons, true)
}

func (c *Client) check(ctx context.Context, object, permission, subject string, cons Consistency, explain bool) (CheckResult, error) {
	obj, err := tuples.ParseObject(object)
	if err != nil {
		return CheckResult{}, err
	}
	sub, err := tuples.ParseSubject(subject)
	if err != nil {
		return CheckResult{}, err
	}
	resp, err := c.permissions.Check(ctx, &relatav1.CheckRequest{
		Object: ObjectProto(obj), Permission: permission, Subject: SubjectProto(sub),
		Consistency: cons.pb, Explain: explain,
	})
	if err != nil {
		return CheckResult{}, FromStatus(err)
	}
	return CheckResult{Allowed: resp.GetAllowed(), CheckedAt: resp.GetCheckedAt(), Explanation: resp.GetExplanation()}, nil
}

// BulkItem is one check of CheckBulk, or its answer.
type BulkItem struct {
	Object, Permission, Subject string
	// Allowed and Err are the answer.
	Allowed bool
	Err     error
}

// ParseBulkItem parses `object#permission@subject` (the tuple text form) into a
// BulkItem.
func ParseBulkItem(s string) (BulkItem, error) {
	t, err := tuples.ParseTuple(s)
	if err != nil {
		return BulkItem{}, err
	}
	return BulkItem{Object: t.Object.String(), Permission: t.Relation, Subject: t.Subject.String()}, nil
}

// CheckBulk answers items at one revision, filling their Allowed and Err fields, and
// returns the zookie of that revision.
func (c *Client) CheckBulk(ctx context.Context, items []BulkItem, cons Consistency) (string, error) {
	req := &relatav1.CheckBulkRequest{Consistency: cons.pb}
	for _, it := range items {
		obj, err := tuples.ParseObject(it.Object)
		if err != nil {
			return "", err
		}
		sub, err := tuples.ParseSubject(it.Subject)
		if err != nil {
			return "", err
		}
		req.Items = append(req.Items, &relatav1.CheckBulkRequestItem{Object: ObjectProto(obj), Permission: it.Permission, Subject: SubjectProto(sub)})
	}
	resp, err := c.permissions.CheckBulk(ctx, req)
	if err != nil {
		return "", FromStatus(err)
	}
	for i, r := range resp.GetResults() {
		if i >= len(items) {
			break
		}
		items[i].Allowed = r.GetAllowed()
		if e := r.GetError(); e != nil {
			items[i].Err = &Error{Code: codeFromName(e.GetCode()), Reason: e.GetReason(), Message: e.GetMessage()}
		}
	}
	return resp.GetCheckedAt(), nil
}

// Update is one operation of Write.
type Update struct {
	Op    tuples.Operation
	Tuple tuples.Tuple
}

// Touch, Create and Delete parse tuples in text form into updates.
func Touch(ts ...string) ([]Update, error) { return updates(tuples.OpTouch, ts) }

// Create parses tuples into CREATE updates (fail if a tuple exists).
func Create(ts ...string) ([]Update, error) { return updates(tuples.OpCreate, ts) }

// Delete parses tuples into DELETE updates.
func Delete(ts ...string) ([]Update, error) { return updates(tuples.OpDelete, ts) }

func updates(op tuples.Operation, ts []string) ([]Update, error) {
	out := make([]Update, 0, len(ts))
	for _, s := range ts {
		t, err := tuples.ParseTuple(s)
		if err != nil {
			return nil, err
		}
		out = append(out, Update{Op: op, Tuple: t})
	}
	return out, nil
}

// Write applies updates atomically and returns the zookie of the new revision.
func (c *Client) Write(ctx context.Context, updates []Update) (string, error) {
	return c.WriteIf(ctx, updates, nil)
}

// LookupResources returns every object of resourceType on which subject has
// permission (text forms), and the zookie of the revision used. A stream cut by an
// unavailable server resumes after the last result received.
func (c *Client) LookupResources(ctx context.Context, resourceType, permission, subject string, cons Consistency) ([]string, string, error) {
	sub, err := tuples.ParseSubject(subject)
	if err != nil {
		return nil, "", err
	}
	var (
		out    []string
		zookie string
	)
	err = resumeStream(ctx, "",
		func(ctx context.Context, cursor string) (func() (*relatav1.LookupResourcesResponse, error), error) {
			s, err := c.permissions.LookupResources(ctx, &relatav1.LookupResourcesRequest{
				ResourceType: resourceType, Permission: permission, Subject: SubjectProto(sub), Consistency: cons.pb,
				Cursor: cursor, BatchResults: true,
			})
			if err != nil {
				return nil, err
			}
			return s.Recv, nil
		},
		(*relatav1.LookupResourcesResponse).GetCursor,
		func(resp *relatav1.LookupResourcesResponse) error {
			for _, r := range resp.GetResults() {
				out = append(out, ObjectFromProto(r.GetObject()).String())
			}
			zookie = resp.GetLookedUpAt()
			return nil
		})
	if err != nil {
		return nil, "", err
	}
	return out, zookie, nil
}

// LookupSubjects returns every subject of subjectType that has permission on object
// (text forms; a wildcard is `type:*`, followed by ` - ` and its exclusions), and the
// zookie of the revision used. A stream cut by an unavailable server resumes after
// the last result received.
func (c *Client) LookupSubjects(ctx context.Context, object, permission, subjectType string, cons Consistency) ([]string, string, error) {
	obj, err := tuples.ParseObject(object)
	if err != nil {
		return nil, "", err
	}
	var (
		out    []string
		zookie string
	)
	err = resumeStream(ctx, "",
		func(ctx context.Context, cursor string) (func() (*relatav1.LookupSubjectsResponse, error), error) {
			s, err := c.permissions.LookupSubjects(ctx, &relatav1.LookupSubjectsRequest{
				Object: ObjectProto(obj), Permission: permission, SubjectType: subjectType, Consistency: cons.pb,
				Cursor: cursor, BatchResults: true,
			})
			if err != nil {
				return nil, err
			}
			return s.Recv, nil
		},
		(*relatav1.LookupSubjectsResponse).GetCursor,
		func(resp *relatav1.LookupSubjectsResponse) error {
			for _, r := range resp.GetResults() {
				out = append(out, FormatLookupSubjectResult(r))
			}
			zookie = resp.GetLookedUpAt()
			return nil
		})
	if err != nil {
		return nil, "", err
	}
	return out, zookie, nil
}

// FormatLookupSubject prints a LookupSubjects result: the subject, and for a wildcard
// its exclusions (`user:* - user:bob, user:eve`).
func FormatLookupSubject(r *relatav1.LookupSubjectsResponse) string {
	return FormatLookupSubjectResult(&relatav1.LookupSubjectsResult{Subject: r.GetSubject(), Excluded: r.GetExcluded()})
}

// FormatLookupSubjectResult is FormatLookupSubject for one result of a batched
// LookupSubjects response.
func FormatLookupSubjectResult(r *relatav1.LookupSubjectsResult) string {
	s := SubjectFromProto(r.GetSubject()).String()
	if len(r.GetExcluded()) == 0 {
		return s
	}
	ex := make([]string, len(r.GetExcluded()))
	for i, e := range r.GetExcluded() {
		ex[i] = SubjectFromProto(e).String()
	}
	return s + " - " + strings.Join(ex, ", ")
}

// WriteSchema writes schema text and returns the zookie of the new revision.
func (c *Client) WriteSchema(ctx context.Context, text string) (string, error) {
	resp, err := c.schema.WriteSchema(ctx, &relatav1.WriteSchemaRequest{Schema: text})
	if err != nil {
		return "", FromStatus(err)
	}
	return resp.GetWrittenAt(), nil
}

// ReadSchema returns the schema text and the zookie of the revision read.
func (c *Client) ReadSchema(ctx context.Context, cons Consistency) (string, string, error) {
	resp, err := c.schema.ReadSchema(ctx, &relatav1.ReadSchemaRequest{Consistency: cons.pb})
	if err != nil {
		return "", "", FromStatus(err)
	}
	return resp.GetSchema(), resp.GetReadAt(), nil
}

// ReadSchemaAt returns the schema text in force at the revision of zookie (also one
// older than the server's GC window).
func (c *Client) ReadSchemaAt(ctx context.Context, zookie string) (string, error) {
	resp, err := c.schema.ReadSchema(ctx, &relatav1.ReadSchemaRequest{At: zookie})
	if err != nil {
		return "", FromStatus(err)
	}
	return resp.GetSchema(), nil
}

// DiffSchema compares text with the schema in force and counts the stored tuples each
// removal would orphan, writing nothing. The answer's Refused says whether a write
// of text would be refused now.
func (c *Client) DiffSchema(ctx context.Context, text string) (*relatav1.DiffSchemaResponse, error) {
	resp, err := c.schema.DiffSchema(ctx, &relatav1.DiffSchemaRequest{Schema: text})
	if err != nil {
		return nil, FromStatus(err)
	}
	return resp, nil
}

// SchemaRevisions lists the schema writes, newest first (at most limit; 0 for all).
func (c *Client) SchemaRevisions(ctx context.Context, limit uint32) (*relatav1.ListSchemaRevisionsResponse, error) {
	resp, err := c.schema.ListSchemaRevisions(ctx, &relatav1.ListSchemaRevisionsRequest{Limit: limit})
	if err != nil {
		return nil, FromStatus(err)
	}
	return resp, nil
}

// Sentinels an *Error from the server matches with errors.Is, besides the tuples
// package's (see Error.Is).
var (
	// ErrNotFound: an unknown type, relation or permission (NOT_FOUND, reasons
	// UNKNOWN_TYPE and UNKNOWN_RELATION).
	ErrNotFound = errors.New("not found")
	// ErrMaxDepth: evaluation deeper than the server's maximum depth
	// (MAX_DEPTH_EXCEEDED).
	ErrMaxDepth = errors.New("maximum depth exceeded")
)

// Error is an error the server returned: its gRPC code, the machine-readable reason
// of its google.rpc.ErrorInfo detail (a relatav1.ErrorReason name, e.g.
// "UNKNOWN_RELATION"), the message, and the ErrorInfo metadata.
type Error struct {
	Code     codes.Code
	Reason   string
	Message  string
	Metadata map[string]string
}

// Error prints the message and the reason: `check: object: unknown type "x" (UNKNOWN_TYPE)`.
func (e *Error) Error() string {
	if e.Reason == "" {
		return e.Message
	}
	return e.Message + " (" + e.Reason + ")"
}

// ReasonCode returns the reason as the shared enum; ERROR_REASON_UNSPECIFIED when the
// error has none or one this client does not know (from a newer server).
func (e *Error) ReasonCode() relatav1.ErrorReason {
	return relatav1.ErrorReason(relatav1.ErrorReason_value[e.Reason])
}

// ReasonOf returns the reason of an *Error in err's chain, or ERROR_REASON_UNSPECIFIED.
func ReasonOf(err error) relatav1.ErrorReason {
	var e *Error
	if errors.As(err, &e) {
		return e.ReasonCode()
	}
	return relatav1.ErrorReason_ERROR_REASON_UNSPECIFIED
}

// Is matches the sentinel errors by reason.
func (e *Error) Is(target error) bool {
	r := e.ReasonCode()
	switch target {
	case tuples.ErrInvalidZookie:
		return r == relatav1.ErrorReason_INVALID_ZOOKIE
	case tuples.ErrRevisionExpired:
		return r == relatav1.ErrorReason_ZOOKIE_EXPIRED
	case tuples.ErrRevisionInFuture:
		return r == relatav1.ErrorReason_ZOOKIE_IN_FUTURE
	case tuples.ErrNoSchema:
		return r == relatav1.ErrorReason_NO_SCHEMA
	case tuples.ErrNotSupported:
		return r == relatav1.ErrorReason_NOT_SUPPORTED
	case ErrNotFound:
		return e.Code == codes.NotFound
	case ErrMaxDepth:
		return r == relatav1.ErrorReason_MAX_DEPTH_EXCEEDED
	}
	return false
}

// FromStatus converts a gRPC error into an *Error (nil stays nil; context errors
// pass through).
func FromStatus(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	e := &Error{Code: st.Code(), Message: st.Message()}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			e.Reason, e.Metadata = info.GetReason(), info.GetMetadata()
		}
	}
	if e.Code == codes.Unavailable && e.Reason == "" {
		msg := e.Message
		if _, after, ok := strings.Cut(msg, "Error while dialing: "); ok {
			msg = strings.TrimSuffix(after, `"`)
		}
		e.Reason = relatav1.ErrorReason_UNAVAILABLE.String()
		e.Message = "cannot reach the server: " + msg + tlsHint(msg)
	}
	return e
}

func codeFromName(name string) codes.Code {
	var c codes.Code
	if err := c.UnmarshalJSON([]byte(`"` + name + `"`)); err != nil {
		return codes.Unknown
	}
	return c
}

// tlsHint explains the transport errors TLS misconfigurations cause.
func tlsHint(msg string) string {
	switch {
	case strings.Contains(msg, "server preface"):
		return " (the server may require TLS and this connection is plaintext: give the server's CA with --ca-file, or drop --insecure)"
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return " (the server speaks plaintext: use --insecure)"
	case strings.Contains(msg, "certificate signed by unknown authority"), strings.Contains(msg, "failed to verify certificate"):
		return " (the server's certificate is not signed by a CA this client trusts: give its CA with --ca-file)"
	case strings.Contains(msg, "certificate required"), strings.Contains(msg, "bad certificate"):
		return " (the server requires a client certificate: mutual TLS)"
	}
	return ""
}
