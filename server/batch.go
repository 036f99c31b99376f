package server

import (
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
)

// Batched streams: with batch_results, a lookup or read sends many results
// a message. A batch goes out when it holds maxBatchResults results or
// maxBatchBytes bytes, or batchDelay after its first result (so that a slow lookup
// still shows its first results at once), and at the end of the stream.
const (
	maxBatchResults = 1000
	maxBatchBytes   = 1 << 20 // well under a client's default 4 MiB receive limit
	batchDelay      = 20 * time.Millisecond
)

// batcher collects the results of a batched stream and sends them with send, which it
// never calls from two goroutines at once. The zero batcher is not usable: see
// newBatcher.
type batcher[R proto.Message] struct {
	send func(results []R, cursor string) error
	// cursor makes the cursor resuming after the item last names; only a batch's last
	// result needs one, so it is made when the batch is sent, not for every result.
	cursor func(last string) string
	delay  time.Duration

	mu      sync.Mutex
	results []R
	bytes   int
	last    string // names the last result held
	timer   *time.Timer
	err     error // the first send error, returned by the next add or close
	closed  bool
}

func newBatcher[R proto.Message](s *Server, cursor func(last string) string, send func(results []R, cursor string) error) *batcher[R] {
	b := &batcher[R]{send: send, cursor: cursor, delay: batchDelay}
	if s.cfg.batchDelay != 0 {
		b.delay = s.cfg.batchDelay
	}
	return b
}

// add holds r, named last in cursors, and sends the batch when it is full.
func (b *batcher[R]) add(r R, last string) error {
	return b.addSized(r, proto.Size(r), last)
}

// addSized is add for a caller that knows r's encoded size (proto.Size walks the
// message, a measurable part of a long lookup's cost).
func (b *batcher[R]) addSized(r R, size int, last string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	b.results = append(b.results, r)
	b.bytes += size
	b.last = last
	if len(b.results) >= maxBatchResults || b.bytes >= maxBatchBytes {
		return b.flushLocked()
	}
	if len(b.results) == 1 {
		if b.timer == nil {
			b.timer = time.AfterFunc(b.delay, b.onTimer)
		} else {
			b.timer.Reset(b.delay)
		}
	}
	return nil
}

func (b *batcher[R]) onTimer() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed && b.err == nil {
		b.err = b.flushLocked()
	}
}

func (b *batcher[R]) flushLocked() error {
	if b.timer != nil {
		b.timer.Stop()
	}
	if len(b.results) == 0 {
		return nil
	}
	results := b.results
	b.results, b.bytes = nil, 0
	return b.send(results, b.cursor(b.last))
}

// close sends what is held (when err is nil) and stops the timer; nothing is sent
// after it returns. It returns err, or the first send error.
func (b *batcher[R]) close(err error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.timer != nil {
		b.timer.Stop()
	}
	if err != nil {
		return err
	}
	if b.err != nil {
		return b.err
	}
	return b.flushLocked()
}
