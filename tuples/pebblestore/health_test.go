package pebblestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
)

func touch(t *testing.T, ts ...string) tuples.WriteRequest {
	t.Helper()
	var req tuples.WriteRequest
	for _, s := range ts {
		tp, err := tuples.ParseTuple(s)
		require.NoError(t, err)
		req.Updates = append(req.Updates, tuples.Update{Op: tuples.OpTouch, Tuple: tp})
	}
	return req
}

func contains(t *testing.T, s *Store, tuple string) bool {
	t.Helper()
	ctx := context.Background()
	head, err := s.HeadRevision(ctx)
	require.NoError(t, err)
	r, err := s.ReaderAt(ctx, head)
	require.NoError(t, err)
	tp, err := tuples.ParseTuple(tuple)
	require.NoError(t, err)
	ok, err := r.Contains(ctx, tp)
	require.NoError(t, err)
	return ok
}

// TestDiskBelowReserve: with less free space than the reserve, writes fail with
// ErrStorageFull naming the free space and change nothing, reads go on, and writes
// succeed again once space is freed, without reopening.
func TestDiskBelowReserve(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, &Options{FS: fs, GCInterval: -1})
	ctx := context.Background()
	_, err := s.Write(ctx, touch(t, "doc:1#viewer@user:anne"))
	require.NoError(t, err)
	require.NoError(t, s.WriteHealth())

	fs.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 1 << 20, TotalBytes: 64 << 20, UsedBytes: 63 << 20})
	_, err = s.Write(ctx, touch(t, "doc:2#viewer@user:anne"))
	require.ErrorIs(t, err, tuples.ErrStorageFull)
	require.ErrorContains(t, err, "1048576 bytes free on data, below the reserve")
	require.ErrorIs(t, s.WriteHealth(), tuples.ErrStorageFull)
	_, err = s.Import(ctx, []tuples.Tuple{touch(t, "doc:3#viewer@user:anne").Updates[0].Tuple}, 0)
	require.ErrorIs(t, err, tuples.ErrStorageFull)
	require.True(t, contains(t, s, "doc:1#viewer@user:anne"), "reads go on")
	require.False(t, contains(t, s, "doc:2#viewer@user:anne"))

	fs.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 60 << 20, TotalBytes: 64 << 20, UsedBytes: 4 << 20})
	require.NoError(t, s.WriteHealth())
	_, err = s.Write(ctx, touch(t, "doc:2#viewer@user:anne"))
	require.NoError(t, err)
	require.True(t, contains(t, s, "doc:2#viewer@user:anne"))
}

// TestWALFailure: a write whose log write fails (ENOSPC injected by errorfs) fails
// with ErrStorageFull instead of panicking the process; reads and the change log go
// on; later writes fail at once; a reopened store has every acknowledged write.
func TestWALFailure(t *testing.T) {
	mem := vfs.NewMem()
	enospc := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if (op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData) &&
			strings.HasSuffix(op.Path, ".log") {
			return fmt.Errorf("write %s: %w", op.Path, syscall.ENOSPC)
		}
		return nil
	})}
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
	s, err := Open("data", &Options{FS: errorfs.Wrap(mem, enospc), GCInterval: -1, Logger: log})
	require.NoError(t, err)
	ctx := context.Background()
	acked, err := s.Write(ctx, touch(t, "doc:1#viewer@user:anne"))
	require.NoError(t, err)

	enospc.On()
	_, err = s.Write(ctx, touch(t, "doc:2#viewer@user:anne"))
	require.ErrorIs(t, err, tuples.ErrStorageFull)
	require.ErrorContains(t, err, "no space left on device")
	enospc.Off()
	_, err = s.Write(ctx, touch(t, "doc:3#viewer@user:anne"))
	require.ErrorIs(t, err, tuples.ErrStorageFull, "a store whose log failed refuses writes until restart")
	require.ErrorContains(t, err, "until relata restarts")
	require.ErrorIs(t, s.WriteHealth(), tuples.ErrStorageFull)

	require.True(t, contains(t, s, "doc:1#viewer@user:anne"), "reads go on")
	var changes int
	for c, err := range s.Changes(ctx, 0) {
		require.NoError(t, err)
		require.LessOrEqual(t, c.Revision, acked)
		changes++
	}
	require.Equal(t, 1, changes, "the change log serves committed changes")
	_ = s.Close() // may report the failed log
	mu.Lock()
	require.Contains(t, logs.String(), "the write-ahead log failed")
	mu.Unlock()

	s2, err := Open("data", &Options{FS: mem, GCInterval: -1})
	require.NoError(t, err)
	defer s2.Close()
	require.True(t, contains(t, s2, "doc:1#viewer@user:anne"), "an acknowledged write survives")
	_, err = s2.Write(ctx, touch(t, "doc:4#viewer@user:anne"))
	require.NoError(t, err)
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestOpenOnFullDisk: Open on a full disk fails at once with one clear error.
func TestOpenOnFullDisk(t *testing.T) {
	mem := vfs.NewMem()
	mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 4096, TotalBytes: 64 << 20, UsedBytes: 64<<20 - 4096})
	_, err := Open("data", &Options{FS: mem, GCInterval: -1})
	require.ErrorIs(t, err, tuples.ErrStorageFull)
	require.EqualError(t, err, "no space left on data: free space and restart: no space left on device")
	require.False(t, errors.Is(err, tuples.ErrStorageError))
}
