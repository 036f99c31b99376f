package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/relata/relata/internal/tupleproto"
	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/tuples"
)

// TestEveryMethodHasAScope keeps methodScopes complete: every method the server
// registers (but the open health checks) is named by the table, so that none falls
// to the admin default by oversight.
func TestEveryMethodHasAScope(t *testing.T) {
	env := newTestEnv(t)
	n := 0
	for svc, info := range env.srv.grpc.GetServiceInfo() {
		for _, m := range info.Methods {
			method := "/" + svc + "/" + m.Name
			if authExempt(method) {
				continue
			}
			_, ok := requiredScope(method)
			require.True(t, ok, "%s has no entry in methodScopes (server/scopes.go)", method)
			n++
		}
	}
	require.GreaterOrEqual(t, n, 13)
	sc, ok := requiredScope("/relata.v1.PermissionService/Teleport")
	require.False(t, ok)
	require.Equal(t, ScopeAdmin, sc, "an unknown method requires admin")
	sc, ok = requiredScope("/relata.v1.AdminService/CreateBackup")
	require.True(t, ok)
	require.Equal(t, ScopeAdmin, sc)
}

func sha256Hex(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:])
}

// writeKeysFile writes a keys file of name → (key, scopes) entries.
func writeKeysFile(t *testing.T, path string, keys ...[3]string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("keys:\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "  - name: %s\n    sha256: %s\n    scopes: [%s]\n", k[0], sha256Hex(k[1]), k[2])
	}
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(b.String()), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

func withToken(token string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

// errorMetadata returns the ErrorInfo metadata of a status error.
func errorMetadata(err error) map[string]string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetMetadata()
		}
	}
	return nil
}

// callAs makes one call of each scope as token and returns their codes by scope.
func callAs(t *testing.T, env *testEnv, token string) map[Scope]codes.Code {
	t.Helper()
	ctx := withToken(token)
	out := map[Scope]codes.Code{}
	_, err := env.perms.Check(ctx, checkReq("flow:f1", "execute", "user:anne"))
	out[ScopeRead] = status.Code(err)
	if err != nil && status.Code(err) == codes.PermissionDenied {
		require.Equal(t, relatav1.ErrorReason_MISSING_SCOPE.String(), errorInfo(err))
		require.Equal(t, "read", errorMetadata(err)["scope"])
	}
	_, err = env.rels.Write(ctx, &relatav1.WriteRequest{Updates: []*relatav1.TupleUpdate{{
		Operation: relatav1.Operation_OPERATION_TOUCH,
		Tuple:     tupleproto.Tuple(mustTuple(t, "tenant:acme#viewer@user:zed")),
	}}})
	out[ScopeWrite] = status.Code(err)
	if status.Code(err) == codes.PermissionDenied {
		require.Equal(t, relatav1.ErrorReason_MISSING_SCOPE.String(), errorInfo(err))
		require.Equal(t, "write", errorMetadata(err)["scope"])
		require.Contains(t, status.Convert(err).Message(), `needs scope "write"`)
	}
	_, err = env.schemas.WriteSchema(ctx, &relatav1.WriteSchemaRequest{Schema: testSchema})
	out[ScopeSchema] = status.Code(err)
	return out
}

