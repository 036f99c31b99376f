package check

import (
	"container/heap"
	"context"
	"fmt"
	"slices"

	"github.com/relata/relata/tuples"
)

// streamNodes returns the nodes a streaming lookup of target does not collect, with
// the number of computed-userset hops from each to target: target itself and the
// relations of its type that feed it only through computed usersets (`permission view
// = viewer + editor`), none of them on a cycle of the schema graph. Their objects are
// merged from sorted scans (see LookupResources). It is empty when target lies on a
// cycle: the walk then has to remember every object it reached.
func (c *compiled) streamNodes(target relKey, relevant map[relKey]bool) map[relKey]int {
	if c.cyclic[target] {
		return nil
	}
	cand := map[relKey]bool{}
	for k := range relevant {
		if k.typ == target.typ && !c.cyclic[k] {
			cand[k] = true
		}
	}
	// A candidate stays only when every way its usersets are included in relevant
	// nodes is a computed userset of another candidate.
	for changed := true; changed; {
		changed = false
		for k := range cand {
			if k == target {
				continue
			}
			for _, pe := range c.parents[k] {
				if relevant[pe.parent] && (pe.kind != viaComputed || !cand[pe.parent]) {
					delete(cand, k)
					changed = true
					break
				}
			}
		}
	}
	hops := map[relKey]int{target: 0}
	queue := []relKey{target}
	for i := 0; i < len(queue); i++ {
		m := queue[i]
		for n := range cand {
			if _, done := hops[n]; done {
				continue
			}
			for _, pe := range c.parents[n] {
				if pe.kind == viaComputed && pe.parent == m && relevant[m] {
					hops[n] = hops[m] + 1
					queue = append(queue, n)
					break
				}
			}
		}
	}
	return hops
}

// streamPlan collects the sources of a streaming lookup while the walk runs: sorted
// reverse-index scans and single ids, each with the depth at which its objects reach
// the target and the fact it came from (for depth errors).
type streamPlan struct {
	hops  map[relKey]int
	scans map[scanKey]*source
	ids   map[string]origin // single ids, with the least depth found
	// cache, when not nil, serves and stores whole scans (see stream_cache.go).
	cache *streamCache
}

// scanKey names a reverse-index scan, Objects(subj, typ, rel), or, when forward is
// set, a forward one: Subjects(subj.Object, rel, typ), the plain subjects of type typ
// (no userset, no wildcard) of subj.Object#rel, for LookupSubjects.
type scanKey struct {
	subj     tuples.SubjectRef
	typ, rel string
	forward  bool
}

// origin is where a source's objects come from: their depth at the target, the fact
// they were reached from (-1: the subject) and the node they enter.
type origin struct {
	depth int
	from  int
	node  relKey
}

// streams reports whether plan streams node k, and k's hops to the target. A nil plan
// streams nothing.
func (p *streamPlan) streams(k relKey) (int, bool) {
	if p == nil {
		return 0, false
	}
	h, ok := p.hops[k]
	return h, ok
}

func (p *streamPlan) addScan(s tuples.SubjectRef, typ, rel string, depth, from int, node relKey) {
	if p.scans == nil {
		p.scans = make(map[scanKey]*source)
	}
	k := scanKey{subj: s, typ: typ, rel: rel}
	if src := p.scans[k]; src != nil {
		if depth < src.origin.depth {
			src.origin = origin{depth, from, node}
		}
		return
	}
	p.scans[k] = &source{scan: k, origin: origin{depth, from, node}, more: true}
}

func (p *streamPlan) addID(id string, depth, from int, node relKey) {
	if p.ids == nil {
		p.ids = make(map[string]origin)
	}
	if o, ok := p.ids[id]; !ok || depth < o.depth {
		p.ids[id] = origin{depth, from, node}
	}
}

// source is one sorted stream of ids: an index scan read a few ids at a time (object
// ids of a reverse-index scan, subject ids of a forward one), or a fixed sorted list.
type source struct {
	scan   scanKey
	origin origin
	list   []origin // per id of ids, for a fixed list
	ids    []string // buffered ids; ids[0] is the head
	more   bool     // the scan may have ids after last
	last   string   // the last id read
	fills  int      // how many times the scan was read
	// cache serves the scan whole when it holds it; otherwise, when the scan starts
	// at its first id, rec collects its ids for the cache (recording) until the
	// scan ends, unless it is too long or has a tuple with a caveat or expiration.
	cache     *streamCache
	tried     bool
	recording bool
	rec       []string
}

