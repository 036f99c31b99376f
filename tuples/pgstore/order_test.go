package pgstore

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/relata/relata/tuples"
)

// BenchmarkImportOrder sorts an import batch of 98,304 tuples in shuffled order, as
// Import's staging does (importOrder); it needs no database.
func BenchmarkImportOrder(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	ts := make([]tuples.Tuple, 98304)
	for i := range ts {
		ts[i] = tuples.Tuple{Object: tuples.ObjectRef{Type: "flow", ID: fmt.Sprintf("t%d-f%d", rng.IntN(110), rng.IntN(1000))},
			Relation: "viewer", Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: fmt.Sprintf("u%d", rng.IntN(200))}}}
	}
	b.ResetTimer()
	for range b.N {
		importOrder(ts)
	}
}
