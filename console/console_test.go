package console_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/console"
)

// TestHandler serves the embedded build under /ui/: index.html at the prefix, the
// bundle beside it, 404 for anything else, and a policy that forbids other origins.
func TestHandler(t *testing.T) {
	h := console.Handler()
	for _, tc := range []struct {
		path     string
		code     int
		ctype    string
		contains string
	}{
		{"/ui/", 200, "text/html", `<script type="module" src="app.js">`},
		{"/ui/index.html", 200, "text/html", "<title>Relata console</title>"},
		{"/ui/app.js", 200, "javascript", "/v1/check"},
		{"/ui/app.css", 200, "text/css", "--bg"},
		{"/ui/models.json", 200, "application/json", `"doc": "## flow-overrides — `},
		{"/ui/nope.js", 404, "", ""},
		{"/ui/../console.go", 404, "", ""},
		{"/ui/.hidden", 404, "", ""},
		{"/other", 404, "", ""},
	} {
		t.Run(tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			res := rec.Result()
			body, _ := io.ReadAll(res.Body)
			require.Equal(t, tc.code, res.StatusCode, string(body))
			if tc.code != 200 {
				return
			}
			require.Contains(t, res.Header.Get("Content-Type"), tc.ctype)
			require.Contains(t, string(body), tc.contains)
			require.True(t, strings.HasPrefix(res.Header.Get("Content-Security-Policy"), "default-src 'self'"))
			require.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
		})
	}
}
