package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	relatav1 "github.com/relata/relata/proto/relata/v1"
)

// Who may call what (docs/security.md): with no credential configured every call is
// accepted. With a preshared key, a keys file or OIDC configured, every call but the
// health checks (gRPC health, GET /healthz, GET /readyz) needs "authorization: Bearer
// TOKEN", where TOKEN is the preshared key (every scope), a key of the keys file (its
// scopes), or a JWT of the OIDC issuer (the scopes of its "scope" claim). A call
// without a valid token is UNAUTHENTICATED; a call outside the caller's scopes is
// PERMISSION_DENIED with reason MISSING_SCOPE naming the scope.

// CallerKind says how a caller authenticated.
type CallerKind string

// Caller kinds.
const (
	CallerPresharedKey CallerKind = "preshared-key"
	CallerKey          CallerKind = "key"
	CallerOIDC         CallerKind = "oidc"
)

// presharedKeyName is the caller name of the preshared key in logs.
const presharedKeyName = "preshared-key"

// Caller is who made a request: a name for logs and metrics (never the key itself)
// and its scopes.
type Caller struct {
	// Name is the key's name in the keys file, "preshared-key", or "oidc:SUBJECT".
	Name string
	// Kind says how the caller authenticated.
	Kind   CallerKind
	scopes scopeSet
}

// Scopes returns the caller's scopes.
func (c Caller) Scopes() []Scope { return c.scopes.list() }

// Has reports whether the caller has scope sc.
func (c Caller) Has(sc Scope) bool { return c.scopes.has(sc) }

type callerKey struct{}

// CallerFromContext returns the authenticated caller of a request, if the server
// requires credentials.
func CallerFromContext(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// withCaller returns ctx carrying c.
func withCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// authenticator checks bearer tokens against the configured credentials.
type authenticator struct {
	preshared    [sha256.Size]byte
	hasPreshared bool
	keys         *keysFile     // nil without --keys-file
	oidc         *oidcVerifier // nil without OIDC
}

// enabled reports whether any credential is configured; without one every call is
// accepted.
func (a *authenticator) enabled() bool {
	return a.hasPreshared || a.keys != nil || a.oidc != nil
}

// authenticate checks the values of an authorization header (gRPC metadata or HTTP)
// and returns the caller.
func (a *authenticator) authenticate(ctx context.Context, vals []string) (Caller, error) {
	if len(vals) == 0 {
		return Caller{}, newStatus(codes.Unauthenticated, relatav1.ErrorReason_UNAUTHENTICATED,
			"missing bearer token: send \"authorization: Bearer KEY\"", nil)
	}
	token, ok := strings.CutPrefix(vals[0], "Bearer ")
	if !ok {
		token, ok = strings.CutPrefix(vals[0], "bearer ")
	}
	token = strings.TrimSpace(token)
	if !ok || token == "" {
		return Caller{}, newStatus(codes.Unauthenticated, relatav1.ErrorReason_UNAUTHENTICATED,
			"invalid authorization header: want \"Bearer TOKEN\"", nil)
	}
	if a.oidc != nil && looksLikeJWT(token) {
		c, err := a.oidc.verify(ctx, token)
		if err != nil {
			return Caller{}, newStatus(codes.Unauthenticated, relatav1.ErrorReason_UNAUTHENTICATED, "invalid bearer token: "+err.Error(), nil)
		}
		return c, nil
	}
	sum := sha256.Sum256([]byte(token))
	if a.keys != nil {
		if k, ok := a.keys.match(sum); ok {
			return Caller{Name: k.name, Kind: CallerKey, scopes: k.scopes}, nil
		}
	}
	if a.hasPreshared && subtle.ConstantTimeCompare(sum[:], a.preshared[:]) == 1 {
		return Caller{Name: presharedKeyName, Kind: CallerPresharedKey, scopes: allScopeSet}, nil
	}
	return Caller{}, newStatus(codes.Unauthenticated, relatav1.ErrorReason_UNAUTHENTICATED, "invalid bearer token", nil)
}

// newAuthenticator loads the credentials cfg names.
func newAuthenticator(cfg Config) (*authenticator, error) {
	a := &authenticator{}
	if cfg.PresharedKey != "" {
		a.preshared, a.hasPreshared = sha256.Sum256([]byte(cfg.PresharedKey)), true
	}
	if cfg.KeysFile != "" {
		kf, err := loadKeysFile(cfg.KeysFile, cfg.Logger)
		if err != nil {
			return nil, err
		}
		a.keys = kf
	}
	if cfg.OIDC != nil {
		v, err := newOIDCVerifier(context.Background(), *cfg.OIDC, cfg.Logger)
		if err != nil {
			return nil, err
		}
		a.oidc = v
	}
	return a, nil
}

// keysFilePoll is how often the keys file and a JWKS file are checked for changes.
const keysFilePoll = time.Second

// watchCredentials keeps the keys file and the OIDC key set fresh until ctx ends.
func (s *Server) watchCredentials(ctx context.Context, g *errgroup.Group) {
	if s.auth.keys != nil {
		g.Go(func() error {
			s.auth.keys.watch(ctx, keysFilePoll)
			return nil
		})
	}
	if s.auth.oidc != nil {
		g.Go(func() error {
			s.auth.oidc.watch(ctx)
			return nil
		})
	}
}

// authExempt reports whether a method is served without a token: health checks.
func authExempt(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.Health/")
}

// authorize authenticates the call and checks that the caller has the scope method
// requires; it returns ctx with the caller.
func (s *Server) authorize(ctx context.Context, method string) (context.Context, error) {
	if !s.auth.enabled() || authExempt(method) {
		return ctx, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	c, err := s.auth.authenticate(ctx, md.Get("authorization"))
	if err != nil {
		return ctx, err
	}
	ctx = withCaller(ctx, c)
	setKeyID(ctx, c.Name)
	need, _ := requiredScope(method)
	if !c.Has(need) {
		have := c.scopes.String()
		if have == "" {
			have = "none"
		}
		return ctx, newStatus(codes.PermissionDenied, relatav1.ErrorReason_MISSING_SCOPE,
			fmt.Sprintf("%s needs scope %q; caller %q has scopes: %s", method, need, c.Name, have),
			map[string]string{"scope": string(need), "method": method, "caller": c.Name})
	}
	return ctx, nil
}

func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := s.authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return handler(srv, &ctxStream{ServerStream: ss, ctx: ctx})
}

// ctxStream is a server stream with another context.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

// authHTTP returns the REST request's context with its caller, or answers 401 and
// returns false. Without credentials configured it lets everything through.
func (s *Server) authHTTP(w http.ResponseWriter, r *http.Request, fail func(error)) (*http.Request, bool) {
	if !s.auth.enabled() {
		return r, true
	}
	c, err := s.auth.authenticate(r.Context(), r.Header.Values("Authorization"))
	if err != nil {
		fail(err)
		return r, false
	}
	setKeyID(r.Context(), c.Name)
	return r.WithContext(withCaller(r.Context(), c)), true
}

// ReloadKeys reloads the keys file and the OIDC key set file (on SIGHUP). A file that
// does not load leaves the keys loaded before in place; the error says why.
func (s *Server) ReloadKeys(ctx context.Context) error {
	var errs []error
	if s.auth.keys != nil {
		if err := s.auth.keys.reloadAndLog(ctx, "reload requested"); err != nil {
			errs = append(errs, err)
		}
	}
	if s.auth.oidc != nil {
		if err := s.auth.oidc.reloadAndLog(ctx, "reload requested"); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("reloading credentials: %w", errs[0])
	}
	return nil
}
