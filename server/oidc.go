package server

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// OIDCConfig makes the server accept JWT bearer tokens issued by an OpenID Connect
// provider, besides keys. Issuer, Audience and one of JWKSFile or JWKSURL are required.
type OIDCConfig struct {
	// Issuer must equal the token's "iss" claim.
	Issuer string
	// Audience must be one of the token's "aud" values.
	Audience string
	// JWKSFile is a JSON Web Key Set file, reloaded when it changes and on
	// Server.ReloadKeys.
	JWKSFile string
	// JWKSURL is fetched at start, every RefreshInterval, and when a token names a
	// key id the cached set lacks (at most once per minRefetch).
	JWKSURL string
	// RefreshInterval is how often JWKSURL is fetched again; default 5 minutes.
	RefreshInterval time.Duration
	// Leeway is the clock skew allowed on exp, nbf and iat; default 30 seconds.
	Leeway time.Duration
	// HTTPClient fetches JWKSURL; nil means a client with a 10 s timeout.
	HTTPClient *http.Client
}

// Defaults of OIDCConfig.
const (
	DefaultJWKSRefresh = 5 * time.Minute
	DefaultJWTLeeway   = 30 * time.Second
	// minRefetch bounds how often an unknown key id makes the server fetch the JWKS
	// URL, so that tokens with made-up key ids cannot make it hammer the provider.
	minRefetch = 30 * time.Second
	// maxJWKSBytes bounds a JWKS document.
	maxJWKSBytes = 1 << 20
)

// jwtAlgorithms are the signature algorithms accepted (design: RS256 and ES256).
var jwtAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256}

// oidcVerifier verifies JWT bearer tokens against a cached JWKS.
type oidcVerifier struct {
	cfg OIDCConfig
	log *slog.Logger

	keys atomic.Pointer[jose.JSONWebKeySet]
	// refetchAfter is minRefetch, shortened by tests.
	refetchAfter atomic.Int64
	mu           sync.Mutex // serializes loads
	sum          [sha256.Size]byte
	lastFetch    time.Time
}

// newOIDCVerifier checks cfg and loads the key set once.
func newOIDCVerifier(ctx context.Context, cfg OIDCConfig, log *slog.Logger) (*oidcVerifier, error) {
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("OIDC: the issuer is required (--oidc-issuer)")
	case cfg.Audience == "":
		return nil, errors.New("OIDC: the audience is required (--oidc-audience)")
	case (cfg.JWKSFile == "") == (cfg.JWKSURL == ""):
		return nil, errors.New("OIDC: give exactly one of --oidc-jwks-file and --oidc-jwks-url")
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = DefaultJWKSRefresh
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = DefaultJWTLeeway
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	v := &oidcVerifier{cfg: cfg, log: log}
	v.refetchAfter.Store(int64(minRefetch))
	if _, err := v.load(ctx); err != nil {
		return nil, fmt.Errorf("OIDC: %w", err)
	}
	return v, nil
}

// source names where the key set comes from.
func (v *oidcVerifier) source() string {
	if v.cfg.JWKSFile != "" {
		return v.cfg.JWKSFile
	}
	return v.cfg.JWKSURL
}

// load reads the key set from its file or URL and swaps it in when it changed and
// parses. It reports whether the set changed.
func (v *oidcVerifier) load(ctx context.Context) (bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var b []byte
	var err error
	if v.cfg.JWKSFile != "" {
		b, err = os.ReadFile(v.cfg.JWKSFile)
	} else {
		v.lastFetch = time.Now()
		b, err = v.fetch(ctx)
	}
	if err != nil {
		return false, fmt.Errorf("JWKS %s: %w", v.source(), err)
	}
	sum := sha256.Sum256(b)
	if v.keys.Load() != nil && sum == v.sum {
		return false, nil
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return false, fmt.Errorf("JWKS %s: not a JSON Web Key Set: %w", v.source(), err)
	}
	if len(set.Keys) == 0 {
		return false, fmt.Errorf("JWKS %s: no keys", v.source())
	}
	for i, k := range set.Keys {
		if !k.IsPublic() {
			return false, fmt.Errorf("JWKS %s: keys[%d] (kid %q) is not a public key", v.source(), i, k.KeyID)
		}
	}
	v.sum = sum
	v.keys.Store(&set)
	return true, nil
}

func (v *oidcVerifier) fetch(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.cfg.JWKSURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := v.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxJWKSBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxJWKSBytes)
	}
	return b, nil
}

// reloadAndLog loads the key set and logs a change or a failure (the set loaded
// before stays).
func (v *oidcVerifier) reloadAndLog(ctx context.Context, why string) error {
	changed, err := v.load(ctx)
	if err != nil {
		v.log.ErrorContext(ctx, "relata: OIDC key set not reloaded; the keys loaded before stay valid", "why", why, "err", err)
		return err
	}
	if changed {
		v.logChange(ctx, why)
	}
	return nil
}

