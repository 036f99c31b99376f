package check

import (
	"hash/maphash"
	"sync/atomic"

	"github.com/relata/relata/tuples"
)

// largeSlots is the number of relations largeRelations remembers (a power of two).
const largeSlots = 1 << 14

// largeRelations remembers stored relations (object#relation) that thisSmall found to
// hold more than smallRelation tuples (and subjects with more than subjectTuplesMax,
// see request.contains), so that later checks take the general path
// (probe the subject, scan the usersets) without reading the relation's first tuples
// again. That read stopped early, so the store could not keep it in its read cache:
// on the peer workload a tenant's viewer and developer relations (20-33 tuples) cost
// a Pebble seek and 17 decoded tuples on every uncached check before falling back
// (40% of BenchmarkClosurePeer/check's CPU).
//
// It is a hint only: both paths give the same answers and record the same reads, so
// a stale entry (the relation shrank since) or a collision costs speed, never
// correctness. Direct-mapped: a slot holds the 64-bit hash of the last relation found
// large there (0: none).
type largeRelations struct {
	seed  maphash.Seed
	slots [largeSlots]atomic.Uint64
}

func (l *largeRelations) hash(obj tuples.ObjectRef, rel string) uint64 {
	h := maphash.String(l.seed, obj.Type)
	h = h*0x9e3779b97f4a7c15 ^ maphash.String(l.seed, obj.ID)
	h = h*0x9e3779b97f4a7c15 ^ maphash.String(l.seed, rel)
	return h | 1
}

// has reports whether obj#rel was found large.
func (l *largeRelations) has(obj tuples.ObjectRef, rel string) bool {
	h := l.hash(obj, rel)
	return l.slots[h&(largeSlots-1)].Load() == h
}

// add records that obj#rel was found large.
func (l *largeRelations) add(obj tuples.ObjectRef, rel string) {
	h := l.hash(obj, rel)
	l.slots[h&(largeSlots-1)].Store(h)
}

// subjectSalt tells a subject's entry from a relation's.
const subjectSalt = 0x5bd1e9955bd1e995

// hasSubject reports whether subj was found to have more than subjectTuplesMax tuples.
func (l *largeRelations) hasSubject(subj tuples.SubjectRef) bool {
	h := l.hash(subj.Object, subj.Relation) ^ subjectSalt | 1
	return l.slots[h&(largeSlots-1)].Load() == h
}

// addSubject records that subj was found to have more than subjectTuplesMax tuples.
func (l *largeRelations) addSubject(subj tuples.SubjectRef) {
	h := l.hash(subj.Object, subj.Relation) ^ subjectSalt | 1
	l.slots[h&(largeSlots-1)].Store(h)
}
