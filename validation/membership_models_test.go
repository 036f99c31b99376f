package validation

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/relata/relata/check"
	"github.com/relata/relata/schema/models"
	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/pebblestore"
)

// TestMembershipAgreesWithCheck computes, on every bundled model and its validation
// file's relationships, the membership set of every object#permission the file asserts
// and checks it against Check for every subject the file names: a `validation:` block
// written against a model must describe exactly what Check answers.
func TestMembershipAgreesWithCheck(t *testing.T) {
	ctx := context.Background()
	for _, name := range models.Names() {
		t.Run(name, func(t *testing.T) {
			f, err := ReadFile(filepath.Join("..", "schema", "models", name+".yaml"))
			require.NoError(t, err)
			st, err := pebblestore.Open("m", &pebblestore.Options{FS: vfs.NewMem(), GCInterval: -1})
			require.NoError(t, err)
			defer func() { require.NoError(t, st.Close()) }()
			srev, err := st.WriteSchema(ctx, []byte(f.Schema), nil)
			require.NoError(t, err)
			var ts []tuples.Tuple
			subjects := map[string]tuples.SubjectRef{}
			for _, l := range f.Relationships {
				tup, err := tuples.ParseTuple(l.Text)
				require.NoError(t, err)
				ts = append(ts, tup)
			}
			keys := map[string]tuples.Tuple{}
			for _, a := range f.Assertions {
				text, _, _ := strings.Cut(a.Text, " with ") // the context is for the assertion only
				tup, err := tuples.ParseTuple(text)
				require.NoError(t, err)
				subjects[tup.Subject.String()] = tup.Subject
				keys[tup.Object.String()+"#"+tup.Relation] = tup
			}
			rev, err := st.Import(ctx, ts, srev)
			require.NoError(t, err)
			r, err := st.ReaderAt(ctx, rev)
			require.NoError(t, err)
			e := check.New(check.Options{CacheBytes: -1})
			x := &expander{e: e, r: r}
			for _, k := range slices.Sorted(maps.Keys(keys)) {
				q := keys[k]
				got, err := x.expand(ctx, q.Object, q.Relation, map[string]bool{})
				require.NoError(t, err, k)
				for _, sk := range slices.Sorted(maps.Keys(subjects)) {
					s := subjects[sk]
					res, err := e.Check(ctx, r, check.CheckRequest{Object: q.Object, Permission: q.Relation, Subject: s})
					require.NoError(t, err)
					// Without a context, a caveated member is a conditional answer.
					in, caveated := got.status(s)
					require.Equal(t, res.Allowed || res.Conditional, in, "%s@%s: Check says %+v; membership %s", k, sk, res, fmt.Sprint(slices.Sorted(maps.Keys(got))))
					require.Equal(t, res.Conditional, caveated, "%s@%s: Check says %+v; membership marks it caveated: %t", k, sk, res, caveated)
				}
			}
		})
	}
}
