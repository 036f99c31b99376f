package tuples

import "context"

// Checkpointer is implemented by stores that can write a consistent online copy of
// themselves (backups): Checkpoint writes the copy to dir, which must not exist, and
// returns the revision it holds (every write acknowledged at or before it, none after).
type Checkpointer interface {
	Checkpoint(ctx context.Context, dir string) (Revision, error)
}
