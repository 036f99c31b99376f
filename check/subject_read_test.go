package check

import (
	"context"
	"fmt"
	"iter"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
)

// noSubjectReader hides the tuples.SubjectReader of the reader it wraps (which must be
// a tuples.ScopeTracker and a tuples.ObjectReader).
type noSubjectReader struct{ noObjectReader }

func (r noSubjectReader) ObjectTuples(ctx context.Context, o tuples.ObjectRef) iter.Seq2[tuples.Tuple, error] {
	return r.Reader.(tuples.ObjectReader).ObjectTuples(ctx, o)
}

// TestCheckReadsItsSubjectOnce checks that a Check answers its subject's probes from
// one read of the subject's tuples when the reader can (tuples.SubjectReader), with
// the same answers as probe by probe, and that a subject with more than
// subjectTuplesMax tuples, or a conditional one, is probed (and remembered as such).
func TestCheckReadsItsSubjectOnce(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	lines := []string{
		"flow:f1#tenant@tenant:t1", "flow:f1#owner@user:owner",
		"tenant:t1#parent@tenant:p1",
		"tenant:t1#viewer@user:viewer", "tenant:t1#developer@user:dev", "tenant:p1#admin@user:padmin",
		"tenant:t1#viewer@user:busy", "tenant:t2#developer@user:viewer",
	}
	// Larger than smallRelation, so that the general path probes.
	for i := range smallRelation + 1 {
		lines = append(lines, fmt.Sprintf("tenant:t1#viewer@user:v%d", i), fmt.Sprintf("tenant:t1#developer@user:d%d", i))
	}
	for i := range subjectTuplesMax + 1 {
		lines = append(lines, fmt.Sprintf("flow:busy%d#owner@user:busy", i))
	}
	r0 := st.load(t, peerSchema(), mustTuples(t, lines...))
	cases := []struct {
		user       string
		want       bool
		large      bool
		fewerReads bool
	}{
		{"viewer", true, false, false}, {"dev", true, false, true}, {"padmin", true, false, true},
		{"nobody", false, false, true}, {"busy", true, true, false},
	}
	for _, c := range cases {
		req := CheckRequest{Object: tuples.ObjectRef{Type: "flow", ID: "f1"}, Permission: "execute",
			Subject: tuples.SubjectRef{Object: tuples.ObjectRef{Type: "user", ID: c.user}}}
		var whole, probed atomic.Int64
		var e *Engine // the one that read whole
		for _, r := range []tuples.Reader{readCounter{Reader: r0, n: &whole}, noSubjectReader{noObjectReader{readCounter{Reader: r0, n: &probed}}}} {
			en := New(Options{CacheBytes: -1, Concurrency: 1})
			res, err := en.Check(ctx, r, req)
			require.NoError(t, err)
			require.Equal(t, c.want, res.Allowed, c.user)
			if e == nil {
				e = en
			}
		}
		require.Equal(t, c.large, e.large.hasSubject(req.Subject), c.user)
		switch {
		case c.fewerReads:
			require.Less(t, whole.Load(), probed.Load(), "%s: one read of the subject instead of a probe a relation", c.user)
		case c.large:
			require.Equal(t, probed.Load()+1, whole.Load(), "%s: the abandoned pass, then probes", c.user)
			whole.Store(0)
			res, err := e.Check(ctx, readCounter{Reader: r0, n: &whole}, req)
			require.NoError(t, err)
			require.Equal(t, c.want, res.Allowed, c.user)
			require.Equal(t, probed.Load()-1, whole.Load(), "%s: remembered as large, probed at once (and the relations found large)", c.user)
		}
	}
}
