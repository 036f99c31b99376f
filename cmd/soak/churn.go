package main

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/relata/relata/client"
)

// written is a tuple a soak write created: OBJECT#viewer@SUBJECT.
type written struct {
	object, subject string
}

func (t written) String() string { return t.object + "#viewer@" + t.subject }

// churner is one worker's writes. Each write is one Write call that creates a tuple;
// once the worker has window tuples of its own live, the same Write also deletes the
// oldest of them, so that the data set stays bounded (window 0: writes only add, and
// the data set grows with every write).
type churner struct {
	window int
	live   []written // the worker's acknowledged creates not yet deleted, oldest first
}

// next returns the updates of the write that creates t, and the tuple it deletes
// (nil when the window is not full).
func (c *churner) next(t written) ([]client.Update, *written, error) {
	ups, err := client.Touch(t.String())
	if err != nil {
		return nil, nil, err
	}
	if c.window <= 0 || len(c.live) < c.window {
		return ups, nil, nil
	}
	del := c.live[0]
	d, err := client.Delete(del.String())
	if err != nil {
		return nil, nil, err
	}
	return append(ups, d...), &del, nil
}

// done records the outcome of the write next planned (err nil: acknowledged) in the
// churner and in l. A failed write may or may not have been applied: its tuples are
// then left out of the verification (the failure fails the run anyway), and the tuple
// it meant to delete leaves the window either way.
func (c *churner) done(t written, del *written, err error, l *ledger) {
	if del != nil {
		c.live = c.live[1:]
	}
	if err != nil {
		l.unsure(t, del)
		return
	}
	c.live = append(c.live, t)
	l.ack(t, del)
}

// ledger is what the server acknowledged over the run: every tuple a write created,
// every tuple a write deleted, and the tuples of writes whose outcome is unknown.
type ledger struct {
	mu      sync.Mutex
	created []written // in the order acknowledged
	deleted map[written]bool
	unknown map[written]bool
}

// ack records an acknowledged write that created t and deleted del (nil: none).
func (l *ledger) ack(t written, del *written) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.created = append(l.created, t)
	if del != nil {
		if l.deleted == nil {
			l.deleted = map[written]bool{}
		}
		l.deleted[*del] = true
	}
}

// unsure records a failed write that meant to create t and delete del (nil: none).
func (l *ledger) unsure(t written, del *written) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.unknown == nil {
		l.unknown = map[written]bool{}
	}
	l.unknown[t] = true
	if del != nil {
		l.unknown[*del] = true
	}
}

// expect returns the tuples that must be present at the end (acknowledged creates not
// deleted since) and those that must be absent (acknowledged deletes), leaving out
// the tuples of writes whose outcome is unknown.
func (l *ledger) expect() (present, absent []written) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, t := range l.created {
		switch {
		case l.unknown[t]:
		case l.deleted[t]:
			absent = append(absent, t)
		default:
			present = append(present, t)
		}
	}
	return present, absent
}

// changes returns the Watch changes every watcher must see: "+TUPLE" for each
// acknowledged create, "-TUPLE" for each acknowledged delete (changeKey's form).
func (l *ledger) changes() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.created)+len(l.deleted))
	for _, t := range l.created {
		out = append(out, "+"+t.String())
		if l.deleted[t] {
			out = append(out, "-"+t.String())
		}
	}
	return out
}

// changeKey is how a watcher records a change: "+TUPLE" written, "-TUPLE" deleted.
func changeKey(deleted bool, tuple string) string {
	if deleted {
		return "-" + tuple
	}
	return "+" + tuple
}

// verification is the end-of-run check: how many tuples that must be present are
// not, and how many that must be absent are still there.
type verification struct {
	present, absent   int // tuples checked of each kind
	missing, lingered int
}

func (v verification) ok() bool { return v.missing == 0 && v.lingered == 0 }

func (v verification) String() string {
	return fmt.Sprintf("%d acknowledged creates not deleted since, %d missing; %d acknowledged deletes, %d still present",
		v.present, v.missing, v.absent, v.lingered)
}

// verify checks, fully consistent (at a revision at least as fresh as every
// acknowledged write), that every tuple of present is there and no tuple of absent
// is, printing the first few of each kind that are not as they should be.
func verify(ctx context.Context, cl *client.Client, present, absent []written) (verification, error) {
	v := verification{present: len(present), absent: len(absent)}
	type want struct {
		t       written
		present bool
	}
	all := make([]want, 0, len(present)+len(absent))
	for _, t := range present {
		all = append(all, want{t, true})
	}
	for _, t := range absent {
		all = append(all, want{t, false})
	}
	for chunk := range slices.Chunk(all, 1000) {
		items := make([]client.BulkItem, len(chunk))
		for i, w := range chunk {
			items[i] = client.BulkItem{Object: w.t.object, Permission: "viewer", Subject: w.t.subject}
		}
		if _, err := cl.CheckBulk(ctx, items, client.FullyConsistent()); err != nil {
			return v, err
		}
		for i, it := range items {
			w := chunk[i]
			if it.Err != nil {
				return v, fmt.Errorf("checking %s: %w", w.t, it.Err)
			}
			switch {
			case w.present && !it.Allowed:
				v.missing++
				if v.missing <= 10 {
					fmt.Printf("    missing: %s\n", w.t)
				}
			case !w.present && it.Allowed:
				v.lingered++
				if v.lingered <= 10 {
					fmt.Printf("    deleted but present: %s\n", w.t)
				}
			}
		}
	}
	return v, nil
}
