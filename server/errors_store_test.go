package server

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/relata/relata/tuples"
)

// TestStoreFaultsAreUnavailable: a store that cannot reach its database, or lost the
// connection while a write committed, is UNAVAILABLE, the latter with reason
// WRITE_OUTCOME_UNKNOWN (never success, never a plain failure).
func TestStoreFaultsAreUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err    error
		reason string
	}{
		{fmt.Errorf("pgstore: contains: %w: dial tcp: connection refused", tuples.ErrUnavailable), ReasonUnavailable},
		{fmt.Errorf("pgstore: commit: %w: unexpected EOF", tuples.ErrWriteOutcomeUnknown), ReasonWriteOutcomeUnknown},
		{tuples.ErrClosed, ReasonUnavailable},
	} {
		code, reason, _ := classify(tc.err)
		require.Equal(t, codes.Unavailable, code, "%v", tc.err)
		require.Equal(t, tc.reason, reason, "%v", tc.err)
	}
}
