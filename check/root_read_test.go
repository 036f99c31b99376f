package check

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
)

// noObjectReader hides the tuples.ObjectReader of the reader it wraps (which must be a
// tuples.ScopeTracker).
type noObjectReader struct{ tuples.Reader }

func (r noObjectReader) ForwardScope(o tuples.ObjectRef, rel string) tuples.Scope {
	return r.Reader.(tuples.ScopeTracker).ForwardScope(o, rel)
}

func (r noObjectReader) ReverseScope(s tuples.SubjectRef, typ, rel string) tuples.Scope {
	return r.Reader.(tuples.ScopeTracker).ReverseScope(s, typ, rel)
}

func (r noObjectReader) UnchangedSince(s tuples.Scope, since tuples.Revision) bool {
	return r.Reader.(tuples.ScopeTracker).UnchangedSince(s, since)
}

// TestCheckReadsItsObjectOnce checks that a Check reads the object it is asked about
// in one pass when the reader can (tuples.ObjectReader), with the same answers as
// relation by relation, and falls back to relation reads for an object larger than
// rootTuplesMax.
func TestCheckReadsItsObjectOnce(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	lines := []string{
		"flow:f1#tenant@tenant:t1", "flow:f1#owner@user:owner", "flow:f1#denied@user:banned",
		"flow:f1#granted@role:r1#member", "role:r1#member@user:granted",
		"tenant:t1#viewer@user:banned", "tenant:t1#viewer@user:viewer",
		"flow:big#tenant@tenant:t1",
	}
	for i := range rootTuplesMax + 3 {
		lines = append(lines, fmt.Sprintf("flow:big#granted@user:g%d", i))
	}
	r0 := st.load(t, peerSchema(), mustTuples(t, lines...))
	cases := []struct {
		flow, user string
		want       bool
	}{
		{"f1", "owner", true}, {"f1", "granted", true}, {"f1", "viewer", true},
		{"f1", "banned", false}, {"f1", "nobody", false},
		{"big", "g0", true}, {"big", fmt.Sprintf("g%d", rootTuplesMax+2), true},
		{"big", "viewer", true}, {"big", "nobody", false},
	}
	for _, c := range cases {
		req := CheckRequest{Object: tuples.ObjectRef{Type: "flow", ID: c.flow}, Permission: "execute",
			Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: c.user}}}
		var whole, byRel atomic.Int64
		for _, r := range []struct {
			r tuples.Reader
			n *atomic.Int64
		}{{readCounter{Reader: r0, n: &whole}, &whole}, {noObjectReader{readCounter{Reader: r0, n: &byRel}}, &byRel}} {
			e := New(Options{CacheBytes: -1, Concurrency: 1})
			res, err := e.Check(ctx, r.r, req)
			require.NoError(t, err)
			require.Equal(t, c.want, res.Allowed, "%s %s", c.flow, c.user)
		}
		if c.flow == "f1" {
			require.Less(t, whole.Load(), byRel.Load(), "%s: one read of the flow instead of one a relation", c.user)
		} else {
			require.Equal(t, whole.Load(), byRel.Load()+1, "%s: the abandoned pass, then relation reads", c.user)
		}
	}
}
