package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/schema/models"
	"github.com/relata/relata/tuples"
)

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serveProc is `relata serve` running in-process.
type serveProc struct {
	grpcAddr, httpAddr string
	logs               *syncBuffer
	stop               func() int // cancels the command's context, returns its exit code
}

var servingLine = regexp.MustCompile(`msg="relata: serving" grpc=(\S+) http=(\S+)`)

// startServe runs `relata serve ARGS --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0`
// and waits until it logs where it listens.
func startServe(t *testing.T, args ...string) *serveProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan int, 1)
	args = append([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, args...)
	go func() { done <- Main(ctx, args, strings.NewReader(""), io.Discard, logs) }()
	p := &serveProc{logs: logs}
	var once sync.Once
	code := -1
	p.stop = func() int {
		once.Do(func() {
			cancel()
			code = <-done
		})
		return code
	}
	t.Cleanup(func() { p.stop() })
	for {
		if m := servingLine.FindStringSubmatch(logs.String()); m != nil {
			p.grpcAddr, p.httpAddr = m[1], m[2]
			return p
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d before serving:\n%s", code, logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func httpDo(t *testing.T, method, url, body, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestServe runs `relata serve --preshared-key K` on a fresh data directory: it loads
// the default model, answers the same on gRPC and REST, refuses requests without the
// key, maps bad input to 400/404, serves /openapi.json, and keeps its data across a
// restart.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, "--data-dir", dir, "--preshared-key", "K")
	require.Contains(t, p.logs.String(), "default model "+models.Default)
	t.Setenv("RELATA_ENDPOINT", p.grpcAddr)
	t.Setenv("RELATA_TOKEN", "K")
	base := "http://" + p.httpAddr

	out := runCLI("write tenant:acme#developer@user:anne tenant:acme#viewer@user:bob workspace:ops#tenant@tenant:acme flow:invoice-sync#workspace@workspace:ops flow:invoice-sync#user_denied@user:bob", "")
	zookie, ok := strings.CutSuffix(out, "\nexit 0\n")
	require.True(t, ok, out)
	rev, err := tuples.ParseZookie(zookie)
	require.NoError(t, err)
	require.Equal(t, tuples.Revision(2), rev)
	require.Equal(t, "allowed\nexit 0\n", runCLI("check flow:invoice-sync execute user:anne --consistency full", ""))
	out = runCLI("check flow:invoice-sync execute user:bob --consistency full --explain", "")
	require.True(t, strings.HasPrefix(out, "denied\n[-] flow:invoice-sync#execute\n"), out)
	require.True(t, strings.HasSuffix(out, "exit 3\n"), out)

	check := func(user string) string {
		return `{"object":{"type":"flow","id":"invoice-sync"},"permission":"execute","subject":{"object":{"type":"user","id":"` + user + `"}},"consistency":{"fullyConsistent":true}}`
	}
	code, body := httpDo(t, "POST", base+"/v1/check", check("anne"), "K")
	require.Equal(t, 200, code, body)
	require.JSONEq(t, `{"allowed":true,"checkedAt":"`+zookie+`"}`, body)
	code, body = httpDo(t, "POST", base+"/v1/check", check("bob"), "K")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"allowed":false`)

	code, _ = httpDo(t, "POST", base+"/v1/check", check("anne"), "")
	require.Equal(t, 401, code)
	code, _ = httpDo(t, "POST", base+"/v1/check", check("anne"), "wrong")
	require.Equal(t, 401, code)
	code, body = httpDo(t, "POST", base+"/v1/check", check("an ne"), "K")
	require.Equal(t, 400, code, body)
	require.Contains(t, body, "subject.object.id")
	code, body = httpDo(t, "POST", base+"/v1/check", strings.Replace(check("anne"), `"flow"`, `"flw"`, 1), "K")
	require.Equal(t, 404, code, body)
	require.Contains(t, body, "UNKNOWN_TYPE")
	code, _ = httpDo(t, "GET", base+"/openapi.json", "", "")
	require.Equal(t, 401, code, "the OpenAPI document needs a token")
	code, body = httpDo(t, "GET", base+"/openapi.json", "", "K")
	require.Equal(t, 200, code)
	require.Contains(t, body, `"/v1/check"`)
	code, body = httpDo(t, "GET", base+"/healthz", "", "")
	require.Equal(t, 200, code, body)

	require.Equal(t, ExitOK, p.stop())
	require.Contains(t, p.logs.String(), "relata: stopped")

	// Restart on the same directory: the schema and tuples are still there.
	p = startServe(t, "--data-dir", dir, "--preshared-key", "K")
	require.Contains(t, p.logs.String(), "serving the stored schema")
	t.Setenv("RELATA_ENDPOINT", p.grpcAddr)
	require.Equal(t, "allowed\nexit 0\n", runCLI("check flow:invoice-sync execute user:anne", ""))
	require.Equal(t, ExitOK, p.stop())
}

func TestServeFlags(t *testing.T) {
	t.Setenv("RELATA_QUANTIZATION", "soon")
	require.Contains(t, runCLI("serve --data-dir "+t.TempDir(), ""), "exit 2")
	t.Setenv("RELATA_QUANTIZATION", "")
	require.Contains(t, runCLI("serve --schema a.zed --model tenant-roles", ""), "exclude each other\nexit 2")
	require.Contains(t, runCLI("serve --cache-size lots", ""), "exit 2")

	// --model loads a bundled model; RELATA_* variables work like flags.
	t.Setenv("RELATA_MODEL", "tenant-roles")
	p := startServe(t, "--data-dir", t.TempDir())
	require.Contains(t, p.logs.String(), "model tenant-roles")
	require.Equal(t, ExitOK, p.stop())
}

// TestServeKeysFile: with --keys-file, a read-only key checks and is refused a write
// with 403 MISSING_SCOPE; a bad keys file stops serve with exit 1 naming the entry;
// incomplete OIDC flags are a usage error.
func TestServeKeysFile(t *testing.T) {
	dir := t.TempDir()
	keys := dir + "/keys.yaml"
	sum := func(k string) string {
		s := sha256.Sum256([]byte(k))
		return hex.EncodeToString(s[:])
	}
	require.NoError(t, os.WriteFile(keys, []byte("keys:\n"+
		"  - name: flow-runtime\n    sha256: "+sum("reader")+"\n    scopes: [read]\n"+
		"  - name: admin-console\n    sha256: "+sum("admin")+"\n    scopes: [read, write, schema, admin]\n"), 0o600))
	p := startServe(t, "--data-dir", dir+"/data", "--keys-file", keys)
	base := "http://" + p.httpAddr
	check := `{"object":{"type":"flow","id":"f"},"permission":"execute","subject":{"object":{"type":"user","id":"anne"}}}`
	write := `{"updates":[{"operation":"TOUCH","tuple":{"object":{"type":"tenant","id":"acme"},"relation":"viewer","subject":{"object":{"type":"user","id":"bob"}}}}]}`
	code, body := httpDo(t, "POST", base+"/v1/check", check, "reader")
	require.Equal(t, 200, code, body)
	code, body = httpDo(t, "POST", base+"/v1/tuples/write", write, "reader")
	require.Equal(t, 403, code, body)
	require.Contains(t, body, "MISSING_SCOPE")
	code, body = httpDo(t, "POST", base+"/v1/tuples/write", write, "admin")
	require.Equal(t, 200, code, body)
	code, _ = httpDo(t, "POST", base+"/v1/check", check, "")
	require.Equal(t, 401, code)
	require.Equal(t, ExitOK, p.stop())

	require.NoError(t, os.WriteFile(keys, []byte("keys:\n  - name: x\n    sha256: nothex\n    scopes: [read]\n"), 0o600))
	out := runCLI("serve --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --data-dir "+dir+"/data --keys-file "+keys, "")
	require.Contains(t, out, "keys[0] (x): sha256")
	require.True(t, strings.HasSuffix(out, "exit 1\n"), out)
	require.Contains(t, runCLI("serve --oidc-issuer https://idp --data-dir "+dir+"/data", ""), "--oidc-audience\nexit 2")
}

func TestServeLockedDataDir(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, "--data-dir", dir)
	out := runCLI("serve --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --data-dir "+dir, "")
	require.Contains(t, out, "is another relata serve using it?")
	require.True(t, strings.HasSuffix(out, "exit 1\n"), out)
	require.Equal(t, ExitOK, p.stop())
}

// TestServeSchemaNotLoaded: serve refuses to start (exit 1, one line naming the file
// and the reason) when the --schema or --model it was given cannot be written, rather
// than serving another schema than the one asked for; the store keeps its schema.
func TestServeSchemaNotLoaded(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, "--data-dir", dir)
	t.Setenv("RELATA_ENDPOINT", p.grpcAddr)
	out := runCLI("write tenant:acme#viewer@user:bob", "")
	z, ok := strings.CutSuffix(out, "\nexit 0\n")
	require.True(t, ok, out)
	rev, err := tuples.ParseZookie(z)
	require.NoError(t, err)
	require.Equal(t, tuples.Revision(2), rev)
	require.Equal(t, ExitOK, p.stop())

	files := t.TempDir()
	for _, tc := range []struct {
		name, schema string
		want         string
	}{
		{"syntax error", "definition user {", "bad.zed: schema: "},
		{"unknown type", "definition user {}\ndefinition flow { relation owner: nope }\n", "bad.zed:2:35: unknown type nope"},
		{"orphans a stored tuple", "definition user {}\n", "tenant:acme#viewer@user:bob"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := files + "/bad.zed"
			require.NoError(t, os.WriteFile(file, []byte(tc.schema), 0o644))
			out := runCLI("serve --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --data-dir "+dir+" --schema "+file, "")
			require.Contains(t, out, "relata: serve: schema not loaded: ")
			require.Contains(t, out, tc.want)
			require.True(t, strings.HasSuffix(out, "exit 1\n"), out)
			require.NotContains(t, out, `msg="relata: serving"`)
		})
	}

	// The store still serves the default model and the tuple.
	p = startServe(t, "--data-dir", dir)
	require.Contains(t, p.logs.String(), "serving the stored schema")
	t.Setenv("RELATA_ENDPOINT", p.grpcAddr)
	require.Equal(t, "tenant:acme#viewer@user:bob\nexit 0\n", runCLI("read tenant", ""))
	require.Equal(t, ExitOK, p.stop())
}
