package check

// The nested-set index (Zanzibar's Leopard).
//
// A node k = (T, r) of the schema graph is a nested set when a userset of it is
// included in another userset of the same node: a stored relation r of T allowing
// `T#r` (`role#member: user | role#member`), or an arrow of r over a tupleset of T
// reaching r again (`tenant#manage = admin + parent->manage`). Walking such a node up
// from a subject costs one reverse-index read per userset found, level after level.
// The index keeps, per nested set, the transitive closure of those self-edges: for
// every x, the ids y whose userset includes x's through one or more self-edges, with
// the shortest number of hops. The lookup walk (walkFacts, under memberships for
// Check and under LookupResources) marks the whole closure of a userset it found in
// memory instead of reading the self-edges level by level.
//
// Design. The index lives in the engine, in memory, built from the store and kept
// current from the store's change log: Engine.FollowChanges reads a reader at the
// head (the schema and, when the index is new or the schema changed, every tuple of
// the self-edge relations) and then applies the change log revision by revision.
// Every closure entry carries the revisions at which it appeared and disappeared
// (from ≤ R < until), so a read at revision R sees exactly the closure of the
// tuples live at R. A request at revision R uses the index only when the index was
// built for the schema R uses and covers R: base ≤ R ≤ applied, where applied is the
// last revision whose changes the index has applied and base the revision below which
// its history is pruned (or from which it was built). Otherwise, or when the engine
// has no index, the walk reads the store as before. So nothing waits on the index:
// a read at a revision newer than the index (a fully consistent check right after a
// write) simply walks. The same works for any number of nodes over one PostgreSQL
// database: each follows the shared change log.
//
// Why it is exact. Below a monotone node the walk computes reachability (see
// memberships), and for a node that is not monotone it computes candidates by the
// same reachability; either way the set of ids the walk marks for k from a userset x
// through k's self-edges is the set reachable from x in the graph of the self-edge
// tuples live at R, which is what the index holds at R. Self-edges of relations that
// allow caveats or expiration are never indexed (their tuples may hold or not depending
// on the request's context or the clock), and neither is a node with such a
// self-edge. Cycles among tuples need nothing special: the closure of a cycle is its
// nodes, as the walk's visited set makes it. Depths: the walk finds every node at its
// least depth; the index marks a node at the depth of the userset it came from plus its
// hop distance, which is never less than the least depth. So when every depth the
// indexed walk assigns is within the limit, the walk without the index assigns depths
// within it too, and both mark the same sets with no depth error; when some depth
// exceeds the limit, the walk is redone without the index, which gives the exact error
// (or the exact answer). The scopes the skipped reads would have recorded for the
// check cache are recorded all the same.
//
// Cost. Each closure entry is 24 bytes in a per-source slice; a membership change
// recomputes the closure of the sources that reach the changed edge (before or after
// the change) and writes only the entries that differ (ClosureStats counts them: the
// write amplification). History older than the retention is pruned.

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"sync"
	"time"

	"github.com/relata/relata/tuples"
)

// ChangeSource is what FollowChanges needs of a store: tuples.Store has it.
type ChangeSource interface {
	HeadRevision(ctx context.Context) (tuples.Revision, error)
	ReaderAt(ctx context.Context, rev tuples.Revision) (tuples.Reader, error)
	Changes(ctx context.Context, after tuples.Revision) iter.Seq2[tuples.Change, error]
}

// ClosureStats describes the nested-set index.
type ClosureStats struct {
	// Sets is the number of nested sets indexed; Nodes the ids they hold.
	Sets, Nodes int
	// Live is the number of closure entries at the applied revision; Entries counts
	// those plus the history kept for older revisions.
	Live, Entries int
	// Bytes estimates the index's memory.
	Bytes int64
	// Applied and Base bound the revisions the index serves (Base ≤ R ≤ Applied).
	Applied, Base tuples.Revision
	// EdgeChanges counts the self-edges added or removed since the index was built,
	// EntryChanges the closure entries that changed with them.
	EdgeChanges, EntryChanges int64
	// Walks counts the lookup walks the index answered.
	Walks int64
}

// noUntil marks a closure entry that is still live.
const noUntil = tuples.Revision(math.MaxUint64)

