package pebblestore

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/cockroachdb/pebble/v2"

	"github.com/relata/relata/tuples"
)

var _ tuples.Checkpointer = (*Store)(nil)

// ErrReadOnly is returned by writes to a store opened with Options.ReadOnly.
var ErrReadOnly = errors.New("the store is open read-only")

// Checkpoint writes a consistent copy of the store to dir, which must not exist, and
// returns the revision the copy holds: every write acknowledged at that revision or
// before, none after. It runs in the committer between two group commits (writes
// wait for it, reads do not) and hard-links the sstables where dir is on the same
// file system, so it takes about as long as a WAL sync. The copy is a database that
// Open (and `relata serve --data-dir`) opens as it is.
func (s *Store) Checkpoint(ctx context.Context, dir string) (tuples.Revision, error) {
	if dir == "" {
		return 0, errors.New("checkpoint: empty directory name")
	}
	if _, err := s.opts.FS.Stat(dir); err == nil {
		return 0, fmt.Errorf("checkpoint: %s already exists: name a new directory", dir)
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	r, err := s.submit(ctx, &request{kind: kindCheckpoint, dir: dir})
	if err != nil {
		return 0, err
	}
	return r.rev, nil
}

// runCheckpoint is the committer's side of Checkpoint: no group is being committed,
// so the head is exactly what the copy holds.
func (s *Store) runCheckpoint(r *request) {
	defer close(r.done)
	if err := s.db.Checkpoint(r.dir, pebble.WithFlushedWAL()); err != nil {
		r.err = fmt.Errorf("checkpoint to %s: %w", r.dir, err)
		return
	}
	r.rev = tuples.Revision(s.head.Load())
}
