package check

import (
	"context"
	"errors"
	"iter"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/relata/relata/tuples"
)

// request is the state of one request: the snapshot, the schema and the per-request
// goroutine budget. It is shared by the goroutines of the request.
type request struct {
	e       *Engine
	r       tuples.Reader
	c       *compiled
	rev     string          // the read revision, in flight keys
	revNum  tuples.Revision // the read revision
	explain bool
	// dispatches and reads count sub-problems and store reads (CheckStats).
	dispatches, reads atomic.Int64
	// cacheHits counts sub-problems the shared cache answered, and depth is the
	// deepest frame evaluated (CheckStats).
	cacheHits, depth atomic.Int64
	// tracker names the scopes of reads when the reader can (see deps.go).
	tracker tuples.ScopeTracker
	// sem holds a token for every extra goroutine the request runs; when it is full,
	// work runs in the calling goroutine instead, so the fan-out is bounded and never
	// deadlocks.
	sem chan struct{}
	// memo, when not nil, holds this request's sub-problem answers that no cycle cut
	// touched (lookups check many candidates in one request).
	memo struct {
		sync.Mutex
		m map[string]memoEntry
	}
	// context is the request's caveat context, and ctxKey its canonical JSON ("" when
	// empty): in-flight sharing keys include it (see caveats.go).
	context map[string]any
	ctxKey  string
	// ctxKeys memoizes cacheCtx by node.
	ctxKeys struct {
		sync.Mutex
		byNode map[relKey]string
	}
	// root is the object a Check asks about (zero in lookups), and objects holds its
	// tuples once read whole (see subjects).
	root    tuples.ObjectRef
	objects struct {
		sync.Mutex
		read bool           // the root was read (or found too large: tuples nil)
		ok   bool           // tuples holds all of the root's tuples
		ts   []tuples.Tuple // by relation, then subject
	}
	// subject is the subject a Check asks about (zero in lookups), and subjectRead holds
	// its tuples once read whole (see contains).
	subject     tuples.SubjectRef
	subjectRead struct {
		sync.Mutex
		read bool           // the subject was read (or found too large: tuples nil)
		ok   bool           // ts holds all of the subject's tuples
		ts   []tuples.Tuple // by object type, relation, then object id
	}
	// members memoizes, per monotone userset node, the ids whose userset holds the
	// request's subject (see memberships). A request has one subject.
	members struct {
		sync.Mutex
		byNode map[relKey]*membership
	}
}

// membership is the memoized answer of memberships for one node.
type membership struct {
	mu   sync.Mutex // held while computing; guards ids, cut, deps and done
	ids  map[string]bool
	cut  *MaxDepthError // non-nil when the depth limit cut the walk short
	deps deps           // the scopes the walk read
	done bool
}

// memoEntry is a request-local answer and the scopes it depends on.
type memoEntry struct {
	ok, cond, volatile bool
	missing            []string
	f                  *cexpr
	deps               deps
}

func (e *Engine) newRequest(r tuples.Reader, c *compiled, explain bool) *request {
	q := &request{e: e, r: r, c: c, rev: strconv.FormatUint(uint64(r.Revision()), 10), revNum: r.Revision(), explain: explain}
	q.tracker, _ = r.(tuples.ScopeTracker)
	if !explain && e.opts.Concurrency > 1 {
		q.sem = make(chan struct{}, e.opts.Concurrency-1)
	}
	return q
}

// acquireGoroutine reports whether a task may run in a goroutine of its own: only when
// both this request's budget and the engine's (shared by all requests) have room. Under
// load every CPU is busy with other requests, and a goroutine per task would only add
// scheduling, contexts and stack growth. A true answer must be paired with
// releaseGoroutine when the goroutine ends.
func (q *request) acquireGoroutine() bool {
	select {
	case q.sem <- struct{}{}:
		select {
		case q.e.spawn <- struct{}{}:
			return true
		default:
			<-q.sem
		}
	default:
	}
	return false
}

// releaseGoroutine gives back what acquireGoroutine took.
func (q *request) releaseGoroutine() {
	<-q.e.spawn
	<-q.sem
}

