package keyorder

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOrder: keys with long common prefixes, short keys and duplicates come out as a
// stable bytewise sort puts them.
func TestOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var keys [][]byte
	for range 5000 {
		k := []byte("flow\x00f")
		for range rng.IntN(30) {
			k = append(k, "ab\x00z"[rng.IntN(4)])
		}
		keys = append(keys, k[:rng.IntN(len(k)+1)])
	}
	keys = append(keys, nil, []byte{0}, []byte{0, 0})
	got := Order(len(keys), func(i int) (b [16]byte) {
		copy(b[:], keys[i])
		return b
	}, func(i, j int32) int {
		if c := bytes.Compare(keys[i], keys[j]); c != 0 {
			return c
		}
		return int(i - j)
	})
	want := make([]int32, len(keys))
	for i := range want {
		want[i] = int32(i)
	}
	slices.SortStableFunc(want, func(i, j int32) int { return bytes.Compare(keys[i], keys[j]) })
	require.Equal(t, want, got)
}
