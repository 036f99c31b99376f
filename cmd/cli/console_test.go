package cli

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// The web console driven in a real headless Chromium against a real
// `relata serve` on loopback. Chromium is Debian's `chromium` package; without it these
// tests skip, except under CI=true, where they fail.

// chromiumPath returns the Chromium executable, or skips (fails under CI=true).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("RELATA_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("console browser tests: Chromium not found (CI=true): install Debian's chromium, or set RELATA_CHROMIUM")
	}
	t.Skip("console browser tests: Chromium not found; run them with `apt-get install chromium` (or RELATA_CHROMIUM=PATH)")
	return ""
}

// chromiumFlags are the flags every Chromium run here gets: headless, sandbox off (root
// in CI), and nothing that reaches the network on its own.
var chromiumFlags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
}

// newBrowser starts a headless Chromium with a fresh profile, at 1280x800, and returns
// a tab context that ends with the test.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	for _, f := range chromiumFlags {
		opts = append(opts, chromedp.Flag(strings.TrimPrefix(f, "--"), true))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	require.NoError(t, chromedp.Do(bctx, chromedp.EmulateViewport(1280, 800)), "starting Chromium")
	return bctx
}

// open navigates to the console route (the part after /ui/) and waits for the app to
// mount.
func open(t *testing.T, ctx context.Context, base, route string) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/ui/"+route),
		chromedp.WaitReady(`main[data-panel]`),
	), "opening %s", route)
}

