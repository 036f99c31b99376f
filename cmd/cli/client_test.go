package cli

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/relata/relata/server"
	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/pebblestore"
)

// startServer runs a real server on loopback ports over an in-memory Pebble store and
// points the client commands at it through RELATA_ENDPOINT and RELATA_TOKEN. It
// returns the REST base URL.
func startServer(t *testing.T, token string, quantization int64) (*server.Server, string) {
	t.Helper()
	store, err := pebblestore.Open("db", &pebblestore.Options{FS: vfs.NewMem()})
	require.NoError(t, err)
	srv, err := server.New(server.Config{
		Store: store, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		PresharedKey: token, Quantization: -1,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, store.Close())
	})
	t.Setenv("RELATA_ENDPOINT", srv.GRPCAddr().String())
	t.Setenv("RELATA_TOKEN", token)
	return srv, "http://" + srv.HTTPAddr().String()
}

// runCLI runs one relata command line and returns its transcript: standard output,
// standard error, and the exit code.
func runCLI(line string, stdin string) string {
	var out, errOut bytes.Buffer
	code := Main(context.Background(), splitArgs(line), strings.NewReader(stdin), &out, &errOut)
	return out.String() + errOut.String() + fmt.Sprintf("exit %d\n", code)
}

// splitArgs splits a command line at spaces, keeping 'single-quoted' parts whole.
func splitArgs(line string) []string {
	var args []string
	var cur strings.Builder
	quoted, inArg := false, false
	for _, r := range line {
		switch {
		case r == '\'':
			quoted, inArg = !quoted, true
		case r == ' ' && !quoted:
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(r)
			inArg = true
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args
}

// zookieText matches what may be a zookie in a transcript (versions 1 and 2).
var zookieText = regexp.MustCompile(`\bA[Qg][A-Za-z0-9_-]{16}(?:[A-Za-z0-9_-]{5})?\b`)

// zookieName matches ZOOKIE@REV in a command line.
var zookieName = regexp.MustCompile(`ZOOKIE@([0-9]+)`)

// maskZookies writes the zookies in a transcript as ZOOKIE@REV: a store's zookies
// name its random id, so they differ from run to run.
func maskZookies(out string) string {
	return zookieText.ReplaceAllStringFunc(out, func(z string) string {
		rev, err := tuples.ParseZookie(z)
		if err != nil {
			return z
		}
		return fmt.Sprintf("ZOOKIE@%d", rev)
	})
}

// TestClientCommands runs testdata/client.txt: each case is a relata command line
// against a real server, and its expected stdout, stderr and exit code. Zookies are
// written ZOOKIE@REV, in command lines and transcripts. Regenerate with -update.
func TestClientCommands(t *testing.T) {
	srv, _ := startServer(t, "sekret", -1)
	runDataDriven(t, "testdata/client.txt", func(t *testing.T, d *datadriven.TestData) string {
		switch d.Cmd {
		case "relata":
			line := zookieName.ReplaceAllStringFunc(strings.TrimSpace(d.Input), func(m string) string {
				rev, err := strconv.ParseUint(m[len("ZOOKIE@"):], 10, 64)
				require.NoError(t, err)
				return srv.Zookie(tuples.Revision(rev))
			})
			return maskZookies(runCLI(line, ""))
		case "env":
			for _, a := range d.CmdArgs {
				t.Setenv(a.Key, strings.Join(a.Vals, ","))
			}
			return ""
		}
		t.Fatalf("unknown directive %q", d.Cmd)
		return ""
	})
}

// TestArgCountIsUsage: a wrong number of arguments is a usage error (exit 2) told in
// one line that shows the command's usage, before any server is contacted.
func TestArgCountIsUsage(t *testing.T) {
	for _, tc := range []struct{ line, usage string }{
		{"check flow:f1 execute", "relata check OBJECT PERMISSION SUBJECT"},
		{"check a b c d", "relata check OBJECT PERMISSION SUBJECT"},
		{"check-bulk", "relata check-bulk OBJECT#PERMISSION@SUBJECT..."},
		{"expand flow:f1", "relata expand OBJECT RELATION | OBJECT#RELATION"},
		{"expand flow:f1 a b", "relata expand OBJECT RELATION | OBJECT#RELATION"},
		{"lookup-resources flow execute", "relata lookup-resources TYPE PERMISSION SUBJECT"},
		{"lookup-subjects flow:f1 execute", "relata lookup-subjects OBJECT PERMISSION SUBJECT_TYPE[#RELATION]"},
		{"write", "relata write TUPLE..."},
		{"create", "relata create TUPLE..."},
		{"delete", "relata delete TUPLE... | --filter FILTER [--subject SUBJECT]"},
		{"read flow tenant", "relata read [TYPE[:ID][#RELATION]]"},
		{"export flow tenant", "relata export [TYPE[:ID][#RELATION]]"},
		{"import a b", "relata import [FILE|-]"},
		{"schema write a b", "relata schema write FILE | --model NAME"},
		{"schema format", "relata schema format FILE"},
	} {
		t.Run(tc.line, func(t *testing.T) {
			t.Setenv("RELATA_ENDPOINT", "127.0.0.1:1") // nothing listens: no call may be made
			out := runCLI(tc.line, "")
			require.True(t, strings.HasSuffix(out, "(usage: "+tc.usage+")\nexit 2\n"), out)
			require.Equal(t, 2, strings.Count(out, "\n"), out)
		})
	}
}

// TestExitCodeRule: a malformed value in an argument (tuple, object, subject, name,
// zookie) is an error (exit 1, as the server's INVALID_ARGUMENT would be), while a
// malformed command line (unknown flag, flag value of the wrong kind or outside its
// choices) is a usage error (exit 2); both are one line naming the problem.
func TestExitCodeRule(t *testing.T) {
	for _, tc := range []struct {
		line, want string
		code       int
	}{
		{"check flow execute user:anne", `invalid object "flow"`, ExitError},
		{"check flow:f1 execute 'user:an ne'", `"an ne"`, ExitError},
		{"check Flow:f1 execute user:anne", `"Flow"`, ExitError},
		{"check flow:f1 execute user:anne --consistency AQAAAAAAAAADnYgXZg", "INVALID_ZOOKIE", ExitError},
		{"write garbage", `invalid tuple "garbage"`, ExitError},
		{"create flow:f1#owner", `invalid tuple "flow:f1#owner"`, ExitError},
		{"delete 'flow:f1#owner@user:an ne'", `"an ne"`, ExitError},
		{"check-bulk flow:f1#execute@user:anne nope", `invalid tuple "nope"`, ExitError},
		{"expand flow granted", `invalid object "flow"`, ExitError},
		{"lookup-resources flow execute user", `invalid subject "user"`, ExitError},
		{"lookup-subjects flow execute user", `invalid object "flow"`, ExitError},
		{"check flow:f1 execute user:anne --bogus", "unknown flag: --bogus", ExitUsage},
		{"read --limit lots", `invalid argument "lots" for "--limit"`, ExitUsage},
		{"export --format json", "unknown flag: --format", ExitUsage},
		{"import --format yaml", `--format "yaml"`, ExitUsage},
		{"lookup-subjects flow:f1 execute role#member --subject-relation owner", "disagree", ExitUsage},
	} {
		t.Run(tc.line, func(t *testing.T) {
			t.Setenv("RELATA_ENDPOINT", "127.0.0.1:1") // nothing listens: no call may be made
			out := runCLI(tc.line, "")
			require.True(t, strings.HasSuffix(out, fmt.Sprintf("\nexit %d\n", tc.code)), out)
			require.Equal(t, 2, strings.Count(out, "\n"), out)
			require.True(t, strings.HasPrefix(out, "relata: "), out)
			require.Contains(t, out, tc.want)
		})
	}
}

func TestSplitArgs(t *testing.T) {
	require.Equal(t, []string{"check", "flow:f 1", "execute", "x"}, splitArgs("check 'flow:f 1' execute  x"))
	require.Equal(t, []string{"a", ""}, splitArgs("a ''"))
}

func TestByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"0", 0, false}, {"1024", 1024, false}, {"64MiB", 64 << 20, false}, {"2 GiB", 2 << 30, false},
		{"1KB", 1024, false}, {"-1", 0, true}, {"lots", 0, true},
	} {
		var b byteSize
		err := b.Set(tc.in)
		if tc.err {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, int64(b), tc.in)
	}
}
