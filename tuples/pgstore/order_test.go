package pgstore

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/tuplestest"
)

// importOrderData is 98,304 tuples (a store call of relata's import) shaped like
// relata bench's flows, in its generator's order.
func importOrderData() []tuples.Tuple {
	var ts []tuples.Tuple
	for f := 0; len(ts) < 96<<10; f++ {
		flow := tuples.ObjectRef{Type: "flow", ID: fmt.Sprintf("f%d", f)}
		user := func(u int) tuples.SubjectRef {
			return tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: fmt.Sprintf("u%d", u)}}
		}
		ts = append(ts,
			tuples.Tuple{Object: flow, Relation: "tenant", Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "tenant", ID: fmt.Sprintf("t%d", f%50)}}},
			tuples.Tuple{Object: flow, Relation: "owner", Subject: user(f * 7 % 5000)},
			tuples.Tuple{Object: flow, Relation: "shared_with", Subject: user(f * 13 % 5000)},
			tuples.Tuple{Object: flow, Relation: "shared_with", Subject: user(f * 17 % 5000)},
		)
	}
	return ts
}

// TestImportOrder: importOrder sorts like tuples.Compare and keeps the first of equal
// keys (by position), on data with ties in the first 16 bytes and duplicates.
func TestImportOrder(t *testing.T) {
	ts := importOrderData()[:20000]
	ts = append(ts, ts[:3000]...)                                     // duplicates, later in the stream
	ts = append(ts, tuplestest.T(t, `flow:f1#owner@user:u7[on_net]`)) // equal key, other caveat: not kept
	distinct := map[tuples.Tuple]bool{}
	for _, tp := range ts {
		tp.Caveat = nil
		distinct[tp] = true
	}
	got := importOrder(ts)
	require.Equal(t, len(distinct), len(got))
	for i := 1; i < len(got); i++ {
		if tuples.Compare(got[i-1], got[i]) >= 0 {
			t.Fatalf("position %d: %s after %s", i, got[i], got[i-1])
		}
	}
	for _, g := range got {
		require.Nil(t, g.Caveat)
	}
}

// BenchmarkImportOrder sorts an import's store call of 98,304 tuples as Import does
// (importOrder): shuffled, and in relata bench's generator order; no database.
func BenchmarkImportOrder(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	shuffled := make([]tuples.Tuple, 98304)
	for i := range shuffled {
		shuffled[i] = tuples.Tuple{Object: tuples.ObjectRef{Type: "flow", ID: fmt.Sprintf("t%d-f%d", rng.IntN(110), rng.IntN(1000))},
			Relation: "viewer", Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: fmt.Sprintf("u%d", rng.IntN(200))}}}
	}
	for _, bc := range []struct {
		name string
		ts   []tuples.Tuple
	}{{"shuffled", shuffled}, {"stream", importOrderData()}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				importOrder(bc.ts)
			}
		})
	}
}
