package server

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/relata/relata/tuples"

	relatav1 "github.com/relata/relata/proto/relata/v1"
)

// TestStoreFaultsAreUnavailable: a store that cannot reach its database, or lost the
// connection while a write committed, is UNAVAILABLE, the latter with reason
// WRITE_OUTCOME_UNKNOWN (never success, never a plain failure).
func TestStoreFaultsAreUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err    error
		reason string
	}{
		{fmt.Errorf("contains: %w: dial tcp: connection refused", tuples.ErrUnavailable), relatav1.ErrorReason_UNAVAILABLE.String()},
		{fmt.Errorf("commit: %w: unexpected EOF", tuples.ErrWriteOutcomeUnknown), relatav1.ErrorReason_WRITE_OUTCOME_UNKNOWN.String()},
		{tuples.ErrClosed, relatav1.ErrorReason_UNAVAILABLE.String()},
	} {
		code, reason, _ := classify(tc.err)
		require.Equal(t, codes.Unavailable, code, "%v", tc.err)
		require.Equal(t, tc.reason, reason.String(), "%v", tc.err)
	}
}