// closureEntry is one element y of a source's closure with its hop distance, live at
// revisions from ≤ R < until.
type closureEntry struct {
	from, until tuples.Revision
	to          uint32
	dist        uint32
}

// selfEdge is one way tuples form a nested set's self-edges: tuples T:y#rel@T:x#sr
// with sr in subjectRels ("" for plain objects) make y include x.
type selfEdge struct {
	set         *nestedSet
	subjectRels []string
}

// edgeTuple is one live self-edge tuple of a set.
type edgeTuple struct {
	rel, subjRel string
	parent, x    uint32
}

// nestedSet is the index of one node.
type nestedSet struct {
	k     relKey
	ids   map[string]uint32
	names []string
	live  map[edgeTuple]struct{}
	// out[x][y] and in[y][x] count the live tuples making y include x.
	out, in []map[uint32]int32
	hist    [][]closureEntry // per source x
}

func (s *nestedSet) id(name string) uint32 {
	if i, ok := s.ids[name]; ok {
		return i
	}
	i := uint32(len(s.names))
	s.ids[name] = i
	s.names = append(s.names, name)
	s.out = append(s.out, nil)
	s.in = append(s.in, nil)
	s.hist = append(s.hist, nil)
	return i
}

// closureIndex is the index for one schema revision.
type closureIndex struct {
	schemaRev tuples.Revision
	sets      map[relKey]*nestedSet
	// byRel maps a stored relation (object type, relation) to the self-edges its
	// tuples form.
	byRel map[relKey][]selfEdge

	mu            sync.RWMutex
	base, applied tuples.Revision
	edgeChanges   int64
	entryChanges  int64
}

// nestedSets returns the self-edges of c's nested sets by stored relation, and the sets.
func nestedSets(c *compiled) (map[relKey][]selfEdge, map[relKey]*nestedSet) {
	byRel := map[relKey][]selfEdge{}
	sets := map[relKey]*nestedSet{}
	for k, pes := range c.parents {
		var edges []relKey
		var srs [][]string
		ok := true
		for _, pe := range pes {
			if pe.parent != k || pe.kind == viaComputed {
				continue
			}
			stored := relKey{k.typ, k.rel}
			if pe.kind == viaArrow {
				stored = relKey{k.typ, pe.tupleset}
			}
			r := c.rel(stored.typ, stored.rel)
			if r == nil || r.Conditional || r.Permission {
				ok = false
				break
			}
			edges = append(edges, stored)
			srs = append(srs, pe.subjectRelations)
		}
		if !ok || len(edges) == 0 {
			continue
		}
		s := &nestedSet{k: k, ids: map[string]uint32{}, live: map[edgeTuple]struct{}{}}
		sets[k] = s
		for i, st := range edges {
			byRel[st] = append(byRel[st], selfEdge{set: s, subjectRels: srs[i]})
		}
	}
	return byRel, sets
}

// buildClosure reads every self-edge tuple at r's snapshot and returns the index at
// r's revision.
func buildClosure(ctx context.Context, c *compiled, r tuples.Reader) (*closureIndex, error) {
	byRel, sets := nestedSets(c)
	ix := &closureIndex{schemaRev: c.rev, sets: sets, byRel: byRel, base: r.Revision(), applied: r.Revision()}
	for st := range byRel {
		for t, err := range r.Read(ctx, tuples.Filter{ObjectType: st.typ, Relation: st.rel}, nil) {
			if err != nil {
				return nil, fmt.Errorf("reading %s#%s: %w", st.typ, st.rel, err)
			}
			ix.edge(t, true, nil)
		}
	}
	rev := r.Revision()
	for _, s := range sets {
		for x := range s.names {
			for y, d := range s.reach(uint32(x)) {
				s.hist[x] = append(s.hist[x], closureEntry{from: rev, until: noUntil, to: y, dist: d})
			}
		}
	}
	return ix, nil
}

