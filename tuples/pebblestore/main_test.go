package pebblestore

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine is left running after them: a
// store's committer, GC loop or iterator that Close did not stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