func TestScopedKeys(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.yaml")
	writeKeysFile(t, keys,
		[3]string{"flow-runtime", "reader-key", "read"},
		[3]string{"writer", "writer-key", "read, write"},
		[3]string{"admin-console", "admin-key", "read, write, schema, admin"},
	)
	env := newTestEnv(t, func(c *Config) {
		c.KeysFile = keys
		c.PresharedKey = "psk"
	})
	env.token = "admin-key"
	env.seed(t)

	ok, denied, unauth := codes.OK, codes.PermissionDenied, codes.Unauthenticated
	for _, tc := range []struct {
		token string
		want  map[Scope]codes.Code
	}{
		{"reader-key", map[Scope]codes.Code{ScopeRead: ok, ScopeWrite: denied, ScopeSchema: denied}},
		{"writer-key", map[Scope]codes.Code{ScopeRead: ok, ScopeWrite: ok, ScopeSchema: denied}},
		{"admin-key", map[Scope]codes.Code{ScopeRead: ok, ScopeWrite: ok, ScopeSchema: ok}},
		{"psk", map[Scope]codes.Code{ScopeRead: ok, ScopeWrite: ok, ScopeSchema: ok}},
		{"reader-key2", map[Scope]codes.Code{ScopeRead: unauth, ScopeWrite: unauth, ScopeSchema: unauth}},
	} {
		t.Run(tc.token, func(t *testing.T) {
			require.Equal(t, tc.want, callAs(t, env, tc.token))
		})
	}

	// REST: a read-only key checks, and a write is 403 MISSING_SCOPE naming the scope.
	code, body := env.postWithToken(t, "/v1/check", checkJSON("flow:f1", "execute", "user:anne", ""), "reader-key")
	require.Equal(t, 200, code, string(body))
	code, body = env.postWithToken(t, "/v1/tuples/write",
		`{"updates":[{"operation":"OPERATION_TOUCH","tuple":{"object":{"type":"tenant","id":"acme"},"relation":"viewer","subject":{"object":{"type":"user","id":"x"}}}}]}`, "reader-key")
	require.Equal(t, http.StatusForbidden, code, string(body))
	require.Contains(t, string(body), relatav1.ErrorReason_MISSING_SCOPE.String())
	require.Contains(t, string(body), `"scope":"write"`)

	// Rotation: a new key added to the file is valid once the file is reloaded, the old
	// one stays valid until removed.
	writeKeysFile(t, keys,
		[3]string{"flow-runtime", "reader-key", "read"},
		[3]string{"flow-runtime-2", "reader-key-new", "read"},
		[3]string{"admin-console", "admin-key", "read, write, schema, admin"},
	)
	require.NoError(t, env.srv.ReloadKeys(context.Background()))
	require.Equal(t, ok, callAs(t, env, "reader-key-new")[ScopeRead])
	require.Equal(t, ok, callAs(t, env, "reader-key")[ScopeRead])
	require.Equal(t, unauth, callAs(t, env, "writer-key")[ScopeRead], "a removed key is refused")

	// A change of the file is picked up without SIGHUP.
	writeKeysFile(t, keys,
		[3]string{"flow-runtime-2", "reader-key-new", "read"},
		[3]string{"admin-console", "admin-key", "read, write, schema, admin"},
	)
	require.Eventually(t, func() bool {
		_, err := env.perms.Check(withToken("reader-key"), checkReq("flow:f1", "execute", "user:anne"))
		return status.Code(err) == codes.Unauthenticated
	}, 20*time.Second, 20*time.Millisecond)

	// A bad file is refused and the keys loaded before stay valid.
	require.NoError(t, os.WriteFile(keys, []byte("keys:\n  - name: x\n    sha256: abc\n    scopes: [read]\n"), 0o600))
	err := env.srv.ReloadKeys(context.Background())
	require.ErrorContains(t, err, "sha256")
	require.Equal(t, ok, callAs(t, env, "reader-key-new")[ScopeRead])
}

// TestOpenWithoutCredentials: with credentials configured, only health is open;
// reflection and the OpenAPI document need a token.
func TestOpenWithoutCredentials(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.PresharedKey = "sekret" })
	env.seed(t)
	h, err := healthpb.NewHealthClient(env.conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, h.GetStatus())
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/openapi.json": 401} {
		resp, err := http.Get(env.baseURL + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, want, resp.StatusCode, path)
	}
	stream, err := reflectionpb.NewServerReflectionClient(env.conn).ServerReflectionInfo(context.Background())
	require.NoError(t, err)
	// Send may already see the stream ended by the refusal (io.EOF); Recv has the status.
	_ = stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: "*"},
	})
	_, err = stream.Recv()
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
}

