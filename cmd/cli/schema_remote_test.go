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