// waitJS polls the JavaScript expression until it is truthy and returns its value.
func waitJS[T any](t *testing.T, ctx context.Context, what, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Poll[T](expr, chromedp.WithPollingTimeout(60*time.Second)))
	if err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("main") ? document.querySelector("main").innerText : document.body.innerText`))
		t.Fatalf("waiting for %s: %v\npage:\n%s", what, err, body)
	}
	return v
}

func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err, expr)
	return v
}

func checkLink(object, permission, subject string) string {
	return "#/check?" + url.Values{"object": {object}, "permission": {permission}, "subject": {subject}}.Encode()
}

// answerAfter waits for the check panel's answer word.
const answerJS = `(() => { const e = document.querySelector('[data-testid="check-result"]'); return e ? e.textContent : (document.querySelector('[data-testid="check-error"]') || {}).textContent && "error: " + document.querySelector('[data-testid="check-error"]').textContent; })()`

// writeTuples writes tuples over REST, as a client other than the console would.
func writeTuples(t *testing.T, base, token string, tuples ...string) {
	t.Helper()
	var ups []string
	for _, s := range tuples {
		obj, rest, _ := strings.Cut(s, "#")
		rel, subj, _ := strings.Cut(rest, "@")
		ot, oid, _ := strings.Cut(obj, ":")
		st, sid, _ := strings.Cut(subj, ":")
		ups = append(ups, fmt.Sprintf(`{"operation":"TOUCH","tuple":{"object":{"type":%q,"id":%q},"relation":%q,"subject":{"object":{"type":%q,"id":%q}}}}`, ot, oid, rel, st, sid))
	}
	code, body := httpDo(t, "POST", base+"/v1/tuples/write", `{"updates":[`+strings.Join(ups, ",")+`]}`, token)
	require.Equal(t, 200, code, body)
}

// TestConsoleCheckDeepLink: the deep link opens the check panel filled in, runs it, and
// shows the answer word and the explain tree, for an allowed and a denied check; the
// same link in `chromium --dump-dom` renders "allowed".
func TestConsoleCheckDeepLink(t *testing.T) {
	chromium := chromiumPath(t)
	p := startServe(t, "--data-dir", t.TempDir())
	base := "http://" + p.httpAddr
	writeTuples(t, base, "", "flow:f1#owner@user:anne")
	ctx := newBrowser(t)

	for _, tc := range []struct {
		subject, want, explainHas string
	}{
		{"user:anne", "allowed", "flow:f1#owner@user:anne"},
		{"user:bob", "denied", "flow:f1#execute"},
	} {
		open(t, ctx, base, checkLink("flow:f1", "execute", tc.subject))
		require.Equal(t, tc.want, waitJS[string](t, ctx, "the answer", answerJS), tc.subject)
		require.Equal(t, "flow:f1", evalJS[string](t, ctx, `document.querySelector('[data-testid="check-object"]').value`))
		require.Equal(t, tc.subject, evalJS[string](t, ctx, `document.querySelector('[data-testid="check-subject"]').value`))
		explain := evalJS[string](t, ctx, `document.querySelector('[data-testid="explain"]').textContent`)
		require.Contains(t, explain, tc.explainHas, tc.subject)
		// The tree is collapsible: a node with children is a <details>.
		require.True(t, evalJS[bool](t, ctx, `document.querySelectorAll('[data-testid="explain"] details').length > 0`))
	}

	// What the "done when" runs: chromium --dump-dom on the deep link.
	cmd := exec.Command(chromium, append(append([]string{}, chromiumFlags...),
		"--user-data-dir="+t.TempDir(), "--dump-dom", "--virtual-time-budget=10000",
		base+"/ui/"+checkLink("flow:f1", "execute", "user:anne"))...)
	out, err := cmd.Output()
	require.NoError(t, err)
	require.Regexp(t, `data-testid="check-result"[^>]*>allowed<`, string(out))
}

// TestConsoleSchema: the schema view shows the schema text and a diagram; the editor
// shows a schema error at its line (in the editor and in the list) and writes nothing.
func TestConsoleSchema(t *testing.T) {
	p := startServe(t, "--data-dir", t.TempDir(), "--model", "flow-overrides")
	base := "http://" + p.httpAddr
	ctx := newBrowser(t)

	open(t, ctx, base, "#/schema")
	text := waitJS[string](t, ctx, "the schema text", `(document.querySelector('[data-testid="schema-text"]') || {}).textContent`)
	require.Contains(t, text, "definition flow {")
	require.True(t, waitJS[bool](t, ctx, "the diagram", `document.querySelectorAll('[data-testid="schema-diagram"] svg g.node').length > 0`))
	require.True(t, evalJS[bool](t, ctx, `!!document.querySelector('[data-testid="schema-diagram"] g.node[data-definition="flow"]')`))
	require.True(t, evalJS[bool](t, ctx, `document.querySelectorAll('[data-testid="schema-diagram"] g.edge-arrow').length > 0`), "arrows drawn for ->")

	open(t, ctx, base, "#/schema/edit")
	waitJS[bool](t, ctx, "the editor", `!!(document.querySelector('[data-testid="schema-editor"]') || {}).cmView`)
	bad := "definition user {}\ndefinition doc {\n    relation viewer: usr\n}\n"
	evalJS[bool](t, ctx, fmt.Sprintf(`(() => { const v = document.querySelector('[data-testid="schema-editor"]').cmView; v.dispatch({changes: {from: 0, to: v.state.doc.length, insert: %q}}); return true; })()`, bad))
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(`[data-testid="schema-write"]`)))
	line := waitJS[string](t, ctx, "the schema error", `(document.querySelector('[data-testid="schema-error-item"]') || {}).dataset?.line`)
	require.Equal(t, "3", line)
	item := evalJS[string](t, ctx, `document.querySelector('[data-testid="schema-error-item"]').textContent`)
	require.Regexp(t, `^3:\d+: .*usr`, item)
	// The editor marks the error where it is: a lint range on line 3 and a gutter marker.
	require.True(t, waitJS[bool](t, ctx, "the lint mark", `(() => { const m = document.querySelector('.cm-lintRange-error'); return !!m && m.closest('.cm-line') === document.querySelectorAll('.cm-content .cm-line')[2]; })()`))
	require.True(t, evalJS[bool](t, ctx, `!!document.querySelector('.cm-lint-marker-error')`))

	// Nothing was written: the server still serves flow-overrides.
	code, body := httpDo(t, "POST", base+"/v1/schema/read", `{"consistency":{"fullyConsistent":true}}`, "")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, "definition flow {")
}

// TestConsoleRelationshipsChangeCheck: a tuple written in the relationships view turns
// a denied check into an allowed one, and the filtered list shows it.
func TestConsoleRelationshipsChangeCheck(t *testing.T) {
	p := startServe(t, "--data-dir", t.TempDir())
	base := "http://" + p.httpAddr
	writeTuples(t, base, "", "flow:f1#owner@user:anne", "flow:f2#owner@user:carl")
	ctx := newBrowser(t)

	open(t, ctx, base, checkLink("flow:f1", "execute", "user:carl"))
	require.Equal(t, "denied", waitJS[string](t, ctx, "the answer", answerJS))

	open(t, ctx, base, "#/relationships?filter=flow:f1")
	rows := func() string {
		return `Array.from(document.querySelectorAll('[data-testid="tuple-row"]')).map(r => r.textContent.replace(/Delete$/, "")).join("\n")`
	}
	require.Equal(t, "flow:f1#owner@user:anne", waitJS[string](t, ctx, "the tuple rows", rows()))
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(`[data-testid="tuple-input"]`, "flow:f1#owner@user:carl"),
		chromedp.Click(`[data-testid="tuple-write"]`),
	))
	waitJS[bool](t, ctx, "the write", `!!document.querySelector('[data-testid="write-ok"]') || (document.querySelector('[data-testid="rel-error"]') || {}).textContent`)
	require.True(t, evalJS[bool](t, ctx, `!!document.querySelector('[data-testid="write-ok"]')`), evalJS[string](t, ctx, `document.querySelector("main").innerText`))
	require.Equal(t, "flow:f1#owner@user:anne\nflow:f1#owner@user:carl",
		waitJS[string](t, ctx, "two rows", `(() => { const s = `+rows()+`; return s.includes("carl") && s; })()`))

	open(t, ctx, base, checkLink("flow:f1", "execute", "user:carl"))
	require.Equal(t, "allowed", waitJS[string](t, ctx, "the answer", answerJS))
}

// TestConsoleTokenPrompt: on a server with --preshared-key, the console asks for the
// token, asks again when it is refused (401), keeps it in sessionStorage only, and then
// answers the deep link.
func TestConsoleTokenPrompt(t *testing.T) {
	p := startServe(t, "--data-dir", t.TempDir(), "--preshared-key", "sesame")
	base := "http://" + p.httpAddr
	writeTuples(t, base, "sesame", "flow:f1#owner@user:anne")
	ctx := newBrowser(t)

	// The console's assets load without a token.
	code, body := httpDo(t, "GET", base+"/ui/", "", "")
	require.Equal(t, 200, code)
	require.Contains(t, body, "app.js")

	prompt := `(document.querySelector('[data-testid="token-prompt"]') || {}).open`
	open(t, ctx, base, checkLink("flow:f1", "execute", "user:anne"))
	require.True(t, waitJS[bool](t, ctx, "the token prompt", prompt))
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(`[data-testid="token-input"]`, "wrong"),
		chromedp.Click(`[data-testid="token-submit"]`),
	))
	msg := waitJS[string](t, ctx, "the prompt again", `document.querySelector('[data-testid="token-prompt"]').open && document.querySelector('[data-testid="token-prompt"] .hint').textContent`)
	require.Contains(t, msg, "refused")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(`[data-testid="token-input"]`, "sesame"),
		chromedp.Click(`[data-testid="token-submit"]`),
	))
	// The panel still shows the 401 of the first try until the retry answers.
	require.True(t, waitJS[bool](t, ctx, "the answer allowed", answerJS+` === "allowed"`))
	require.False(t, evalJS[bool](t, ctx, prompt+" === true"))
	require.Equal(t, "sesame", evalJS[string](t, ctx, `sessionStorage.getItem("relata.token")`))
	require.False(t, evalJS[bool](t, ctx, `Object.keys(localStorage).some(k => localStorage.getItem(k).includes("sesame"))`))
}

// TestConsolePanels: lookups stream into the table with a count, watch shows a change
// written elsewhere, and the models panel loads a bundled model's schema.
func TestConsolePanels(t *testing.T) {
	p := startServe(t, "--data-dir", t.TempDir())
	base := "http://" + p.httpAddr
	writeTuples(t, base, "", "flow:f1#owner@user:anne", "flow:f2#owner@user:anne", "flow:f3#owner@user:bob")
	ctx := newBrowser(t)

	open(t, ctx, base, "#/lookups?kind=resources&type=flow&permission=execute&subject=user:anne")
	count := waitJS[string](t, ctx, "the lookup count", `(() => { const c = document.querySelector('[data-testid="lookup-count"]').textContent; return / at /.test(c) && c; })()`)
	require.True(t, strings.HasPrefix(count, "2 results at "), count)
	require.Equal(t, "flow:f1 flow:f2", evalJS[string](t, ctx, `Array.from(document.querySelectorAll('[data-testid="lookup-row"] td:nth-child(2)')).map(e => e.textContent).sort().join(" ")`))

	open(t, ctx, base, "#/watch")
	waitJS[bool](t, ctx, "the feed", `/^Live/.test(document.querySelector('[data-testid="watch-state"]').textContent)`)
	writeTuples(t, base, "", "flow:f4#owner@user:carl")
	require.Contains(t, waitJS[string](t, ctx, "the change", `(document.querySelector('[data-testid="watch-row"]') || {}).textContent`), "flow:f4#owner@user:carl")

	// Loading a model is refused while tuples would be orphaned (the error is shown), and
	// works on a fresh server.
	open(t, ctx, base, "#/models?name=tenant-roles")
	waitJS[bool](t, ctx, "the model", `!!document.querySelector('.doc h2, .doc h3')`)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(`[data-testid="model-load"]`)))
	require.Contains(t, waitJS[string](t, ctx, "the refusal", `(document.querySelector('[data-testid="model-error"]') || {}).textContent`), "SCHEMA_ORPHANS_TUPLES")

	fresh := startServe(t, "--data-dir", t.TempDir())
	fbase := "http://" + fresh.httpAddr
	open(t, ctx, fbase, "#/models?name=tenant-roles")
	waitJS[bool](t, ctx, "the model", `!!document.querySelector('[data-testid="model-load"]')`)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(`[data-testid="model-load"]`)))
	waitJS[bool](t, ctx, "the load", `!!document.querySelector('[data-testid="model-loaded"]')`)
	code, body := httpDo(t, "POST", fbase+"/v1/schema/read", `{"consistency":{"fullyConsistent":true}}`, "")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, "tenant-roles")
}

// TestConsoleOff: --ui=false answers 404 at /ui/, with or without a key; the API stays.
func TestConsoleOff(t *testing.T) {
	for _, args := range [][]string{{"--ui=false"}, {"--ui=false", "--preshared-key", "K"}} {
		p := startServe(t, append([]string{"--data-dir", t.TempDir()}, args...)...)
		base := "http://" + p.httpAddr
		for _, path := range []string{"/ui/", "/ui/app.js", "/ui"} {
			code, _ := httpDo(t, "GET", base+path, "", "")
			require.Equal(t, 404, code, "%v GET %s", args, path)
		}
		code, _ := httpDo(t, "GET", base+"/healthz", "", "")
		require.Equal(t, 200, code)
		require.Equal(t, ExitOK, p.stop())
	}
	// On by default.
	p := startServe(t, "--data-dir", t.TempDir())
	code, body := httpDo(t, "GET", "http://"+p.httpAddr+"/ui/", "", "")
	require.Equal(t, 200, code)
	require.Contains(t, body, "<title>Relata console</title>")
}

// TestConsoleScreenshots writes the screenshots of docs/console.md (1280x800 PNGs) into
// $RELATA_CONSOLE_SCREENSHOTS: RELATA_CONSOLE_SCREENSHOTS=$PWD/docs/console go test
// -run TestConsoleScreenshots ./cmd/cli/. Without the variable it skips.
func TestConsoleScreenshots(t *testing.T) {
	dir := os.Getenv("RELATA_CONSOLE_SCREENSHOTS")
	if dir == "" {
		t.Skip("set RELATA_CONSOLE_SCREENSHOTS=DIR to write the console's screenshots")
	}
	p := startServe(t, "--data-dir", t.TempDir())
	base := "http://" + p.httpAddr
	writeTuples(t, base, "",
		"tenant:acme#developer@user:anne", "tenant:acme#viewer@user:bob", "workspace:ops#tenant@tenant:acme",
		"flow:invoice-sync#workspace@workspace:ops", "flow:invoice-sync#user_denied@user:bob",
		"flow:payroll#workspace@workspace:ops", "flow:payroll#owner@user:carl", "flow:reports#workspace@workspace:ops")
	ctx := newBrowser(t)
	shot := func(name string) {
		t.Helper()
		b, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(dir+"/"+name+".png", b, 0o644))
	}
	open(t, ctx, base, "#/schema")
	waitJS[bool](t, ctx, "the diagram", `document.querySelectorAll('g.node').length > 0`)
	shot("schema")
	pm := startServe(t, "--data-dir", t.TempDir(), "--model", "tenant-roles")
	open(t, ctx, "http://"+pm.httpAddr, "#/schema")
	waitJS[bool](t, ctx, "the diagram", `document.querySelectorAll('g.node').length > 0`)
	shot("schema-tenant-roles")

	open(t, ctx, base, "#/schema/edit")
	waitJS[bool](t, ctx, "the editor", `!!(document.querySelector('[data-testid="schema-editor"]') || {}).cmView`)
	evalJS[bool](t, ctx, `(() => { const v = document.querySelector('[data-testid="schema-editor"]').cmView; const i = v.state.doc.toString().indexOf("definition flow {"); v.dispatch({changes: {from: i, to: i, insert: "definition draft {\n    relation editor: usr\n    permission edit = editor + owner\n}\n\n"}, selection: {anchor: i}, scrollIntoView: true}); return true; })()`)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(`[data-testid="schema-write"]`)))
	waitJS[bool](t, ctx, "the errors", `!!document.querySelector('[data-testid="schema-error-item"]')`)
	shot("schema-editor")

	open(t, ctx, base, checkLink("flow:invoice-sync", "execute", "user:anne"))
	waitJS[string](t, ctx, "the answer", answerJS)
	shot("check-allowed")
	open(t, ctx, base, checkLink("flow:invoice-sync", "execute", "user:bob"))
	waitJS[string](t, ctx, "the answer", answerJS)
	shot("check-denied")

	open(t, ctx, base, "#/lookups?kind=resources&type=flow&permission=execute&subject=user:anne")
	waitJS[bool](t, ctx, "the count", `/results? at/.test(document.querySelector('[data-testid="lookup-count"]').textContent)`)
	shot("lookups")

	open(t, ctx, base, "#/relationships?filter=flow")
	waitJS[bool](t, ctx, "the rows", `document.querySelectorAll('[data-testid="tuple-row"]').length > 0`)
	shot("relationships")

	open(t, ctx, base, "#/watch")
	waitJS[bool](t, ctx, "the feed", `/Live/.test(document.querySelector('[data-testid="watch-state"]').textContent)`)
	writeTuples(t, base, "", "flow:reports#owner@user:dana", "role:ops#member@user:olga")
	waitJS[bool](t, ctx, "the changes", `document.querySelectorAll('[data-testid="watch-row"]').length >= 2`)
	shot("watch")

	open(t, ctx, base, "#/models?name=flow-overrides")
	waitJS[bool](t, ctx, "the models", `document.querySelectorAll('[data-testid="model"]').length > 0 && !!document.querySelector('.doc')`)
	shot("models")

	open(t, ctx, base, checkLink("flow:invoice-sync", "execute", "user:bob"))
	waitJS[string](t, ctx, "the answer", answerJS)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(`[data-testid="theme"]`)))
	shot("check-dark")

	pk := startServe(t, "--data-dir", t.TempDir(), "--preshared-key", "K")
	open(t, ctx, "http://"+pk.httpAddr, "#/schema")
	waitJS[bool](t, ctx, "the token prompt", `(document.querySelector('[data-testid="token-prompt"]') || {}).open`)
	shot("token")
}

// TestConsoleSchemaDiff: as you type, the editor shows the server's diff, with the
// stored tuples a removal would orphan and the server's refusal; nothing is written.
func TestConsoleSchemaDiff(t *testing.T) {
	dir := t.TempDir()
	const schemaText = "definition user {}\ndefinition doc {\n    relation viewer: user\n    relation editor: user\n}\n"
	require.NoError(t, os.WriteFile(dir+"/s.zed", []byte(schemaText), 0o644))
	p := startServe(t, "--data-dir", dir+"/data", "--schema", dir+"/s.zed")
	base := "http://" + p.httpAddr
	writeTuples(t, base, "", "doc:1#viewer@user:anne", "doc:2#viewer@user:bob")
	ctx := newBrowser(t)

	open(t, ctx, base, "#/schema/edit")
	waitJS[bool](t, ctx, "the editor", `!!(document.querySelector('[data-testid="schema-editor"]') || {}).cmView`)
	next := "definition user {}\ndefinition doc {\n    relation editor: user\n    relation owner: user\n}\n"
	evalJS[bool](t, ctx, fmt.Sprintf(`(() => { const v = document.querySelector('[data-testid="schema-editor"]').cmView; v.dispatch({changes: {from: 0, to: v.state.doc.length, insert: %q}}); return true; })()`, next))
	refusal := waitJS[string](t, ctx, "the refusal", `(document.querySelector('[data-testid="schema-diff-refused"]') || {}).textContent`)
	require.Contains(t, refusal, "relation doc#viewer removed, but 2 tuples still use it")
	items := evalJS[string](t, ctx, `Array.from(document.querySelectorAll('[data-testid="schema-diff-item"]')).map(li => li.textContent).join("\n")`)
	require.Contains(t, items, "− relation doc#viewer — relation viewer: user (orphans 2 tuples, e.g. doc:1#viewer@user:anne)")
	require.Contains(t, items, "+ relation doc#owner")

	code, body := httpDo(t, "POST", base+"/v1/schema/read", `{"consistency":{"fullyConsistent":true}}`, "")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, "relation viewer: user", "the diff wrote nothing")
}

// TestConsoleBatchedPages: the console reads and looks up with batched results (many a
// message): the relationships panel pages 50 tuples at a time with Next enabled exactly
// while more remain (also when a page ends at the last tuple), and a lookup of more
// results than one batch holds shows them all.
func TestConsoleBatchedPages(t *testing.T) {
	p := startServe(t, "--data-dir", t.TempDir())
	base := "http://" + p.httpAddr
	for start := 0; start < 1100; start += 500 {
		var ts []string
		for i := start; i < min(start+500, 1100); i++ {
			ts = append(ts, fmt.Sprintf("flow:b%04d#owner@user:dana", i))
		}
		writeTuples(t, base, "", ts...)
	}
	writeTuples(t, base, "", "tenant:t1#admin@user:x1", "tenant:t1#admin@user:x2")
	var fifty []string
	for i := range 50 {
		fifty = append(fifty, fmt.Sprintf("tenant:t2#admin@user:y%02d", i))
	}
	writeTuples(t, base, "", fifty...)
	ctx := newBrowser(t)

	open(t, ctx, base, "#/lookups?kind=resources&type=flow&permission=execute&subject=user:dana")
	count := waitJS[string](t, ctx, "the lookup count", `(() => { const c = document.querySelector('[data-testid="lookup-count"]').textContent; return / at /.test(c) && c; })()`)
	require.True(t, strings.HasPrefix(count, "1100 results at "), count)
	require.Equal(t, 1100, evalJS[int](t, ctx, `document.querySelectorAll('[data-testid="lookup-row"]').length`))

	info := `document.querySelector('[data-testid="rel-info"]').textContent`
	nextOn := `!document.querySelector('[data-testid="page-next"]').disabled`
	open(t, ctx, base, "#/relationships?filter=flow")
	require.Contains(t, waitJS[string](t, ctx, "page 1", `(() => { const s = `+info+`; return /^Page 1/.test(s) && s; })()`), "50 tuples, more on the next page")
	require.True(t, evalJS[bool](t, ctx, nextOn))
	require.Equal(t, "flow:b0000#owner@user:dana", evalJS[string](t, ctx, `document.querySelector('[data-testid="tuple-row"] code').textContent`))
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(`[data-testid="page-next"]`)))
	waitJS[bool](t, ctx, "page 2", `/^Page 2/.test(`+info+`)`)
	require.Equal(t, "flow:b0050#owner@user:dana", evalJS[string](t, ctx, `document.querySelector('[data-testid="tuple-row"] code').textContent`))

	// Two tuples: one page, no next one.
	open(t, ctx, base, "#/relationships?filter=tenant:t1")
	require.Equal(t, "Page 1: 2 tuples.", waitJS[string](t, ctx, "the page", `(() => { const s = `+info+`; return /^Page 1/.test(s) && s; })()`))
	require.False(t, evalJS[bool](t, ctx, nextOn))
	// Exactly a page: no next one either.
	open(t, ctx, base, "#/relationships?filter=tenant:t2")
	require.Equal(t, "Page 1: 50 tuples.", waitJS[string](t, ctx, "the page", `(() => { const s = `+info+`; return /^Page 1/.test(s) && s; })()`))
	require.False(t, evalJS[bool](t, ctx, nextOn))
}