// edge applies one tuple write (add) or delete to the live self-edges and, when an
// edge x→y appeared or disappeared, reports x's set and id to touched.
func (ix *closureIndex) edge(t tuples.Tuple, add bool, touched func(*nestedSet, uint32)) {
	if t.Object.ID == tuples.Wildcard || t.Subject.IsWildcard() {
		return
	}
	for _, se := range ix.byRel[relKey{t.Object.Type, t.Relation}] {
		s := se.set
		if t.Subject.Object.Type != s.k.typ || !containsStr(se.subjectRels, t.Subject.Relation) {
			continue
		}
		if !add {
			if _, ok := s.ids[t.Subject.Object.ID]; !ok {
				continue
			}
			if _, ok := s.ids[t.Object.ID]; !ok {
				continue
			}
		}
		et := edgeTuple{rel: t.Relation, subjRel: t.Subject.Relation, parent: s.id(t.Object.ID), x: s.id(t.Subject.Object.ID)}
		_, live := s.live[et]
		if live == add {
			continue // a touch of a live tuple, a delete of a missing one
		}
		x, y := et.x, et.parent
		if add {
			s.live[et] = struct{}{}
			if s.out[x] == nil {
				s.out[x] = map[uint32]int32{}
			}
			if s.in[y] == nil {
				s.in[y] = map[uint32]int32{}
			}
			s.out[x][y]++
			s.in[y][x]++
			if s.out[x][y] == 1 && touched != nil {
				touched(s, x)
			}
			continue
		}
		delete(s.live, et)
		s.out[x][y]--
		s.in[y][x]--
		if s.out[x][y] == 0 {
			delete(s.out[x], y)
			delete(s.in[y], x)
			if touched != nil {
				touched(s, x)
			}
		}
	}
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// reach returns the ids reachable from x through one or more live self-edges (x
// itself excepted), with their least hop distance.
func (s *nestedSet) reach(x uint32) map[uint32]uint32 {
	out := map[uint32]uint32{}
	queue := []uint32{x}
	dist := map[uint32]uint32{x: 0}
	for i := 0; i < len(queue); i++ {
		n := queue[i]
		for y := range s.out[n] {
			if _, seen := dist[y]; seen {
				continue
			}
			dist[y] = dist[n] + 1
			out[y] = dist[n] + 1
			queue = append(queue, y)
		}
	}
	return out
}

// reaching adds to into x and every id from which x is reachable.
func (s *nestedSet) reaching(x uint32, into map[uint32]bool) {
	if into[x] {
		return
	}
	into[x] = true
	queue := []uint32{x}
	for i := 0; i < len(queue); i++ {
		for z := range s.in[queue[i]] {
			if !into[z] {
				into[z] = true
				queue = append(queue, z)
			}
		}
	}
}

// apply applies the changes of revision rev (all of them, in order).
func (ix *closureIndex) apply(rev tuples.Revision, changes []tuples.Change) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	// The sources whose closure may change reach a changed edge's x before or after.
	affected := map[*nestedSet]map[uint32]bool{}
	var xs []struct {
		s *nestedSet
		x uint32
	}
	for _, ch := range changes {
		t := ch.Tuple
		for _, se := range ix.byRel[relKey{t.Object.Type, t.Relation}] {
			s := se.set
			if t.Subject.Object.Type != s.k.typ || t.Subject.IsWildcard() {
				continue
			}
			if x, ok := s.ids[t.Subject.Object.ID]; ok {
				if affected[s] == nil {
					affected[s] = map[uint32]bool{}
				}
				s.reaching(x, affected[s])
			}
		}
	}
	for _, ch := range changes {
		ix.edge(ch.Tuple, ch.Op != tuples.OpDelete, func(s *nestedSet, x uint32) {
			ix.edgeChanges++
			xs = append(xs, struct {
				s *nestedSet
				x uint32
			}{s, x})
		})
	}
	if len(xs) > 0 {
		after := map[*nestedSet]map[uint32]bool{}
		for _, sx := range xs {
			if after[sx.s] == nil {
				after[sx.s] = map[uint32]bool{}
			}
			sx.s.reaching(sx.x, after[sx.s])
		}
		for s, srcs := range after {
			if affected[s] == nil {
				affected[s] = map[uint32]bool{}
			}
			for z := range srcs {
				affected[s][z] = true
			}
		}
		for s, srcs := range affected {
			for z := range srcs {
				ix.entryChanges += int64(s.recompute(z, rev))
			}
		}
	}
	ix.applied = rev
}

