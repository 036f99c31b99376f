package pebblestore

import (
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/tuplestest"
)

// openMem opens a store on an in-memory file system, closed at the end of the test.
func openMem(t testing.TB, opts *Options) *Store {
	t.Helper()
	o := Options{FS: vfs.NewMem(), GCInterval: -1}
	if opts != nil {
		o = *opts
		if o.FS == nil {
			o.FS = vfs.NewMem()
		}
	}
	s, err := Open("data", &o)
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, tuples.ErrClosed) {
			t.Error(err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	tuplestest.RunAll(t, func(t *testing.T) tuples.Store { return openMem(t, nil) })
}

// TestConformanceOnDisk runs the suite on the OS file system, with real WAL syncs.
func TestConformanceOnDisk(t *testing.T) {
	tuplestest.RunAll(t, func(t *testing.T) tuples.Store {
		s, err := Open(t.TempDir(), &Options{GCInterval: -1})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// TestConformanceIngest runs the suite with every import written as SSTables and
// ingested (import.go), however small.
func TestConformanceIngest(t *testing.T) {
	tuplestest.RunAll(t, func(t *testing.T) tuples.Store {
		return openMem(t, &Options{GCInterval: -1, IngestMinTuples: 1})
	})
}
