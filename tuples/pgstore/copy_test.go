package pgstore

import (
	"fmt"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/tuplestest"
)

// TestChangeBatchFormats: an import's change-log row decodes to its tuples, in order,
// whether stored plain (format 1, as written before version 5 of the binary) or
// compressed (format 2, as written now); a corrupt or unknown row fails with an
// error instead of yielding changes.
func TestChangeBatchFormats(t *testing.T) {
	later := time.Date(2031, 2, 3, 4, 5, 6, 123456789, time.UTC).Format(time.RFC3339Nano)
	ts := []tuples.Tuple{
		tuplestest.T(t, `doc:a#viewer@user:exp[expiration:`+later+`]`),
		tuplestest.T(t, `doc:b#viewer@group:eng#member`),
		tuplestest.T(t, `doc:c#viewer@user:ctx[on_net:{"cidr":"10.0.0.0/8"}]`),
		tuplestest.T(t, `doc:d#viewer@user:plain[on_net]`),
	}
	for i := range 1000 {
		ts = append(ts, tuplestest.T(t, fmt.Sprintf("flow:f%05d#granted@user:u%d", i, i%37)))
	}
	rows := encodeRows(ts)
	packed := s2.Encode(nil, rows.buf)
	require.Less(t, len(packed), len(rows.buf)/3, "the change log's copy compresses")

	const rev = tuples.Revision(42)
	for _, tc := range []struct {
		name   string
		format int16
		buf    []byte
	}{
		{"plain", changeBatchPlain, rows.buf},
		{"s2", changeBatchS2, packed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := decodeChangeBatch(tc.format, tc.buf, len(ts), rev)
			require.NoError(t, err)
			require.Len(t, cs, len(ts))
			for i, c := range cs {
				require.Equal(t, rev, c.Revision)
				require.Equal(t, tuples.OpTouch, c.Op)
				require.Equal(t, ts[i].String(), c.Tuple.String())
			}
		})
	}

	_, err := decodeChangeBatch(changeBatchS2, packed[:len(packed)/2], len(ts), rev)
	require.ErrorContains(t, err, "change batch")
	_, err = decodeChangeBatch(changeBatchS2, rows.buf, len(ts), rev) // not compressed
	require.Error(t, err)
	_, err = decodeChangeBatch(3, packed, len(ts), rev)
	require.ErrorContains(t, err, "format 3, this binary reads 1 and 2")
}
