package cli

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSchemaWriteOrphans writes schemas against a real server that stores tuples: a
// schema that removes a relation or an allowed subject type still in use is refused
// naming one tuple that uses it, and one whose removals no stored tuple uses is
// written.
func TestSchemaWriteOrphans(t *testing.T) {
	startServer(t, "", 0)
	const base = `definition user {}
definition role { relation member: user }
definition flow {
	relation granted: user | user:* | role#member
	relation denied: user
}`
	require.Contains(t, runCLI("schema write -", base), "exit 0")
	require.Contains(t, runCLI("write flow:public#granted@user:* flow:f1#granted@role:ops#member flow:f1#denied@user:bob", ""), "exit 0")

	tests := []struct {
		name   string
		schema string
		want   []string // parts of the transcript
	}{
		{
			name:   "removed relation in use",
			schema: strings.Replace(base, "relation denied: user", "", 1),
			want:   []string{"relation flow#denied removed", "flow:f1#denied@user:bob", "SCHEMA_ORPHANS_TUPLES", "exit 1"},
		},
		{
			name:   "removed wildcard in use",
			schema: strings.Replace(base, "user | user:* | role#member", "user | role#member", 1),
			want:   []string{"subject type user:* removed from flow#granted", "flow:public#granted@user:*", "exit 1"},
		},
		{
			name:   "removed userset in use",
			schema: strings.Replace(base, "user | user:* | role#member", "user | user:*", 1),
			want:   []string{"subject type role#member removed from flow#granted", "flow:f1#granted@role:ops#member", "exit 1"},
		},
		{
			// Only user:* is stored on flow#granted: dropping plain user orphans nothing.
			name:   "removed plain type while only its wildcard is stored",
			schema: strings.Replace(base, "user | user:* | role#member", "user:* | role#member", 1),
			want:   []string{"exit 0"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := runCLI("schema write -", tc.schema)
			for _, w := range tc.want {
				require.Contains(t, got, w)
			}
		})
	}
	// The last write landed: the server's schema no longer allows plain users there.
	require.Contains(t, runCLI("schema read", ""), "relation granted: user:* | role#member")
}

// TestSchemaWriteNamesTheFile: `schema write FILE` names FILE in the positions of a
// schema error, built from the ErrorInfo metadata the server sends (line, column,
// problem, errors), never from the message text.
func TestSchemaWriteNamesTheFile(t *testing.T) {
	startServer(t, "", 0)
	dir := t.TempDir()
	tests := []struct {
		name, schema, want string
	}{
		{"one error", "definition user {}\ndefinition flow { relation owner: nope }\n",
			"relata: schema: " + dir + "/bad.zed:2:35: unknown type nope in relation flow#owner (INVALID_SCHEMA)\nexit 1\n"},
		{"two errors", "definition flow {\n relation a: nope\n relation b: nada\n}\n",
			"relata: schema: " + dir + "/bad.zed:2:14: unknown type nope in relation flow#a (and 1 more errors) (INVALID_SCHEMA)\nexit 1\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := dir + "/bad.zed"
			require.NoError(t, os.WriteFile(file, []byte(tc.schema), 0o644))
			require.Equal(t, tc.want, runCLI("schema write "+file, ""))
		})
	}
}

// TestSchemaDiffAndHistory runs `schema diff`, `schema write --dry-run`, `schema
// history` and `schema read --at` against a real server.
func TestSchemaDiffAndHistory(t *testing.T) {
	startServer(t, "", 0)
	const base = `definition user {}
definition flow {
	relation granted: user
	relation denied: user
}`
	require.Contains(t, runCLI("schema write -", base), "exit 0")
	require.Contains(t, runCLI("write flow:f1#denied@user:bob flow:f2#denied@user:carl", ""), "exit 0")
	dropped := strings.Replace(base, "relation denied: user", "relation owner: user", 1)
	dir := t.TempDir()
	file := dir + "/next.zed"
	require.NoError(t, os.WriteFile(file, []byte(dropped), 0o644))

	got := runCLI("schema diff "+file, "")
	for _, w := range []string{
		"- relation flow#denied (relation denied: user): orphans 2 tuples, e.g. flow:f1#denied@user:bob",
		"+ relation flow#owner (relation owner: user)",
		"~ definition flow",
		"would orphan 2 stored tuples",
		"refused: schema: cannot write the schema: it would orphan 2 stored tuples: relation flow#denied removed, but 2 tuples still use it",
		"exit 1",
	} {
		require.Contains(t, got, w)
	}
	got = runCLI("schema diff --json "+file, "")
	require.Contains(t, got, `"refused":true`)
	require.Contains(t, got, `"orphanedTuples":"2"`)
	require.Contains(t, got, "exit 1")
	got = runCLI("schema write --dry-run "+file, "")
	require.Contains(t, got, "orphans 2 tuples")
	require.Contains(t, got, "exit 1")
	read := runCLI("schema read", "")
	require.Contains(t, read, "relation denied: user", "a dry run writes nothing")

	// A change that orphans nothing: exit 0, and the dry run says so.
	added := base + "\ndefinition team {}\n"
	got = runCLI("schema diff -", added)
	require.Contains(t, got, "+ definition team")
	require.Contains(t, got, "exit 0")
	got = runCLI("schema write --dry-run -", added)
	require.Contains(t, got, "Dry run: the write would succeed; nothing written.")
	require.Contains(t, got, "exit 0")
	require.Contains(t, runCLI("schema diff -", base), "No change")
	require.Contains(t, runCLI("schema diff -", "definition user {"), "exit 1")

	// History lists both writes, newest first; read --at prints each.
	require.Contains(t, runCLI("schema write -", added), "exit 0")
	hist := runCLI("schema history", "")
	require.Contains(t, hist, "exit 0")
	lines := strings.Split(strings.TrimSpace(hist), "\n")
	require.Len(t, lines, 3, hist) // two revisions and the exit line
	require.Contains(t, lines[0], "3 definitions")
	require.Contains(t, lines[1], "2 definitions")
	oldZookie := strings.Fields(lines[1])[0]
	got = runCLI("schema read --at "+oldZookie, "")
	require.Contains(t, got, "relation denied: user")
	require.NotContains(t, got, "team")
	require.Contains(t, runCLI("schema read --at "+oldZookie+" --consistency full", ""), "exit 2")
	require.Contains(t, runCLI("schema history --json --limit 1", ""), `"revisions":[{"writtenAt":`)
}