// fill reads up to n ids after s.last.
func (s *source) fill(ctx context.Context, r tuples.Reader, n int) error {
	s.ids = s.ids[:0]
	if !s.more {
		return nil
	}
	if !s.tried {
		s.tried = true
		if ids, ok := s.cache.get(s.scan, r); ok {
			i, found := slices.BinarySearch(ids, s.last)
			if found {
				i++
			}
			s.ids, s.more = ids[i:], false
			if len(s.ids) > 0 {
				s.last = s.ids[len(s.ids)-1]
			}
			return nil
		}
		s.recording = s.cache != nil && s.last == ""
	}
	var seq func(yield func(tuples.Tuple, error) bool)
	if s.scan.forward {
		obj := s.scan.subj.Object
		if sr, paged := r.(tuples.SubjectsAfterReader); paged {
			seq = sr.SubjectsAfter(ctx, obj, s.scan.rel, s.scan.typ, s.last)
		} else {
			seq = r.Subjects(ctx, obj, s.scan.rel, s.scan.typ)
		}
	} else if ar, paged := r.(tuples.ObjectsAfterReader); paged {
		seq = ar.ObjectsAfter(ctx, s.scan.subj, s.scan.typ, s.scan.rel, s.last)
	} else {
		seq = r.Objects(ctx, s.scan.subj, s.scan.typ, s.scan.rel)
	}
	s.more = false
	for t, err := range seq {
		if err != nil {
			if s.scan.forward {
				return fmt.Errorf("reading %s#%s: %w", s.scan.subj.Object, s.scan.rel, err)
			}
			return fmt.Errorf("reading objects of %s: %w", s.scan.subj, err)
		}
		if s.recording && (t.Caveat != nil || !t.ExpiresAt.IsZero()) {
			s.recording, s.rec = false, nil
		}
		id := t.Object.ID
		if s.scan.forward {
			if t.Subject.Relation != "" {
				continue
			}
			id = t.Subject.Object.ID
		}
		if id <= s.last || id == tuples.Wildcard {
			continue
		}
		if len(s.ids) == n {
			s.more = true
			break
		}
		s.ids = append(s.ids, id)
	}
	if len(s.ids) > 0 {
		s.last = s.ids[len(s.ids)-1]
	}
	if s.recording {
		s.rec = append(s.rec, s.ids...)
		switch {
		case len(s.rec) > streamCacheMaxIDs:
			s.recording, s.rec = false, nil
		case !s.more:
			s.cache.put(s.scan, r, s.rec)
			s.recording, s.rec = false, nil
		}
	}
	return nil
}

// merger merges the sources of a plan in id order, each id once.
type merger struct {
	r   tuples.Reader
	h   sourceHeap
	per int // ids each scan buffers at most
}

// size is how many ids to read into s next: lookupScanFirst the first time (no more
// than limit, when the call wants limit results: a page of one reads one id per
// scan), twice as many each time after, up to m.per. A small page stays cheap, a long
// lookup soon reads m.per ids per seek.
func (m *merger) size(s *source, limit int) int {
	n := lookupScanFirst << min(s.fills, 16)
	if s.fills == 0 && limit > 0 {
		n = min(n, limit)
	}
	s.fills++
	return max(1, min(n, m.per))
}

