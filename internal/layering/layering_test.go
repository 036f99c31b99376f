package layering

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// module is the module path; patterns below are relative to it unless they contain a
// dot in their first element (a third-party module).
const module = "github.com/relata/relata"

// rule forbids packages matching from to depend on packages matching any of deny.
// With direct, only direct imports count; otherwise every transitive (non-test)
// dependency does, so that an upward arrow cannot hide behind a middle package.
type rule struct {
	from   string
	deny   []string
	direct bool
	except []string // packages matching from that the rule does not apply to
	why    string
}

// stores is the set of store implementations: every package under tuples/ but the
// conformance suite. It is expanded from the package list.
const stores = "<stores>"

// rules are the allowed arrows of docs/architecture.md, written as what each layer must not reach.
var rules = []rule{
	{from: "=tuples", deny: []string{"schema", "check", "server", "cmd", "client", "validation", "proto", stores},
		why: "tuples is the bottom layer: tuple types, zookies and the store contract"},
	{from: "tuples/tuplestest", deny: []string{"schema", "check", "server", "cmd", "client", "validation", "proto", stores},
		why: "the store conformance suite tests any store through the tuples contract"},
	{from: stores, deny: []string{"check", "schema", "server", "cmd", "client", "validation", "proto", stores},
		why: "stores never import check, the API or each other"},
	{from: "schema", deny: []string{"check", "server", "cmd", "client", "validation", "proto", stores, "google.golang.org/grpc", "github.com/cockroachdb/pebble"},
		why: "schema sits below check and never touches a store or the wire"},
	{from: "check", deny: []string{"server", "cmd", "client", "validation", "proto", stores, "google.golang.org/grpc", "github.com/cockroachdb/pebble"},
		why: "check never imports a store, pebble, proto or grpc; it reads through tuples.Reader"},
	{from: "server/writes", deny: []string{"proto", "google.golang.org/grpc", "github.com/grpc-ecosystem/grpc-gateway"},
		why: "the write path lives below the transports"},
	{from: "client", deny: []string{"check", "server", "cmd", "validation", stores, "schema"},
		why: "the client is the wire only, never the engine"},
	{from: "validation", deny: []string{"cmd", "client", "proto", "google.golang.org/grpc"},
		why: "the validation runner works offline, without the wire"},
	{from: "bench", deny: []string{"cmd"}, why: "only cmd/relata imports the commands"},
	{from: "...", deny: []string{"cmd/cli"}, except: []string{"cmd/..."}, direct: true,
		why: "the commands are imported by cmd/relata only"},
	{from: "...", deny: []string{"github.com/grpc-ecosystem/grpc-gateway"}, except: []string{"server/...", "proto/..."}, direct: true,
		why: "server alone imports grpc-gateway (and the generated gateway code in proto)"},
}

// pkg is one package of the module with its direct imports and transitive deps.
type pkg struct {
	path          string
	imports, deps []string
}

// listPackages runs go list over the module.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \" \"}}|{{join .Deps \" \"}}", module+"/...").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.SplitN(line, "|", 3)
		if len(parts) != 3 {
			t.Fatalf("go list: unexpected line %q", line)
		}
		pkgs = append(pkgs, pkg{path: parts[0], imports: strings.Fields(parts[1]), deps: strings.Fields(parts[2])})
	}
	return pkgs
}

// isStore reports whether path is a store implementation (tuples/X, X ≠ tuplestest).
func isStore(path string) bool {
	rest, ok := strings.CutPrefix(path, module+"/tuples/")
	return ok && rest != "tuplestest" && !strings.HasPrefix(rest, "tuplestest/")
}

// storeRoot is the store a store package belongs to: tuples/X for tuples/X/....
func storeRoot(path string) string {
	rest := strings.TrimPrefix(path, module+"/tuples/")
	root, _, _ := strings.Cut(rest, "/")
	return root
}

// matches reports whether path matches pattern: a module-relative package and its
// subpackages ("check" matches check and check/x, as does "check/..."), "=X" X alone,
// "..." every module package, stores every store, and a third-party prefix.
func matches(path, pattern string) bool {
	switch {
	case pattern == stores:
		return isStore(path)
	case strings.HasPrefix(pattern, "="):
		return path == module+"/"+pattern[1:]
	case pattern == "...":
		return path == module || strings.HasPrefix(path, module+"/")
	}
	pattern = strings.TrimSuffix(pattern, "/...")
	if first, _, _ := strings.Cut(pattern, "/"); !strings.Contains(first, ".") {
		pattern = module + "/" + pattern
	}
	return path == pattern || strings.HasPrefix(path, pattern+"/")
}

func matchesAny(path string, patterns []string) bool {
	for _, p := range patterns {
		if matches(path, p) {
			return true
		}
	}
	return false
}

// TestImportsPointDown fails when a package reaches one it must not (an upward or
// sideways import). To add a package, give it a place in rules.
func TestImportsPointDown(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("layering: the go command is not on PATH; run with Go installed")
	}
	touchSources(t)
	pkgs := listPackages(t)
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for _, r := range rules {
		for _, p := range pkgs {
			if !matches(p.path, r.from) || matchesAny(p.path, r.except) {
				continue
			}
			// A rule's own layer may import itself (check/x imports check), except
			// stores, which may not import each other.
			reach := p.deps
			if r.direct {
				reach = p.imports
			}
			reported := map[string]bool{} // one error per denied pattern
			for _, d := range reach {
				if d == p.path || !matchesAny(d, r.deny) {
					continue
				}
				if r.from != stores && matches(d, r.from) {
					continue
				}
				if r.from == stores && storeRoot(d) == storeRoot(p.path) {
					continue // a store's own subpackages
				}
				pattern := ""
				for _, dp := range r.deny {
					if matches(d, dp) {
						pattern = dp
						break
					}
				}
				if reported[pattern] {
					continue
				}
				reported[pattern] = true
				t.Errorf("%s must not import %s (directly or through another package): %s",
					strings.TrimPrefix(p.path, module+"/"), strings.TrimPrefix(d, module+"/"), r.why)
			}
		}
	}
}

// TestRulesMatch checks the pattern language the rules use.
func TestRulesMatch(t *testing.T) {
	tests := []struct {
		path, pattern string
		want          bool
	}{
		{module + "/check", "check", true},
		{module + "/check/x", "check", true},
		{module + "/checker", "check", false},
		{module + "/tuples", "=tuples", true},
		{module + "/tuples/pebblestore", "=tuples", false},
		{module + "/tuples/pebblestore", stores, true},
		{module + "/tuples/tuplestest", stores, false},
		{module + "/tuples", stores, false},
		{module + "/server/writes", "server/...", true},
		{"google.golang.org/grpc/codes", "google.golang.org/grpc", true},
		{"google.golang.org/grpcx", "google.golang.org/grpc", false},
		{module + "/proto/relata/v1", "...", true},
		{"github.com/cockroachdb/pebble/v2", "github.com/cockroachdb/pebble", true},
	}
	for _, tc := range tests {
		if got := matches(tc.path, tc.pattern); got != tc.want {
			t.Errorf("matches(%q, %q) = %v, want %v", tc.path, tc.pattern, got, tc.want)
		}
	}
}

// touchSources stats every directory and Go file of the module, so that go test's
// result cache, which cannot see what the go list subprocess read, reruns this test
// whenever a source file changes.
func touchSources(t *testing.T) {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("layering: the module root is not two levels up: %v", err)
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while walking (another test's temporary file)
		}
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || strings.HasSuffix(path, ".go") {
			if _, err := os.Stat(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