// recompute brings source z's live closure entries to the live edges at rev and
// returns how many entries changed.
func (s *nestedSet) recompute(z uint32, rev tuples.Revision) int {
	want := s.reach(z)
	n := 0
	h := s.hist[z]
	for i := range h {
		e := &h[i]
		if e.until != noUntil {
			continue
		}
		if d, ok := want[e.to]; ok && d == e.dist {
			delete(want, e.to)
			continue
		}
		if e.from == rev {
			// Written by this same revision's recompute: never visible; drop it.
			e.until = e.from
		} else {
			e.until = rev
		}
		n++
	}
	for y, d := range want {
		h = append(h, closureEntry{from: rev, until: noUntil, to: y, dist: d})
		n++
	}
	s.hist[z] = h
	return n
}

// prune drops the entries no read at a revision ≥ keep can see, and raises base to
// keep.
func (ix *closureIndex) prune(keep tuples.Revision) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if keep <= ix.base {
		return
	}
	if keep > ix.applied {
		keep = ix.applied
	}
	ix.base = keep
	for _, s := range ix.sets {
		for x, h := range s.hist {
			k := h[:0]
			for _, e := range h {
				if e.until > keep {
					k = append(k, e)
				}
			}
			clear(h[len(k):])
			s.hist[x] = k
		}
	}
}

// ancestors calls yield with every id of k's closure of x at revision rev and its
// distance. ok is false when the index cannot answer at rev (then yield was not
// called).
func (ix *closureIndex) ancestors(k relKey, x string, rev tuples.Revision, yield func(id string, dist int)) (ok bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if rev < ix.base || rev > ix.applied {
		return false
	}
	s := ix.sets[k]
	i, known := s.ids[x]
	if !known {
		return true
	}
	for _, e := range s.hist[i] {
		if e.from <= rev && rev < e.until {
			yield(s.names[e.to], int(e.dist))
		}
	}
	return true
}

// covers reports whether the index answers for schema revision schemaRev at rev.
func (ix *closureIndex) covers(schemaRev, rev tuples.Revision) bool {
	if ix == nil || ix.schemaRev != schemaRev || len(ix.sets) == 0 {
		return false
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.base <= rev && rev <= ix.applied
}

func (ix *closureIndex) stats() ClosureStats {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	st := ClosureStats{Sets: len(ix.sets), Applied: ix.applied, Base: ix.base, EdgeChanges: ix.edgeChanges, EntryChanges: ix.entryChanges}
	for _, s := range ix.sets {
		st.Nodes += len(s.names)
		// ids map (about 48 bytes an entry plus the name), names, edge maps.
		for _, n := range s.names {
			st.Bytes += int64(48 + 16 + len(n))
		}
		st.Bytes += int64(len(s.live)) * (64 + 2*32) // the tuple set and both edge maps
		for _, h := range s.hist {
			st.Entries += len(h)
			st.Bytes += int64(cap(h))*24 + 24
			for _, e := range h {
				if e.until == noUntil {
					st.Live++
				}
			}
		}
	}
	return st
}

// ClosureStats reports the nested-set index; all zero when the engine has none.
func (e *Engine) ClosureStats() ClosureStats {
	ix := e.closure.Load()
	if ix == nil {
		return ClosureStats{Walks: e.closureWalks.Load()}
	}
	st := ix.stats()
	st.Walks = e.closureWalks.Load()
	return st
}

// FollowOptions configure FollowChanges.
type FollowOptions struct {
	// History is how long the index keeps the closure of past revisions for reads at
	// them; older reads walk the store. Default 10 minutes.
	History time.Duration
	// Poll is how often to look for new revisions when src cannot wait for them
	// (tuples.RevisionWaiter). Default 50ms.
	Poll time.Duration
	// Ready, when not nil, is called after every catch-up with the applied revision.
	Ready func(tuples.Revision)
}

// FollowChanges builds the nested-set index from src and keeps it current from the
// change log until ctx ends, then returns ctx.Err(). Until it has built the index,
// and whenever it lags, requests walk the store as without it. Errors reading the
// store make it start over (after Poll); only ctx ends it.
func (e *Engine) FollowChanges(ctx context.Context, src ChangeSource, opts FollowOptions) error {
	if opts.Poll <= 0 {
		opts.Poll = 50 * time.Millisecond
	}
	waiter, _ := src.(tuples.RevisionWaiter)
	fl := &follower{e: e, src: src, history: opts.History}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := fl.step(ctx, time.Now())
		if err == nil && opts.Ready != nil {
			opts.Ready(fl.ix.applied)
		}
		if err == nil && waiter != nil {
			_, err = waiter.WaitForRevision(ctx, fl.ix.applied)
		}
		if err == nil && waiter != nil {
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(opts.Poll):
		}
	}
}

