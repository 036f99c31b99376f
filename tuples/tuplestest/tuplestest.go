// Package tuplestest is the conformance suite every tuples.Store implementation runs,
// like httptest for net/http: a backend's test calls RunAll with a constructor of
// fresh, empty stores.
//
//	func TestConformance(t *testing.T) {
//		tuplestest.RunAll(t, func(t *testing.T) tuples.Store { … })
//	}
//
// Optional capabilities are tested when the store has them: tuples.Importer,
// tuples.RevisionWaiter, and GarbageCollector.
package tuplestest

import (
	"context"
	"testing"

	"github.com/relata/relata/tuples"
)

// GarbageCollector is implemented by stores whose GC can be forced; the suite then
// checks GC and expired revisions.
type GarbageCollector interface {
	// CollectGarbage makes revisions older than horizon (capped at the head)
	// unreadable, drops what only they could see, and returns the new horizon.
	CollectGarbage(ctx context.Context, horizon tuples.Revision) (tuples.Revision, error)
}

// RunAll runs every conformance test, each on a fresh store from newStore. newStore
// must return an open, empty store and close it in t.Cleanup, ignoring
// tuples.ErrClosed (the suite closes some stores itself). Tests run in parallel.
func RunAll(t *testing.T, newStore func(t *testing.T) tuples.Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s tuples.Store)
	}{
		{"Empty", testEmpty},
		{"CreateTouchDelete", testCreateTouchDelete},
		{"Atomicity", testAtomicity},
		{"Validation", testValidation},
		{"Preconditions", testPreconditions},
		{"SnapshotIsolation", testSnapshotIsolation},
		{"SubjectsObjectsOrder", testSubjectsObjectsOrder},
		{"ObjectTuples", testObjectTuples},
		{"ReadFilters", testReadFilters},
		{"Pagination", testPagination},
		{"DeleteMatching", testDeleteMatching},
		{"Changes", testChanges},
		{"SchemaPerRevision", testSchemaPerRevision},
		{"SchemaHistory", testSchemaHistory},
		{"FormFilterAndCount", testFormFilterAndCount},
		{"ConcurrentWriters", testConcurrentWriters},
		{"Import", testImport},
		{"WaitForRevision", testWaitForRevision},
		{"GC", testGC},
		{"CaveatsAndExpiration", testCaveatsAndExpiration},
		{"Closed", testClosed},
		{"UpdateLimit", testUpdateLimit},
		{"ScopeTracker", testScopeTracker},
		{"GCWithConcurrentReaders", testGCWithConcurrentReaders},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
	t.Run("Identity", func(t *testing.T) {
		t.Parallel()
		testIdentity(t, newStore(t), newStore(t))
	})
}