// logChange logs the key ids of a key set just loaded.
func (v *oidcVerifier) logChange(ctx context.Context, why string) {
	var kids []string
	for _, k := range v.keys.Load().Keys {
		kids = append(kids, k.KeyID)
	}
	v.log.InfoContext(ctx, "relata: OIDC key set reloaded", "why", why, "source", v.source(), "kids", strings.Join(kids, ","))
}

// watch keeps the key set fresh until ctx ends: a file is checked every second, a URL
// fetched every RefreshInterval.
func (v *oidcVerifier) watch(ctx context.Context) {
	interval, why := time.Second, "file changed"
	if v.cfg.JWKSURL != "" {
		interval, why = v.cfg.RefreshInterval, "refresh"
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := v.load(ctx)
		switch {
		case err != nil && err.Error() != lastErr:
			lastErr = err.Error()
			v.log.ErrorContext(ctx, "relata: OIDC key set not reloaded; the keys loaded before stay valid", "why", why, "err", err)
		case err == nil && changed:
			lastErr = ""
			v.logChange(ctx, why)
		case err == nil:
			lastErr = ""
		}
	}
}

// jwtClaims are the claims read from a token besides the registered ones.
type jwtClaims struct {
	Scope string `json:"scope"`
}

// looksLikeJWT reports whether token has the shape of a compact JWS.
func looksLikeJWT(token string) bool {
	return strings.Count(token, ".") == 2 && strings.HasPrefix(token, "ey")
}

// verify checks token's signature against the key set, its exp, nbf, iat, iss and
// aud, and returns its caller: named "oidc:SUB", with the scopes of its "scope" claim
// ("relata:read relata:write"; other values are ignored).
func (v *oidcVerifier) verify(ctx context.Context, token string) (Caller, error) {
	tok, err := jwt.ParseSigned(token, jwtAlgorithms)
	if err != nil {
		return Caller{}, fmt.Errorf("not a JWT signed with RS256 or ES256: %w", err)
	}
	if len(tok.Headers) != 1 {
		return Caller{}, errors.New("the JWT has more than one signature")
	}
	kid := tok.Headers[0].KeyID
	keys := v.candidates(kid)
	if len(keys) == 0 && v.cfg.JWKSURL != "" && v.mayRefetch() {
		// Key rotation: the provider may have published the key since we fetched.
		_ = v.reloadAndLog(ctx, fmt.Sprintf("unknown key id %q", kid))
		keys = v.candidates(kid)
	}
	if len(keys) == 0 {
		return Caller{}, fmt.Errorf("no key with id %s in the JWKS", quoteValue(kid))
	}
	var (
		std   jwt.Claims
		extra jwtClaims
	)
	verified := false
	for _, k := range keys {
		if err := tok.Claims(k.Key, &std, &extra); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return Caller{}, errors.New("the JWT signature does not verify")
	}
	if std.Expiry == nil {
		return Caller{}, errors.New("the JWT has no exp claim")
	}
	err = std.ValidateWithLeeway(jwt.Expected{
		Issuer:      v.cfg.Issuer,
		AnyAudience: jwt.Audience{v.cfg.Audience},
		Time:        time.Now(),
	}, v.cfg.Leeway)
	switch {
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return Caller{}, fmt.Errorf("the JWT's issuer %s is not %q", quoteValue(std.Issuer), v.cfg.Issuer)
	case errors.Is(err, jwt.ErrInvalidAudience):
		return Caller{}, fmt.Errorf("the JWT's audience %s does not include %q", quoteValue(strings.Join(std.Audience, " ")), v.cfg.Audience)
	case errors.Is(err, jwt.ErrExpired):
		return Caller{}, fmt.Errorf("the JWT expired at %s", std.Expiry.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrNotValidYet):
		return Caller{}, fmt.Errorf("the JWT is not valid before %s", std.NotBefore.Time().UTC().Format(time.RFC3339))
	case err != nil:
		return Caller{}, fmt.Errorf("the JWT's claims do not validate: %w", err)
	}
	var scopes scopeSet
	for _, s := range strings.Fields(extra.Scope) {
		if name, ok := strings.CutPrefix(s, "relata:"); ok {
			if sc, err := ParseScope(name); err == nil {
				scopes |= scopeBit(sc)
			}
		}
	}
	return Caller{Name: "oidc:" + std.Subject, Kind: CallerOIDC, scopes: scopes}, nil
}

// candidates returns the keys that may have signed a token naming kid: the keys with
// that id, or, for a token without one, every signing key.
func (v *oidcVerifier) candidates(kid string) []jose.JSONWebKey {
	set := v.keys.Load()
	if kid != "" {
		return set.Key(kid)
	}
	var out []jose.JSONWebKey
	for _, k := range set.Keys {
		if k.Use == "" || k.Use == "sig" {
			out = append(out, k)
		}
	}
	return out
}

// mayRefetch reports whether an unknown key id may trigger a fetch now.
func (v *oidcVerifier) mayRefetch() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return time.Since(v.lastFetch) >= time.Duration(v.refetchAfter.Load())
}
