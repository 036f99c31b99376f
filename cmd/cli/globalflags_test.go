package cli

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestClientFlagsBeforeCommand: the client flags may stand before the command, as with
// zed, and act exactly as after it; anything else before the command is a usage error
// that names the flag and runs nothing.
func TestClientFlagsBeforeCommand(t *testing.T) {
	srv, _ := startServer(t, "sekret", -1)
	addr := srv.GRPCAddr().String()
	t.Setenv("RELATA_ENDPOINT", "127.0.0.1:1") // only the flags can reach the server
	t.Setenv("RELATA_TOKEN", "")

	run := func(line string) string { return runCLI(line, "") }
	zookie := regexp.MustCompile(`^[A-Za-z0-9_-]+\nexit 0\n$`)
	require.Regexp(t, zookie, run("--endpoint "+addr+" --insecure --token sekret schema write testdata/client_schema.zed"))
	written := run("--endpoint=" + addr + " --token=sekret --insecure=true write role:ops#member@user:anne")
	require.Regexp(t, zookie, written)
	written, _, _ = strings.Cut(written, "\n")
	out := run("--endpoint " + addr + " --insecure --token sekret schema read")
	require.True(t, strings.HasPrefix(out, "definition "), out)
	require.True(t, strings.HasSuffix(out, "exit 0\n"), out)
	// Before and after mix; --json before the command reaches the command.
	require.Equal(t, `{"allowed":true,"checkedAt":"`+written+`"}`+"\nexit 0\n",
		normalizeJSONLine(t, run("--endpoint "+addr+" --json check role:ops member user:anne --token sekret --consistency full")))
	require.Equal(t, "role:ops#member@user:anne\nexit 0\n",
		run("--token sekret --endpoint "+addr+" read role --consistency full"))

	for _, tc := range []struct{ line, want string }{
		// An unknown flag before the command never runs a command, and names the flag.
		{"--no-such-flag check a:b c d:e", "relata: unknown flag: --no-such-flag"},
		{"-x check a:b c d:e", "relata: unknown flag: -x"},
		// Before #12, --insecure took "schema" as its value and `write F` ran.
		{"--endpoint " + addr + " --bogus schema write testdata/client_schema.zed", "relata: unknown flag: --bogus"},
		// A command without client flags refuses them, wherever they stand.
		{"--endpoint " + addr + " serve", "relata: unknown flag: --endpoint"},
		{"--endpoint " + addr + " schema format testdata/client_schema.zed", "relata: unknown flag: --endpoint"},
		{"--endpoint " + addr + " nosuch", `relata: unknown command "nosuch"`},
		{"--endpoint", "relata: flag needs an argument: --endpoint"},
		{"--insecure", "relata: client flags --insecure given but no command"},
	} {
		t.Run(tc.line, func(t *testing.T) {
			out := run(tc.line)
			require.True(t, strings.HasPrefix(out, tc.want), out)
			require.True(t, strings.HasSuffix(out, "\nexit 2\n"), out)
			require.Equal(t, 2, strings.Count(out, "\n"), "one line, then the exit code: %s", out)
		})
	}
}

// normalizeJSONLine re-encodes the first line of out (JSON) with sorted keys.
func normalizeJSONLine(t *testing.T, out string) string {
	t.Helper()
	line, rest, _ := strings.Cut(out, "\n")
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(line), &m), out)
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return string(b) + "\n" + rest
}

// TestJSONErrors: with --json every error is one JSON object on standard error with
// the gRPC code, the reason and the message.
func TestJSONErrors(t *testing.T) {
	srv, _ := startServer(t, "sekret", -1)
	addr := srv.GRPCAddr().String()
	require.Contains(t, runCLI("schema write testdata/client_schema.zed", ""), "exit 0")
	for _, tc := range []struct {
		line                  string
		exit                  int
		code, reason, message string
	}{
		{"check nosuch:x view user:anne --json", ExitError, "NOT_FOUND", "UNKNOWN_TYPE", `unknown type "nosuch"`},
		{"--json check flow:f1 execute user:anne --consistency AQAAAAAAAAADnYgXZg", ExitError, "INVALID_ARGUMENT", "INVALID_ZOOKIE", "--consistency"},
		{"--json write garbage", ExitError, "INVALID_ARGUMENT", "INVALID_REQUEST", `invalid tuple "garbage"`},
		{"--json check a:b c", ExitUsage, "INVALID_ARGUMENT", "INVALID_REQUEST", "accepts 3 arg(s), received 2"},
		{"check a:b c d:e --json --bogus", ExitUsage, "INVALID_ARGUMENT", "INVALID_REQUEST", "unknown flag: --bogus"},
		{"--json --token wrong --endpoint " + addr + " schema read", ExitError, "UNAUTHENTICATED", "UNAUTHENTICATED", "invalid bearer token"},
		{"--json --endpoint 127.0.0.1:1 schema read", ExitError, "UNAVAILABLE", "UNAVAILABLE", "cannot reach the server"},
	} {
		t.Run(tc.line, func(t *testing.T) {
			var out, errOut strings.Builder
			code := Main(t.Context(), splitArgs(tc.line), strings.NewReader(""), &out, &errOut)
			require.Equal(t, tc.exit, code, errOut.String())
			require.Empty(t, out.String())
			require.Equal(t, 1, strings.Count(errOut.String(), "\n"), errOut.String())
			var body struct {
				Error map[string]string `json:"error"`
			}
			dec := json.NewDecoder(strings.NewReader(errOut.String()))
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(&body), errOut.String())
			require.Equal(t, tc.code, body.Error["code"], errOut.String())
			require.Equal(t, tc.reason, body.Error["reason"], errOut.String())
			require.Contains(t, body.Error["message"], tc.message)
			require.NotContains(t, body.Error["message"], "("+tc.reason+")", "the reason is not repeated in the message")
			require.Len(t, body.Error, 3, "code, reason and message: %s", errOut.String())
		})
	}
}

// TestVersion: `relata version` and `relata --version` print the same line.
func TestVersion(t *testing.T) {
	v := runCLI("version", "")
	require.Regexp(t, `^relata \S+ \(revision \S+.*\) go\S+\nexit 0\n$`, v)
	require.Equal(t, v, runCLI("--version", ""))
	var got buildVersion
	out := runCLI("version --json", "")
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSuffix(out, "exit 0\n")), &got), out)
	require.Equal(t, readBuildVersion(), got)
}
