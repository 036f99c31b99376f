package server

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestUserMessage(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"tuples: no schema written", "no schema written"},
		{"pebblestore: check: max depth 50 exceeded", "max depth 50 exceeded"},
		{"updates[0].tuple: schema: subject role:ops#member is not allowed", "updates[0].tuple: schema: subject role:ops#member is not allowed"},
		{"consistency: tuples: invalid zookie \"x\"", "consistency: invalid zookie \"x\""},
		{"cannot reach the server: dial tcp", "cannot reach the server: dial tcp"},
		{"relationship flow:check: x", "relationship flow:check: x"},
	} {
		require.Equal(t, tc.want, UserMessage(tc.in), tc.in)
	}
}