// merge returns the merger of p's sources and of the collected ids of the target
// (held when the target is not streamed), starting after `after` when resume is set;
// limit (0: none) is how many results the caller wants.
func (p *streamPlan) merge(ctx context.Context, r tuples.Reader, collected map[string]bool, after string, resume bool, limit int) (*merger, error) {
	m := &merger{r: r, per: lookupScanMax}
	if n := len(p.scans); n > 0 {
		m.per = max(1, min(lookupScanMax, lookupScanIDs/n))
	}
	keyed := make([]scanKey, 0, len(p.scans))
	for k := range p.scans {
		keyed = append(keyed, k)
	}
	// A deterministic order, so that equal heads pop in the same order every time.
	slices.SortFunc(keyed, func(a, b scanKey) int {
		return compareStrings(a.String(), b.String())
	})
	for _, k := range keyed {
		src := p.scans[k]
		src.last, src.cache = after, p.cache
		if err := src.fill(ctx, r, m.size(src, limit)); err != nil {
			return nil, err
		}
		if len(src.ids) > 0 {
			m.h = append(m.h, src)
		}
	}
	if len(p.ids) > 0 || len(collected) > 0 {
		fixed := &source{}
		for id, o := range p.ids {
			if o.depth >= 0 && (!resume || id > after) {
				fixed.ids = append(fixed.ids, id)
			}
		}
		for id := range collected {
			if _, dup := p.ids[id]; !dup && (!resume || id > after) {
				fixed.ids = append(fixed.ids, id)
			}
		}
		slices.Sort(fixed.ids)
		fixed.list = make([]origin, len(fixed.ids))
		for i, id := range fixed.ids {
			if o, ok := p.ids[id]; ok {
				fixed.list[i] = o
			} else {
				fixed.list[i] = origin{depth: 0, from: -1} // collected within the limit
			}
		}
		if len(fixed.ids) > 0 {
			m.h = append(m.h, fixed)
		}
	}
	heap.Init(&m.h)
	return m, nil
}

// String names the scan, for a deterministic order of scans.
func (k scanKey) String() string {
	if k.forward {
		return "> " + k.subj.Object.String() + "#" + k.rel + " " + k.typ
	}
	return "< " + k.subj.String() + " " + k.typ + " " + k.rel
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// next returns the least id not returned yet and the least depth at which it reaches
// the target; ok is false when there are none left.
func (m *merger) next(ctx context.Context) (id string, depth int, ok bool, err error) {
	if len(m.h) == 0 {
		return "", 0, false, nil
	}
	id = m.h[0].ids[0]
	depth = -1
	for len(m.h) > 0 && m.h[0].ids[0] == id {
		s := m.h[0]
		d := s.origin.depth
		if s.list != nil {
			d = s.list[0].depth
			s.list = s.list[1:]
		}
		if depth < 0 || d < depth {
			depth = d
		}
		s.ids = s.ids[1:]
		if len(s.ids) == 0 && s.list == nil {
			if err := s.fill(ctx, m.r, m.size(s, 0)); err != nil {
				return "", 0, false, err
			}
		}
		if len(s.ids) == 0 {
			heap.Pop(&m.h)
		} else {
			m.h.down0()
		}
	}
	return id, depth, true, nil
}

// down0 restores the heap order after the head's id grew: heap.Fix(h, 0) without
// its interface calls, and nothing to do for a single source (a lookup's commonest
// case: one tenant's flows). Profile of the peer lookup with its scans cached: the
// merge's heap.Fix was the largest part of the engine's own CPU.
func (h sourceHeap) down0() {
	n := len(h)
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		j := l
		if r := l + 1; r < n && h[r].ids[0] < h[l].ids[0] {
			j = r
		}
		if !(h[j].ids[0] < h[i].ids[0]) {
			return
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
}

// depthError names the shortest path by which id reached the target, all of which
// are longer than the limit.
func (p *streamPlan) depthError(limit int, facts []fact, subj tuples.SubjectRef, target relKey, id string) *MaxDepthError {
	from, node := -1, target
	best := -1
	consider := func(o origin) {
		if best < 0 || o.depth < best {
			best, from, node = o.depth, o.from, o.node
		}
	}
	if o, ok := p.ids[id]; ok {
		consider(o)
	}
	for _, s := range p.scans {
		consider(s.origin) // the scans that yielded id are not tracked; name the shallowest
	}
	path := []string{target.typ + ":" + id + "#" + target.rel}
	if node != target {
		path = append(path, node.typ+":"+id+"#"+node.rel)
	}
	for i := from; i >= 0; i = facts[i].parent {
		path = append(path, facts[i].k.typ+":"+facts[i].id+"#"+facts[i].k.rel)
	}
	path = append(path, subj.String())
	slices.Reverse(path)
	return &MaxDepthError{Limit: limit, Path: path}
}

// sourceHeap orders sources by their head id.
type sourceHeap []*source

func (h sourceHeap) Len() int           { return len(h) }
func (h sourceHeap) Less(i, j int) bool { return h[i].ids[0] < h[j].ids[0] }
func (h sourceHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *sourceHeap) Push(x any)        { *h = append(*h, x.(*source)) }
func (h *sourceHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
