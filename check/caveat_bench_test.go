package check

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

// BenchmarkCheckCaveatShare compares Check on flows whose user grants are plain with
// the same flows where a tenth of the grants carry an IP allow-list caveat and every
// check gives the caller's address: uncached (every check evaluated) and cached (a
// working set of 4,096 checks, so that caveated answers come from the cache keyed by
// the address).
func BenchmarkCheckCaveatShare(b *testing.B) {
	const (
		flows  = 5000
		users  = 2000
		grants = 6
	)
	plainSchema := `definition user {}
definition role {
	relation member: user
}
definition flow {
	relation granted: user | role#member
	relation denied: user
	permission execute = granted - denied
}`
	caveatSchema := `definition user {}
caveat ip_allow(ip ipaddress, cidr string) {
	ip.in_cidr(cidr)
}
definition role {
	relation member: user
}
definition flow {
	relation granted: user | role#member | user with ip_allow
	relation denied: user
	permission execute = granted - denied
}`
	for _, share := range []float64{0, 0.1} {
		src := plainSchema
		if share > 0 {
			src = caveatSchema
		}
		s, err := schema.Compile("bench", []byte(src))
		require.NoError(b, err)
		rng := rand.New(rand.NewPCG(1, 2))
		var ts []tuples.Tuple
		for r := 0; r < 50; r++ {
			for m := 0; m < 20; m++ {
				ts = append(ts, tuples.Tuple{Object: tuples.ObjectRef{Type: "role", ID: fmt.Sprintf("r%d", r)}, Relation: "member",
					Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: fmt.Sprintf("u%d", rng.IntN(users))}}})
			}
		}
		for f := 0; f < flows; f++ {
			obj := tuples.ObjectRef{Type: "flow", ID: fmt.Sprintf("f%d", f)}
			for g := 0; g < grants; g++ {
				t := tuples.Tuple{Object: obj, Relation: "granted", Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: fmt.Sprintf("u%d", rng.IntN(users))}}}
				if rng.Float64() < share {
					t.Caveat = &tuples.Caveat{Name: "ip_allow", Context: map[string]any{"cidr": fmt.Sprintf("10.%d.0.0/16", rng.IntN(4))}}
				}
				ts = append(ts, t)
			}
			ts = append(ts, tuples.Tuple{Object: obj, Relation: "granted", Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "role", ID: fmt.Sprintf("r%d", rng.IntN(50))}, Relation: "member"}})
			if rng.IntN(10) == 0 {
				ts = append(ts, tuples.Tuple{Object: obj, Relation: "denied", Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: fmt.Sprintf("u%d", rng.IntN(users))}}})
			}
		}
		seen := map[string]bool{}
		uniq := ts[:0]
		for _, t := range ts {
			if k := t.Key().String(); !seen[k] {
				seen[k] = true
				uniq = append(uniq, t)
			}
		}
		r := newReader(b, s, uniq)
		reqs := make([]CheckRequest, 4096)
		for i := range reqs {
			reqs[i] = CheckRequest{Object: tuples.ObjectRef{Type: "flow", ID: fmt.Sprintf("f%d", rng.IntN(flows))}, Permission: "execute",
				Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: fmt.Sprintf("u%d", rng.IntN(users))}},
				Context: map[string]any{"ip": fmt.Sprintf("10.%d.%d.%d", rng.IntN(4), rng.IntN(256), rng.IntN(256))}}
		}
		for _, cached := range []bool{false, true} {
			name := fmt.Sprintf("caveated=%.0f%%/cached=%t", share*100, cached)
			b.Run(name, func(b *testing.B) {
				opts := Options{CacheBytes: -1, Concurrency: 1}
				if cached {
					opts = Options{Concurrency: 1}
				}
				e := New(opts)
				ctx := context.Background()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := e.Check(ctx, r, reqs[i%len(reqs)]); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
