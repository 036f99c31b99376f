package server

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
)

func TestRequestIDs(t *testing.T) {
	g := newRequestIDs()
	for _, tc := range []struct {
		name, supplied string
		kept           bool
	}{
		{"sane", "req-1", true},
		{"longest", strings.Repeat("a", maxRequestIDLen), true},
		{"empty", "", false},
		{"too long", strings.Repeat("a", maxRequestIDLen+1), false},
		{"space", "req 1", false},
		{"control", "req\n1", false},
		{"not ASCII", "réq", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := g.id(tc.supplied)
			if tc.kept {
				require.Equal(t, tc.supplied, id)
				return
			}
			require.Len(t, id, 24)
			_, err := hex.DecodeString(id)
			require.NoError(t, err)
		})
	}
	// New ids are distinct and share the server's prefix; another server's differ.
	seen := map[string]bool{}
	for range 1000 {
		id := g.id("")
		require.False(t, seen[id], id)
		seen[id] = true
		require.Equal(t, hex.EncodeToString(g.prefix[:]), id[:12])
	}
	require.NotEqual(t, g.id("")[:12], newRequestIDs().id("")[:12])
}

// TestZookieMemo: the kept last zookie never answers for another revision.
func TestZookieMemo(t *testing.T) {
	env := newTestEnv(t)
	for _, rev := range []tuples.Revision{1, 1, 2, 1, 7, 7, 2} {
		require.Equal(t, env.srv.revs.zookies.Encode(rev), env.srv.Zookie(rev), "revision %d", rev)
	}
	require.NotEqual(t, env.srv.Zookie(1), env.srv.Zookie(2))
}
