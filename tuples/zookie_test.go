package tuples

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/stretchr/testify/require"
)

// TestZookie runs testdata/zookie: `encode` takes revisions, `decode` takes zookies,
// one a line. Regenerate with -rewrite.
func TestZookie(t *testing.T) {
	datadriven.RunTest(t, "testdata/zookie", func(t *testing.T, td *datadriven.TestData) string {
		var out strings.Builder
		for _, line := range strings.Split(td.Input, "\n") {
			switch td.Cmd {
			case "encode":
				rev, err := strconv.ParseUint(line, 10, 64)
				require.NoError(t, err)
				fmt.Fprintf(&out, "%s → %s\n", line, EncodeZookie(Revision(rev)))
			case "decode":
				rev, err := DecodeZookie(line)
				if err != nil {
					fmt.Fprintf(&out, "%s → error: %v\n", line, err)
					continue
				}
				fmt.Fprintf(&out, "%s → %d\n", line, rev)
			default:
				t.Fatalf("unknown command %q", td.Cmd)
			}
		}
		return out.String()
	})
}

func TestZookieTamper(t *testing.T) {
	for _, rev := range []Revision{0, 1, 42, 1 << 40, math.MaxUint64} {
		z := EncodeZookie(rev)
		got, err := DecodeZookie(z)
		require.NoError(t, err)
		require.Equal(t, rev, got)
		// Every single-character edit is rejected.
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		for i := range z {
			for _, c := range alphabet {
				if byte(c) == z[i] {
					continue
				}
				edited := z[:i] + string(c) + z[i+1:]
				_, err := DecodeZookie(edited)
				require.ErrorIs(t, err, ErrInvalidZookie, "edited %q → %q", z, edited)
			}
		}
	}
}

// FuzzZookie checks that decoding never panics, that a token decodes only if it is
// exactly the encoding of its revision, and that encoding round-trips.
func FuzzZookie(f *testing.F) {
	f.Add("", uint64(0))
	f.Add(EncodeZookie(7), uint64(7))
	f.Add("AQAAAAAAAAAH", uint64(math.MaxUint64))
	f.Fuzz(func(t *testing.T, z string, rev uint64) {
		if got, err := DecodeZookie(z); err == nil {
			require.Equal(t, z, EncodeZookie(got))
		} else {
			require.ErrorIs(t, err, ErrInvalidZookie)
		}
		got, err := DecodeZookie(EncodeZookie(Revision(rev)))
		require.NoError(t, err)
		require.Equal(t, Revision(rev), got)
	})
}
