package pebblestore

// Storage health: a full disk or a failed write-ahead log must not take the process
// down, and must not stop reads.
//
// Two layers. First, before every commit the committer checks the free space of the
// data directory (Options.MinFreeBytes, a reserve that leaves room for Pebble's
// flushes and WAL); below it, writes fail with tuples.ErrStorageFull and change
// nothing, and succeed again as soon as space is freed. Second, if a commit fails
// anyway (Pebble reports a fatal commit error through its logger, which panics with a
// *fatalError that the committer recovers), the store is marked broken: every later
// write fails at once with the cause (tuples.ErrStorageFull for ENOSPC,
// tuples.ErrStorageError otherwise), reads continue, and WriteHealth reports it. A
// Pebble whose WAL failed cannot commit again, so a broken store needs a restart
// (which replays the WAL: no acknowledged write is lost).

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/relata/relata/tuples"
)

// fatalError is the panic value of pebbleLogger.Fatalf.
type fatalError struct{ msg string }

func (e *fatalError) Error() string { return e.msg }

// storageError classifies a message of a failed storage operation as
// tuples.ErrStorageFull (ENOSPC) or tuples.ErrStorageError.
func storageError(what string, cause error) error {
	if errors.Is(cause, syscall.ENOSPC) || strings.Contains(cause.Error(), "no space left on device") {
		return fmt.Errorf("%s: %v: %w", what, cause, tuples.ErrStorageFull)
	}
	return fmt.Errorf("%s: %v: %w", what, cause, tuples.ErrStorageError)
}

// recoverFatal turns a *fatalError panic of Pebble into *err (classified by
// storageError) and marks the store broken; other panics go on.
func (s *Store) recoverFatal(what string, err *error) {
	p := recover()
	if p == nil {
		return
	}
	fe, ok := p.(*fatalError)
	if !ok {
		panic(p)
	}
	e := storageError(what, fe)
	broken := fmt.Errorf("%w; writes are refused until relata restarts (reads go on; the restart replays the log, losing no acknowledged write)", e)
	s.broken.CompareAndSwap(nil, &broken)
	s.opts.Logger.Error("pebblestore: the write-ahead log failed; writes refused until restart, reads go on", "err", fe.msg)
	*err = e
}

// writable returns nil when a commit may be tried now: the store is not broken and
// the data directory has at least MinFreeBytes free. Otherwise it returns why not
// (tuples.ErrStorageFull or tuples.ErrStorageError).
func (s *Store) writable() error {
	if b := s.broken.Load(); b != nil {
		return *b
	}
	if s.opts.MinFreeBytes <= 0 {
		return nil
	}
	u, err := s.opts.FS.GetDiskUsage(s.dir)
	if err != nil {
		return nil // unknown (e.g. an in-memory FS without usage): try the commit
	}
	if int64(u.AvailBytes) < s.opts.MinFreeBytes {
		err := fmt.Errorf("%d bytes free on %s, below the reserve of %d bytes; free space to resume writes: %w",
			u.AvailBytes, s.dir, s.opts.MinFreeBytes, tuples.ErrStorageFull)
		s.logLimited.log(s.opts.Logger, "pebblestore: disk full: writes refused, reads go on", err)
		return err
	}
	return nil
}

// WriteHealth returns nil while writes can commit, else why not: the disk is below
// the free-space reserve, or the write-ahead log failed. The server's /readyz uses it.
func (s *Store) WriteHealth() error {
	return s.writable()
}

// limitedLog logs a message at most once per interval, counting the ones it drops.
type limitedLog struct {
	mu       sync.Mutex
	last     time.Time
	dropped  int
	interval time.Duration
}

// log logs msg with err at error level, at most once per interval.
func (l *limitedLog) log(log *slog.Logger, msg string, err error) {
	if ok, dropped := l.allow(); ok {
		if dropped > 0 {
			log.Error(msg, "err", err, "repeated", dropped)
		} else {
			log.Error(msg, "err", err)
		}
	}
}

func (l *limitedLog) allow() (ok bool, dropped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	interval := l.interval
	if interval == 0 {
		interval = 10 * time.Second
	}
	if now := time.Now(); now.Sub(l.last) >= interval {
		l.last, dropped, l.dropped = now, l.dropped, 0
		return true, dropped
	}
	l.dropped++
	return false, 0
}
