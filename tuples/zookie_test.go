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

// zookiesArg returns the codec named by a directive's arguments: store=ID (absent: no
// id) and unnamed-through=REV.
func zookiesArg(t *testing.T, td *datadriven.TestData) Zookies {
	var id Identity
	if td.HasArg("store") {
		td.ScanArgs(t, "store", &id.ID)
	}
	if td.HasArg("unnamed-through") {
		var n uint64
		td.ScanArgs(t, "unnamed-through", &n)
		id.UnnamedThrough = Revision(n)
	}
	return NewZookies(id)
}

// TestZookie runs testdata/zookie: `encode` takes revisions, `decode` and `parse`
// take zookies, one a line; encode and decode name their store with store=ID and
// unnamed-through=REV. Regenerate with -update.
func TestZookie(t *testing.T) {
	runDataDriven(t, "testdata/zookie", func(t *testing.T, td *datadriven.TestData) string {
		var out strings.Builder
		z := zookiesArg(t, td)
		for _, line := range strings.Split(td.Input, "\n") {
			switch td.Cmd {
			case "encode":
				rev, err := strconv.ParseUint(line, 10, 64)
				require.NoError(t, err)
				fmt.Fprintf(&out, "%s → %s\n", line, z.Encode(Revision(rev)))
			case "decode", "parse":
				decode := z.Decode
				if td.Cmd == "parse" {
					decode = ParseZookie
				}
				rev, err := decode(line)
				if err != nil {
					require.ErrorIs(t, err, ErrInvalidZookie)
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

// TestZookieStores: two stores with fresh ids give different zookies for one
// revision, and each refuses the other's.
func TestZookieStores(t *testing.T) {
	a, b := NewZookies(Identity{ID: NewStoreID()}), NewZookies(Identity{ID: NewStoreID()})
	for _, rev := range []Revision{0, 1, 42} {
		za, zb := a.Encode(rev), b.Encode(rev)
		require.NotEqual(t, za, zb)
		got, err := a.Decode(za)
		require.NoError(t, err)
		require.Equal(t, rev, got)
		_, err = b.Decode(za)
		require.ErrorIs(t, err, ErrInvalidZookie)
		require.ErrorContains(t, err, "names another store")
		_, err = a.Decode(zb)
		require.ErrorIs(t, err, ErrInvalidZookie)
		got, err = ParseZookie(zb)
		require.NoError(t, err)
		require.Equal(t, rev, got)
	}
}

func TestZookieTamper(t *testing.T) {
	for _, z := range []Zookies{NewZookies(Identity{ID: "s1"}), NewZookies(Identity{ID: "s1", UnnamedThrough: math.MaxUint64}), {}} {
		for _, rev := range []Revision{0, 1, 42, 1 << 40, math.MaxUint64} {
			zk := z.Encode(rev)
			if z == (Zookies{}) {
				// A version-1 zookie, as stores issued before they had ids.
				z = NewZookies(Identity{ID: "s1", UnnamedThrough: math.MaxUint64})
			}
			got, err := z.Decode(zk)
			require.NoError(t, err)
			require.Equal(t, rev, got)
			// Every single-character edit is rejected.
			const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			for i := range zk {
				for _, c := range alphabet {
					if byte(c) == zk[i] {
						continue
					}
					edited := zk[:i] + string(c) + zk[i+1:]
					_, err := z.Decode(edited)
					require.ErrorIs(t, err, ErrInvalidZookie, "edited %q → %q", zk, edited)
				}
			}
		}
	}
}

// FuzzZookie checks that decoding never panics, that a token decodes only if it is
// exactly the encoding of its revision, and that encoding round-trips.
func FuzzZookie(f *testing.F) {
	z := NewZookies(Identity{ID: "fuzz", UnnamedThrough: math.MaxUint64})
	f.Add("", uint64(0))
	f.Add(z.Encode(7), uint64(7))
	f.Add("AQAAAAAAAAAH", uint64(math.MaxUint64))
	f.Add("AQAAAAAAAAAqKeSoBQ", uint64(42))
	f.Fuzz(func(t *testing.T, s string, rev uint64) {
		if got, err := z.Decode(s); err == nil {
			if s != z.Encode(got) {
				require.Equal(t, s, Zookies{}.Encode(got)) // a version-1 zookie
			}
		} else {
			require.ErrorIs(t, err, ErrInvalidZookie)
		}
		got, err := z.Decode(z.Encode(Revision(rev)))
		require.NoError(t, err)
		require.Equal(t, Revision(rev), got)
	})
}
