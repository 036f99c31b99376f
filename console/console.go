// Package console is Relata's web console: a single-page application
// for the people who write schemas and debug permissions, served by `relata serve` at
// /ui/ on the HTTP port. It calls only the public REST API, with the caller's token.
//
// The sources live in web/ (JavaScript modules and npm dependencies pinned by
// web/package-lock.json); scripts/genconsole.sh bundles them with esbuild into dist/,
// which is committed like the generated protobuf code and embedded here, so the binary
// serves the console offline with nothing fetched at run time.
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed dist
var dist embed.FS

// Prefix is the path the console is served under.
const Prefix = "/ui/"

// Handler serves the console's assets under Prefix: Prefix itself is index.html, and
// models.json lists the bundled models (package schema/models) with their sections of
// docs/models.md, and every other path names a file of the embedded build (404 when
// there is none). The
// assets are public (they hold no data); the API calls the page makes carry the
// caller's token. Responses forbid loading anything from another origin.
func Handler() http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic("console: the embedded build has no dist directory: " + err.Error())
	}
	files := http.FileServerFS(sub)
	modelsBody, modelsErr := modelsJSON()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, Prefix)
		if !ok {
			http.NotFound(w, r)
			return
		}
		if name == "" {
			name = "index.html"
		}
		name = path.Clean(name)
		h := w.Header()
		if name == "models.json" {
			setHeaders(h)
			serveModels(w, modelsBody, modelsErr)
			return
		}
		if _, err := fs.Stat(sub, name); err != nil || strings.HasPrefix(name, ".") {
			http.NotFound(w, r)
			return
		}
		setHeaders(h)
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path = "/" + name
		r2.URL = &u
		if name == "index.html" {
			// FileServer redirects /index.html to ./; serve the file's bytes instead.
			b, err := fs.ReadFile(sub, name)
			if err != nil {
				http.Error(w, "console: "+err.Error(), http.StatusInternalServerError)
				return
			}
			h.Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(b)
			return
		}
		files.ServeHTTP(w, r2)
	})
}

// setHeaders sets the headers of every asset: no other origin, no sniffing, revalidate.
func setHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
}