// follower is FollowChanges' state.
type follower struct {
	e       *Engine
	src     ChangeSource
	history time.Duration
	ix      *closureIndex
	marks   []revAt // applied revisions by time, for pruning
}

type revAt struct {
	at  time.Time
	rev tuples.Revision
}

// step brings the index to the head revision: it builds it when there is none (or
// the schema changed, or the change log no longer reaches it), else applies the
// changes since, then prunes the history older than f.history at now.
func (f *follower) step(ctx context.Context, now time.Time) error {
	if f.history <= 0 {
		f.history = 10 * time.Minute
	}
	head, err := f.src.HeadRevision(ctx)
	if err != nil {
		return err
	}
	if f.ix != nil && head > f.ix.applied {
		err = f.e.catchUp(ctx, f.src, f.ix, head)
		if errors.Is(err, errRebuild) {
			f.ix, err = nil, nil
		}
		if err != nil {
			return err
		}
	}
	if f.ix == nil {
		r, err := f.src.ReaderAt(ctx, head)
		if err != nil {
			return err
		}
		var ix *closureIndex
		c, err := f.e.schemaFor(ctx, r)
		switch {
		case err == nil:
			if ix, err = buildClosure(ctx, c, r); err != nil {
				return err
			}
		case errors.Is(err, tuples.ErrNoSchema):
			ix = &closureIndex{base: head, applied: head}
		default:
			return err
		}
		f.ix, f.marks = ix, nil
		f.e.closure.Store(ix)
	}
	f.marks = append(f.marks, revAt{now, f.ix.applied})
	i := 0
	for i < len(f.marks) && now.Sub(f.marks[i].at) > f.history {
		i++
	}
	if i > 0 {
		f.ix.prune(f.marks[i-1].rev)
		f.marks = f.marks[i:]
	}
	return nil
}

// errRebuild says the index must be built afresh.
var errRebuild = errors.New("closure index: rebuild")

// catchUp applies the changes in (ix.applied, head] to ix, revision by revision. It
// returns errRebuild when the schema changed in that range or the change log no
// longer reaches ix.applied.
func (e *Engine) catchUp(ctx context.Context, src ChangeSource, ix *closureIndex, head tuples.Revision) error {
	r, err := src.ReaderAt(ctx, head)
	if err != nil {
		return err
	}
	_, srev, err := r.Schema(ctx)
	if err != nil && !errors.Is(err, tuples.ErrNoSchema) {
		return fmt.Errorf("reading schema: %w", err)
	}
	if srev != ix.schemaRev {
		return errRebuild
	}
	var batch []tuples.Change
	for ch, err := range src.Changes(ctx, ix.applied) {
		if err != nil {
			if errors.Is(err, tuples.ErrRevisionExpired) {
				return errRebuild
			}
			return err
		}
		if ch.Revision > head {
			break
		}
		if _, ok := ix.byRel[relKey{ch.Tuple.Object.Type, ch.Tuple.Relation}]; !ok {
			continue // no nested set has this relation's edges: apply would skip it
		}
		if len(batch) > 0 && batch[0].Revision != ch.Revision {
			ix.apply(batch[0].Revision, batch)
			batch = batch[:0]
		}
		batch = append(batch, ch)
	}
	if len(batch) > 0 {
		ix.apply(batch[0].Revision, batch)
	}
	// Revisions without tuple changes (schema writes are ruled out above).
	ix.mu.Lock()
	ix.applied = head
	ix.mu.Unlock()
	return nil
}
