package pebblestore

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
)

// BenchmarkSubjectsSmall scans one object#relation holding ten tuples (or none, for
// a missing object) among 100,000, from parallel goroutines: the engine's most
// frequent read, as a loaded server issues it. One op is one whole scan.
func BenchmarkSubjectsSmall(b *testing.B) {
	s := preload(b, 100_000, benchTuple)
	ctx := context.Background()
	r, err := s.ReaderAt(ctx, tuples.Revision(s.head.Load()))
	require.NoError(b, err)
	for _, missing := range []bool{false, true} {
		b.Run(fmt.Sprintf("missing=%t", missing), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					id := "flow-" + fmt.Sprint((i*7919)%10_000)
					if missing {
						id = "nope-" + fmt.Sprint(i%10_000)
					}
					i++
					n := 0
					for _, err := range r.Subjects(ctx, tuples.ObjectRef{Type: "flow", ID: id}, "granted", "") {
						if err != nil {
							b.Fatal(err)
						}
						n++
					}
					if !missing && n != 10 {
						b.Fatalf("%s: %d tuples, want 10", id, n)
					}
				}
			})
		})
	}
}