func TestParseKeysFile(t *testing.T) {
	good := sha256Hex("k")
	for _, tc := range []struct {
		name, text, err string
	}{
		{"ok", "keys:\n  - name: a\n    sha256: " + good + "\n    scopes: [read, admin]\n", ""},
		{"empty", "", "empty file"},
		{"no keys", "keys: []\n", "no keys"},
		{"unknown field", "keys:\n  - name: a\n    key: x\n", "field key not found"},
		{"no name", "keys:\n  - sha256: " + good + "\n    scopes: [read]\n", "keys[0]: name is empty"},
		{"bad hash", "keys:\n  - name: a\n    sha256: zz\n    scopes: [read]\n", `keys[0] (a): sha256 "zz": want the 64 hex digits`},
		{"no scopes", "keys:\n  - name: a\n    sha256: " + good + "\n", "scopes are empty"},
		{"bad scope", "keys:\n  - name: a\n    sha256: " + good + "\n    scopes: [rread]\n", `unknown scope "rread": want one of read, write, schema, admin`},
		{"dup name", "keys:\n  - name: a\n    sha256: " + good + "\n    scopes: [read]\n  - name: a\n    sha256: " + sha256Hex("j") + "\n    scopes: [read]\n", "keys[1] (a): the name is used twice"},
		{"dup key", "keys:\n  - name: a\n    sha256: " + good + "\n    scopes: [read]\n  - name: b\n    sha256: " + good + "\n    scopes: [read]\n", `the same sha256 as key "a"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := parseKeysFile("keys.yaml", []byte(tc.text))
			if tc.err == "" {
				require.NoError(t, err)
				require.Len(t, keys, 1)
				require.Equal(t, []Scope{ScopeRead, ScopeAdmin}, keys[0].scopes.list())
				return
			}
			require.ErrorContains(t, err, tc.err)
			require.True(t, strings.HasPrefix(err.Error(), "keys.yaml: "), err.Error())
		})
	}
}

// testIssuer signs JWTs with an RSA and an EC key and serves their JWKS.
type testIssuer struct {
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
	mu  sync.Mutex
	set jose.JSONWebKeySet
}

func newTestIssuer(t *testing.T) *testIssuer {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	iss := &testIssuer{rsa: rk, ec: ek}
	iss.set.Keys = []jose.JSONWebKey{
		{Key: rk.Public(), KeyID: "rsa-1", Algorithm: string(jose.RS256), Use: "sig"},
		{Key: ek.Public(), KeyID: "ec-1", Algorithm: string(jose.ES256), Use: "sig"},
	}
	return iss
}

func (iss *testIssuer) jwks(t *testing.T) []byte {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	b, err := json.Marshal(iss.set)
	require.NoError(t, err)
	return b
}

// sign returns a JWT signed by the key kid with the given claims.
func (iss *testIssuer) sign(t *testing.T, kid string, key any, alg jose.SignatureAlgorithm, claims jwt.Claims, scope string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	require.NoError(t, err)
	tok, err := jwt.Signed(signer).Claims(claims).Claims(map[string]any{"scope": scope}).Serialize()
	require.NoError(t, err)
	return tok
}

func TestOIDC(t *testing.T) {
	iss := newTestIssuer(t)
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	require.NoError(t, os.WriteFile(jwks, iss.jwks(t), 0o600))
	env := newTestEnv(t, func(c *Config) {
		c.PresharedKey = "psk"
		c.OIDC = &OIDCConfig{Issuer: "https://idp.example", Audience: "relata", JWKSFile: jwks}
	})
	env.token = "psk"
	env.seed(t)

	now := time.Now()
	valid := jwt.Claims{
		Issuer: "https://idp.example", Subject: "svc-a", Audience: jwt.Audience{"relata"},
		Expiry: jwt.NewNumericDate(now.Add(time.Hour)), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
	}
	with := func(f func(c *jwt.Claims)) jwt.Claims {
		c := valid
		f(&c)
		return c
	}
	ok, denied, unauth := codes.OK, codes.PermissionDenied, codes.Unauthenticated
	for _, tc := range []struct {
		name  string
		token string
		want  map[Scope]codes.Code
	}{
		{"RS256 read", iss.sign(t, "rsa-1", iss.rsa, jose.RS256, valid, "openid relata:read"),
			map[Scope]codes.Code{ScopeRead: ok, ScopeWrite: denied, ScopeSchema: denied}},
		{"ES256 read write", iss.sign(t, "ec-1", iss.ec, jose.ES256, valid, "relata:read relata:write"),
			map[Scope]codes.Code{ScopeRead: ok, ScopeWrite: ok, ScopeSchema: denied}},
		{"no relata scope", iss.sign(t, "rsa-1", iss.rsa, jose.RS256, valid, "openid read"),
			map[Scope]codes.Code{ScopeRead: denied, ScopeWrite: denied, ScopeSchema: denied}},
		{"expired", iss.sign(t, "rsa-1", iss.rsa, jose.RS256, with(func(c *jwt.Claims) {
			c.Expiry = jwt.NewNumericDate(now.Add(-5 * time.Minute))
		}), "relata:read"), map[Scope]codes.Code{ScopeRead: unauth, ScopeWrite: unauth, ScopeSchema: unauth}},
		{"no exp", iss.sign(t, "rsa-1", iss.rsa, jose.RS256, with(func(c *jwt.Claims) { c.Expiry = nil }), "relata:read"),
			map[Scope]codes.Code{ScopeRead: unauth, ScopeWrite: unauth, ScopeSchema: unauth}},
		{"not yet valid", iss.sign(t, "rsa-1", iss.rsa, jose.RS256, with(func(c *jwt.Claims) {
			c.NotBefore = jwt.NewNumericDate(now.Add(10 * time.Minute))
		}), "relata:read"), map[Scope]codes.Code{ScopeRead: unauth, ScopeWrite: unauth, ScopeSchema: unauth}},
		{"wrong issuer", iss.sign(t, "rsa-1", iss.rsa, jose.RS256, with(func(c *jwt.Claims) { c.Issuer = "https://evil" }), "relata:read"),
			map[Scope]codes.Code{ScopeRead: unauth, ScopeWrite: unauth, ScopeSchema: unauth}},
		{"wrong audience", iss.sign(t, "rsa-1", iss.rsa, jose.RS256, with(func(c *jwt.Claims) { c.Audience = jwt.Audience{"other"} }), "relata:read"),
			map[Scope]codes.Code{ScopeRead: unauth, ScopeWrite: unauth, ScopeSchema: unauth}},
		{"unknown kid", iss.sign(t, "rsa-9", iss.rsa, jose.RS256, valid, "relata:read"),
			map[Scope]codes.Code{ScopeRead: unauth, ScopeWrite: unauth, ScopeSchema: unauth}},
		{"signed by the wrong key", iss.sign(t, "rsa-1", mustRSA(t), jose.RS256, valid, "relata:read"),
			map[Scope]codes.Code{ScopeRead: unauth, ScopeWrite: unauth, ScopeSchema: unauth}},
		{"HS256", iss.sign(t, "rsa-1", []byte("0123456789abcdef0123456789abcdef"), jose.HS256, valid, "relata:read"),
			map[Scope]codes.Code{ScopeRead: unauth, ScopeWrite: unauth, ScopeSchema: unauth}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, callAs(t, env, tc.token))
		})
	}
	// Within the clock skew an expired token still passes.
	skewed := iss.sign(t, "rsa-1", iss.rsa, jose.RS256, with(func(c *jwt.Claims) {
		c.Expiry = jwt.NewNumericDate(now.Add(-5 * time.Second))
	}), "relata:read")
	require.Equal(t, ok, callAs(t, env, skewed)[ScopeRead])

	// The error names why a token was refused.
	_, err := env.perms.Check(withToken(iss.sign(t, "rsa-1", iss.rsa, jose.RS256, with(func(c *jwt.Claims) {
		c.Audience = jwt.Audience{"other"}
	}), "relata:read")), checkReq("flow:f1", "execute", "user:anne"))
	require.Contains(t, status.Convert(err).Message(), `audience "other" does not include "relata"`)

	// REST: read-only JWT checks, and cannot write.
	readTok := iss.sign(t, "rsa-1", iss.rsa, jose.RS256, valid, "relata:read")
	code, body := env.postWithToken(t, "/v1/check", checkJSON("flow:f1", "execute", "user:anne", ""), readTok)
	require.Equal(t, 200, code, string(body))
	code, body = env.postWithToken(t, "/v1/schema/write", `{"schema":"definition user {}"}`, readTok)
	require.Equal(t, 403, code, string(body))
	require.Contains(t, string(body), relatav1.ErrorReason_MISSING_SCOPE.String())
}

func mustRSA(t *testing.T) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	return k
}

// TestOIDCKeyRotation: a token signed by a key the provider published after the
// server fetched the JWKS URL is accepted once the server fetches it again on the
// unknown key id.
func TestOIDCKeyRotation(t *testing.T) {
	iss := newTestIssuer(t)
	fetches := 0
	var mu sync.Mutex
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fetches++
		mu.Unlock()
		_, _ = w.Write(iss.jwks(t))
	}))
	defer ts.Close()
	env := newTestEnv(t, func(c *Config) {
		c.OIDC = &OIDCConfig{Issuer: "https://idp.example", Audience: "relata", JWKSURL: ts.URL}
	})
	claims := jwt.Claims{
		Issuer: "https://idp.example", Subject: "svc-a", Audience: jwt.Audience{"relata"},
		Expiry: jwt.NewNumericDate(time.Now().Add(time.Hour)),
	}
	require.Equal(t, codes.FailedPrecondition, callAs(t, env, iss.sign(t, "rsa-1", iss.rsa, jose.RS256, claims, "relata:read"))[ScopeRead],
		"a valid token gets past auth (no schema yet)")

	rotated := mustRSA(t)
	iss.mu.Lock()
	iss.set.Keys = append(iss.set.Keys, jose.JSONWebKey{Key: rotated.Public(), KeyID: "rsa-2", Algorithm: string(jose.RS256), Use: "sig"})
	iss.mu.Unlock()
	tok := iss.sign(t, "rsa-2", rotated, jose.RS256, claims, "relata:read")
	// Within minRefetch of the last fetch an unknown kid does not fetch again.
	require.Equal(t, codes.Unauthenticated, callAs(t, env, tok)[ScopeRead])
	env.srv.auth.oidc.refetchAfter.Store(0)
	require.Equal(t, codes.FailedPrecondition, callAs(t, env, tok)[ScopeRead])
	mu.Lock()
	require.GreaterOrEqual(t, fetches, 2)
	mu.Unlock()
}

func mustTuple(t *testing.T, s string) tuples.Tuple {
	t.Helper()
	tp, err := tuples.ParseTuple(s)
	require.NoError(t, err)
	return tp
}