// key is the cache, memo and deduplication key of a sub-problem under this request's
// schema (not its revision: see deps.go).
func (q *request) key(obj tuples.ObjectRef, rel string, subj tuples.SubjectRef) string {
	b := make([]byte, 0, len(q.c.revText)+len(obj.Type)+len(obj.ID)+len(rel)+len(subj.Object.Type)+len(subj.Object.ID)+len(subj.Relation)+8)
	b = append(b, q.c.revText...)
	b = append(b, '|')
	b = append(b, obj.Type...)
	b = append(b, ':')
	b = append(b, obj.ID...)
	b = append(b, '#')
	b = append(b, rel...)
	b = append(b, '@')
	b = append(b, subj.Object.Type...)
	b = append(b, ':')
	b = append(b, subj.Object.ID...)
	if subj.Relation != "" {
		b = append(b, '#')
		b = append(b, subj.Relation...)
	}
	return string(b)
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// rootTuplesMax bounds the tuples of a Check's object read in one pass: a larger object
// is read relation by relation (the pass is abandoned at the bound).
const rootTuplesMax = 32

// subjects yields the tuples of obj#rel as Reader.Subjects(obj, rel, "") does. The
// object a Check asks about is read whole on its first relation read, when the reader
// can (tuples.ObjectReader) and it has at most rootTuplesMax tuples, and its other
// relations are served from that read: an uncached check of the peer workload's
// flow#execute read owner, granted, tenant and denied of the flow by four index seeks.
// Every tuple comes from the same snapshot either way. It counts the store reads it
// makes (the whole object's is one; relations served from it none).
func (q *request) subjects(ctx context.Context, obj tuples.ObjectRef, rel string) iter.Seq2[tuples.Tuple, error] {
	ts, ok := q.rootTuples(ctx, obj)
	if !ok {
		q.reads.Add(1)
		return q.r.Subjects(ctx, obj, rel, "")
	}
	return func(yield func(tuples.Tuple, error) bool) {
		for _, t := range ts {
			if t.Relation == rel && !yield(t, nil) {
				return
			}
		}
	}
}

// rootTuples returns all of obj's tuples when obj is the Check's own object and was
// (or now is) read whole, and false when the caller must read relation by relation.
func (q *request) rootTuples(ctx context.Context, obj tuples.ObjectRef) ([]tuples.Tuple, bool) {
	or, can := q.r.(tuples.ObjectReader)
	if !can || obj != q.root || obj == (tuples.ObjectRef{}) {
		return nil, false
	}
	q.objects.Lock()
	defer q.objects.Unlock()
	if !q.objects.read {
		q.objects.read = true
		q.reads.Add(1)
		ts, ok, err := readWhole(or.ObjectTuples(ctx, obj), rootTuplesMax, false)
		if err != nil {
			q.objects.read = false // not kept: the relation's own read reports it
		}
		q.objects.ok, q.objects.ts = ok, ts
	}
	return q.objects.ts, q.objects.ok
}

// readWhole collects the tuples seq yields, and false when there are more than max,
// one of them is conditional while plainOnly is set, or the read failed.
func readWhole(seq iter.Seq2[tuples.Tuple, error], max int, plainOnly bool) ([]tuples.Tuple, bool, error) {
	var ts []tuples.Tuple
	for t, err := range seq {
		if err != nil {
			return nil, false, err
		}
		if len(ts) == max || plainOnly && t.Conditional() {
			return nil, false, nil
		}
		ts = append(ts, t)
	}
	return ts, true, nil
}

// subjectTuplesMax bounds the tuples of a Check's subject read in one pass: for a
// larger subject (or one with a conditional tuple) the pass is abandoned, and the
// engine remembers it (largeRelations), so that later checks probe at once.
const subjectTuplesMax = 32

// contains reports whether tuple t is stored, as Reader.Contains does. When t's subject
// is the Check's own, it reads the subject's tuples whole on the first such probe, when
// the reader can (tuples.SubjectReader) and there are at most subjectTuplesMax, and
// answers this and every later probe from them: an uncached check of the peer
// workload's tenant side probed the subject in the tenant's viewer, then developer
// relation, each a point lookup of a pair seldom asked before (the read cache's entries
// are per tuple), where the subject's tuples are one read that later checks of the same
// subject find in the read cache. Every tuple comes from the same snapshot either way.
// It counts the store reads it makes.
func (q *request) contains(ctx context.Context, t tuples.Tuple) (bool, error) {
	if ts, ok := q.subjectTuples(ctx, t.Subject); ok {
		for _, x := range ts {
			if x.Object == t.Object && x.Relation == t.Relation {
				return true, nil
			}
		}
		return false, nil
	}
	q.reads.Add(1)
	return q.r.Contains(ctx, t)
}

// subjectTuples returns all of subj's tuples when subj is the Check's own subject and
// was (or now is) read whole, and false when the caller must probe.
func (q *request) subjectTuples(ctx context.Context, subj tuples.SubjectRef) ([]tuples.Tuple, bool) {
	sr, can := q.r.(tuples.SubjectReader)
	if !can || subj != q.subject || subj.Object == (tuples.ObjectRef{}) {
		return nil, false
	}
	q.subjectRead.Lock()
	defer q.subjectRead.Unlock()
	if !q.subjectRead.read {
		q.subjectRead.read = true
		if q.e.large.hasSubject(subj) {
			return nil, false
		}
		q.reads.Add(1)
		// A subject with a conditional tuple is probed instead: the store's read cache
		// does not keep such a read, so every check would read it again.
		ts, ok, err := readWhole(sr.SubjectTuples(ctx, subj), subjectTuplesMax, true)
		switch {
		case err != nil:
			q.subjectRead.read = false // not kept: the probe's own read reports it
		case !ok:
			q.e.large.addSubject(subj)
		}
		q.subjectRead.ok, q.subjectRead.ts = ok, ts
	}
	return q.subjectRead.ts, q.subjectRead.ok
}
