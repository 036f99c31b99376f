package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestREADMEQuickstart runs the shell blocks of README.md between the quickstart
// markers, as a newcomer would paste them: `./relata serve` starts the server
// in-process on a fresh data directory (loopback ports instead of :50051 and :8080),
// `./relata ARGS` runs the command line, `Z=$(./relata ...)` captures its output, and
// `curl` lines become HTTP requests. A trailing `# comment` states the expected result:
// "(exit N)" the exit code (default 0), its first word a line of the output; for curl,
// the JSON shown with "…" for the parts that vary.
func TestREADMEQuickstart(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	text := string(readme)
	begin := strings.Index(text, "<!-- quickstart:begin")
	end := strings.Index(text, "<!-- quickstart:end -->")
	require.True(t, begin >= 0 && end > begin, "README.md lacks the quickstart markers")
	lines := shellLines(text[begin:end])
	require.NotEmpty(t, lines)

	vars := map[string]string{}
	var p *serveProc
	capture := regexp.MustCompile(`^(\w+)=\$\((.*)\)$`)
	for _, line := range lines {
		cmdline, comment := splitComment(line)
		for k, v := range vars {
			cmdline = strings.ReplaceAll(cmdline, "$"+k, v)
		}
		t.Log(cmdline)
		switch {
		case strings.HasPrefix(cmdline, "go build "):
			// The test runs the commands in-process.
		case cmdline == "./relata serve":
			p = startServe(t, "--data-dir", t.TempDir())
			t.Setenv("RELATA_ENDPOINT", p.grpcAddr)
		case capture.MatchString(cmdline):
			m := capture.FindStringSubmatch(cmdline)
			out := runCLI(strings.TrimPrefix(m[2], "./relata "), "")
			require.True(t, strings.HasSuffix(out, "exit 0\n"), "%s:\n%s", cmdline, out)
			vars[m[1]] = strings.TrimSpace(strings.TrimSuffix(out, "exit 0\n"))
		case strings.HasPrefix(cmdline, "./relata "):
			require.NotNil(t, p, "a command before ./relata serve")
			out := runCLI(strings.TrimPrefix(cmdline, "./relata "), "")
			want := 0
			if m := regexp.MustCompile(`\(exit (\d+)\)`).FindStringSubmatch(comment); m != nil {
				want, _ = strconv.Atoi(m[1])
			}
			require.True(t, strings.HasSuffix(out, "exit "+strconv.Itoa(want)+"\n"), "%s:\n%s", cmdline, out)
			if f := strings.Fields(comment); len(f) > 0 {
				first := strings.TrimRight(f[0], ",")
				require.Contains(t, strings.Split(out, "\n"), first, "%s:\n%s", cmdline, out)
			}
		case strings.HasPrefix(cmdline, "curl "):
			require.NotNil(t, p, "a command before ./relata serve")
			args := splitArgs(cmdline)
			method, body, url := "GET", "", ""
			for i := 1; i < len(args); i++ {
				switch args[i] {
				case "-s":
				case "-d":
					method, body = "POST", args[i+1]
					i++
				default:
					url = args[i]
				}
			}
			url = "http://" + p.httpAddr + strings.TrimPrefix(url, "localhost:8080")
			code, got := httpDo(t, method, url, body, "")
			require.Equal(t, 200, code, "%s:\n%s", cmdline, got)
			for _, frag := range strings.Split(comment, "…") {
				require.Contains(t, got, frag, "%s", cmdline)
			}
		default:
			t.Fatalf("README quickstart line the test cannot run: %q", line)
		}
	}
	require.NotNil(t, p, "the quickstart never starts the server")
	require.Equal(t, ExitOK, p.stop())
}

// shellLines returns the lines of the ```sh blocks in text, continuation lines joined.
func shellLines(text string) []string {
	var out []string
	in := false
	cur := ""
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, "```sh"):
			in = true
			continue
		case strings.HasPrefix(l, "```"):
			in = false
			continue
		case !in:
			continue
		}
		l = strings.TrimSpace(l)
		if strings.HasSuffix(l, "\\") {
			cur += strings.TrimSuffix(l, "\\")
			continue
		}
		l, cur = cur+l, ""
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// splitComment splits a shell line at a `#` that starts a comment (outside quotes and
// after white space).
func splitComment(line string) (string, string) {
	quoted := false
	for i, r := range line {
		switch {
		case r == '\'':
			quoted = !quoted
		case r == '#' && !quoted && i > 0 && line[i-1] == ' ':
			return strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
		}
	}
	return strings.TrimSpace(line), ""
}
