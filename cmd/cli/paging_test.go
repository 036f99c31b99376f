package cli

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPaging pages read and both lookups with --limit and the cursor each full page
// prints, and checks the pages add up to the unpaged answer.
func TestPaging(t *testing.T) {
	startServer(t, "sekret", -1)
	require.Contains(t, runCLI("schema write testdata/client_schema.zed", ""), "exit 0")
	var ts []string
	for _, u := range []string{"a", "b", "c", "d", "e"} {
		ts = append(ts, "flow:f"+u+"#granted@user:"+u, "flow:f"+u+"#granted@user:z")
	}
	require.Contains(t, runCLI("write "+strings.Join(ts, " "), ""), "exit 0")

	next := regexp.MustCompile(`(?m)^next page: --cursor (\S+)\n`)
	pages := func(base string) (all []string) {
		t.Helper()
		full := runCLI(base, "")
		require.True(t, strings.HasSuffix(full, "exit 0\n"), full)
		want := strings.Split(strings.TrimSuffix(full, "exit 0\n"), "\n")
		want = want[:len(want)-1]
		cursor := ""
		for range 10 {
			line := base + " --limit 2"
			if cursor != "" {
				line += " --cursor " + cursor
			}
			out := runCLI(line, "")
			require.True(t, strings.HasSuffix(out, "exit 0\n"), out)
			m := next.FindStringSubmatch(out)
			out = next.ReplaceAllString(strings.TrimSuffix(out, "exit 0\n"), "")
			got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if out == "" {
				got = nil
			}
			all = append(all, got...)
			if m == nil {
				require.Less(t, len(got), 2, "a page without a next cursor is the last: %q", out)
				break
			}
			require.Len(t, got, 2)
			cursor = m[1]
		}
		slices.Sort(all)
		slices.Sort(want)
		require.Equal(t, want, all, base)
		return all
	}
	require.Len(t, pages("read flow --consistency full"), 10)
	require.Len(t, pages("lookup-resources flow execute user:z --consistency full"), 5)
	require.Len(t, pages("lookup-subjects flow:fa execute user --consistency full"), 2)
	require.Contains(t, runCLI("read --help", ""), "next page: --cursor CURSOR")
}
