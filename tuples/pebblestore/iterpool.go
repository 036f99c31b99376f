package pebblestore

// Iterator reuse for reads.
//
// The engine issues many short scans (a few tuples of one object#relation, often
// none), and creating and closing a Pebble iterator for each cost more than the scan
// itself: under `relata bench` (Check at concurrency 64, 1M tuples) DB.NewIter plus
// Iterator.Close were a quarter of the time scanLive spent. Readers therefore borrow
// an idle iterator, re-bound it with SetBounds (which keeps its view of the database)
// and give it back.
//
// An iterator sees the database as of its creation. A reader at revision rev may use
// it only if every commit up to rev was visible then: the pool records the head
// revision read before the iterator was created (the committer stores head after a
// commit is applied) and hands the iterator only to readers at or below it. It also
// retires iterators older than maxIterAge, because an iterator pins the memtables and
// tables of its view: stale views would keep memory and obsolete files alive. GC
// deletions a pinned view does not see are harmless: readers check the horizon after
// opening the iterator, as before, and a view that still holds collected versions only
// holds versions of revisions no reader may use.

import (
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/relata/relata/tuples"
)

const (
	// maxIdleIters bounds the idle iterators kept.
	maxIdleIters = 64
	// maxIterAge bounds how long an iterator is reused after its creation.
	maxIterAge = 200 * time.Millisecond
)

// pooledIter is an iterator with the view it was created with.
type pooledIter struct {
	it   *pebble.Iterator
	head tuples.Revision // every revision <= head is visible to it
	born time.Time
}

// iterPool keeps idle iterators. mu guards every field of mu.
//
// Readers take the most recently returned iterator (the top of idle), so under steady
// load the bottom of idle may not be reached for as long as the load lasts: get
// therefore also retires the iterators past maxIterAge at the bottom. Without that an
// iterator at the bottom kept its view, and with it flushed memtables (16 MiB each,
// off the Go heap and not in Pebble's live memtable count) and obsolete sstables, for
// the rest of a soak.
type iterPool struct {
	mu struct {
		sync.Mutex
		idle   []*pooledIter
		closed bool
	}
}

// get returns an iterator that sees revision rev, reusing an idle one when one is
// young enough and sees rev, else creating one. The caller sets its bounds before use
// and returns it with put.
func (p *iterPool) get(s *Store, rev tuples.Revision) (*pooledIter, error) {
	now := time.Now()
	var stale []*pooledIter
	var found *pooledIter
	p.mu.Lock()
	for len(p.mu.idle) > 0 {
		pi := p.mu.idle[len(p.mu.idle)-1]
		p.mu.idle = p.mu.idle[:len(p.mu.idle)-1]
		if pi.head >= rev && now.Sub(pi.born) < maxIterAge {
			found = pi
			break
		}
		stale = append(stale, pi)
	}
	// Retire the buried: from the bottom, the iterators returned longest ago.
	n := 0
	for n < len(p.mu.idle) && now.Sub(p.mu.idle[n].born) >= maxIterAge {
		stale = append(stale, p.mu.idle[n])
		n++
	}
	if n > 0 {
		k := copy(p.mu.idle, p.mu.idle[n:])
		clear(p.mu.idle[k:])
		p.mu.idle = p.mu.idle[:k]
	}
	p.mu.Unlock()
	for _, pi := range stale {
		_ = pi.it.Close()
	}
	if found != nil {
		return found, nil
	}
	head := tuples.Revision(s.head.Load())
	it, err := s.db.NewIter(nil)
	if err != nil {
		return nil, err
	}
	return &pooledIter{it: it, head: head, born: now}, nil
}

// put returns an iterator to the pool, or closes it when it failed, is too old, the
// pool is full or closed.
func (p *iterPool) put(pi *pooledIter) {
	if pi.it.Error() != nil || time.Since(pi.born) >= maxIterAge {
		_ = pi.it.Close()
		return
	}
	p.mu.Lock()
	if p.mu.closed || len(p.mu.idle) >= maxIdleIters {
		p.mu.Unlock()
		_ = pi.it.Close()
		return
	}
	p.mu.idle = append(p.mu.idle, pi)
	p.mu.Unlock()
}

// close closes the idle iterators; later puts close theirs. Store.Close calls it once
// no read is in flight, before it closes Pebble.
func (p *iterPool) close() {
	p.mu.Lock()
	idle := p.mu.idle
	p.mu.idle, p.mu.closed = nil, true
	p.mu.Unlock()
	for _, pi := range idle {
		_ = pi.it.Close()
	}
}
