package tuples

import (
	"context"
	"iter"
)

// Revision is a point in a store's history. Every committed write makes a new, larger
// revision; revision 0 is the empty store before any write.
type Revision uint64

// Reader reads one consistent snapshot: every method sees exactly the tuples live at
// Revision(). A Reader is safe for concurrent use and stays valid while its store is
// open (reads at a revision that GC has since passed fail with ErrRevisionExpired).
//
// Iterators yield tuples in the order stated; a yielded error ends the iteration.
// Breaking out of the loop early releases the underlying resources.
//
// Caveats and expiration: every tuple a Reader yields carries the caveat
// (name and stored context) and expiration it was written with. A tuple whose
// ExpiresAt is at or before the commit time of the reader's revision is not live for
// that reader (Contains false, never yielded); a store records each revision's commit
// time for this. Writing a tuple that is live again with another caveat or expiration
// replaces it at the new revision (older revisions still read the old one); writing it
// with the same ones changes nothing. The change log, Read, Subjects, Objects and
// Import carry caveats and expirations. tuplestest's CaveatsAndExpiration checks this.
type Reader interface {
	// Revision is the snapshot this reader sees.
	Revision() Revision

	// Contains reports whether the exact tuple t is live.
	Contains(ctx context.Context, t Tuple) (bool, error)

	// Subjects yields the tuples of object#relation, ordered by subject (type, id,
	// relation). A non-empty subjectType restricts them to that subject type.
	Subjects(ctx context.Context, object ObjectRef, relation, subjectType string) iter.Seq2[Tuple, error]

	// Objects yields the tuples whose subject is exactly subject and whose object type
	// and relation are objectType and relation, ordered by object id (reverse index).
	Objects(ctx context.Context, subject SubjectRef, objectType, relation string) iter.Seq2[Tuple, error]

	// Read yields the tuples matching f in the store's canonical order (object type,
	// object id, relation, subject type, subject id, subject relation), starting strictly
	// after `after` when it is non-nil. Callers page by passing the last tuple seen.
	Read(ctx context.Context, f Filter, after *Tuple) iter.Seq2[Tuple, error]

	// Schema returns the schema text in force at this revision and the revision that
	// wrote it. It returns ErrNoSchema when none was ever written.
	Schema(ctx context.Context) ([]byte, Revision, error)
}

// WriteRequest is one atomic write.
type WriteRequest struct {
	Updates       []Update
	Preconditions []Precondition
	// SchemaRevision, when non-zero, makes the write fail with ErrSchemaChanged if the
	// schema in force at commit time was written at another revision. Callers validate
	// tuples against the schema they read, then pass its revision here.
	SchemaRevision Revision
}

// Store is a tuple store. All methods are safe for concurrent use.
type Store interface {
	// Identity names the store: its random id, assigned when the store was created
	// (or, for a store created before stores had ids, when it was first opened by a
	// Relata that names stores) and kept across restarts. Two stores never share an
	// id; zookies name it (Zookies), so a zookie of one store is refused by another.
	Identity() Identity

	// HeadRevision is the newest committed revision.
	HeadRevision(ctx context.Context) (Revision, error)

	// ReaderAt returns a reader of revision rev. It fails with ErrRevisionExpired when
	// rev is older than the GC window and ErrRevisionInFuture when rev > head.
	ReaderAt(ctx context.Context, rev Revision) (Reader, error)

	// Write applies the updates atomically at a new revision after checking the
	// preconditions, and returns that revision once it is durable. Invalid input
	// (*ValidationError), a failed precondition (*PreconditionError), a CREATE of a live
	// tuple (*AlreadyExistsError) or a schema change (ErrSchemaChanged) changes nothing.
	Write(ctx context.Context, req WriteRequest) (Revision, error)

	// DeleteMatching deletes every live tuple matching f atomically, after checking the
	// preconditions, and returns the new revision and how many tuples it deleted.
	DeleteMatching(ctx context.Context, f Filter, preconditions []Precondition) (Revision, int, error)

	// WriteSchema stores schema text at a new revision. The preconditions are checked
	// atomically with it: callers pass MustNotMatch filters for the relations and subject
	// types the new schema removes, so no tuple is orphaned.
	WriteSchema(ctx context.Context, text []byte, preconditions []Precondition) (Revision, error)

	// SchemaHistory yields every schema written at or before revision `at`, newest
	// first. Schemas are kept for the store's lifetime (GC never drops them), so the
	// history reaches past the GC window. `at` beyond the head fails with
	// ErrRevisionInFuture.
	SchemaHistory(ctx context.Context, at Revision) iter.Seq2[SchemaVersion, error]

	// Changes yields the change log strictly after revision `after`, in commit order,
	// then returns. It fails with ErrRevisionExpired when `after` is older than the
	// GC window.
	Changes(ctx context.Context, after Revision) iter.Seq2[Change, error]

	// Close waits for in-flight writes and closes the store.
	Close() error
}

// SchemaVersion is one schema write: its text and the revision that wrote it.
type SchemaVersion struct {
	Revision Revision
	Text     []byte
}

// Counter is an optional capability of a Reader (check for it with a type assertion):
// counting the live tuples matching a filter without yielding them, e.g. with one
// SQL count. Count uses it and falls back on Read.
type Counter interface {
	// CountMatching returns how many tuples matching f are live at the reader's
	// revision.
	CountMatching(ctx context.Context, f Filter) (int64, error)
}

// Count returns how many tuples matching f are live at r's revision and, when there
// is at least one, the first of them in canonical order: the numbers a schema diff
// reports for each relation a change would orphan.
func Count(ctx context.Context, r Reader, f Filter) (int64, *Tuple, error) {
	var first *Tuple
	for t, err := range r.Read(ctx, f, nil) {
		if err != nil {
			return 0, nil, err
		}
		first = &t
		break
	}
	if first == nil {
		return 0, nil, nil
	}
	if c, ok := r.(Counter); ok {
		n, err := c.CountMatching(ctx, f)
		return n, first, err
	}
	var n int64
	for _, err := range r.Read(ctx, f, nil) {
		if err != nil {
			return 0, nil, err
		}
		n++
	}
	return n, first, nil
}

// Importer is an optional capability of a Store: a bulk-load path for large imports.
// Check for it with a type assertion (pebblestore.Store implements it).
type Importer interface {
	// Import writes ts with TOUCH semantics (duplicates and already-live tuples are
	// fine) atomically at one new revision, with one durable sync, and returns that
	// revision. It is not limited by the store's per-write update limit; callers
	// bound memory by chunking (e.g. 10,000 tuples a call). A non-zero
	// schemaRevision is checked as in WriteRequest.SchemaRevision. Invalid tuples fail
	// with a *ValidationError whose Field is "tuples[i]…" and change nothing.
	Import(ctx context.Context, ts []Tuple, schemaRevision Revision) (Revision, error)
}

// ImportPreparer is an optional capability of an Importer whose imports do much work
// before they write (sorting, encoding): a caller that imports in several calls
// prepares the next call while the previous one commits. pgstore.Store implements it.
type ImportPreparer interface {
	// PrepareImport does the part of Import(ts) that needs no store access, and may
	// run concurrently with any other call. Invalid tuples fail as in Import.
	PrepareImport(ts []Tuple) (PreparedImport, error)
	// ImportPrepared writes an import that PrepareImport of the same store returned,
	// as Import would have written its tuples.
	ImportPrepared(ctx context.Context, p PreparedImport, schemaRevision Revision) (Revision, error)
}

// PreparedImport is an import an ImportPreparer prepared, for its ImportPrepared.
type PreparedImport any

// RevisionWaiter is an optional capability of a Store that Watch uses to block
// until something new commits, instead of polling.
type RevisionWaiter interface {
	// WaitForRevision blocks until the head revision is greater than after, then
	// returns the head. It returns ctx.Err() when ctx ends first and ErrClosed when
	// the store closes.
	WaitForRevision(ctx context.Context, after Revision) (Revision, error)
}

// RecentHeader is an optional capability of a Store whose HeadRevision costs a round
// trip to a database: RecentHead returns, without one, a committed revision the store
// has recorded (at most the head, possibly behind it). A writer may validate against
// the schema there and pass its revision as WriteRequest.SchemaRevision: the store's
// check refuses the write (ErrSchemaChanged) if a newer schema has been written since.
type RecentHeader interface {
	RecentHead() Revision
}

// Scope names, approximately, the part of a store that one read depends on: the
// tuples of one object#relation (Contains and Subjects) or one subject's tuples in one
// object type#relation (Objects). Distinct parts may share a Scope; that only makes
// answers look changed more often.
type Scope uint16

// ScopeTracker is an optional capability of a Reader (check for it with a type
// assertion): it lets a caller that computed an answer from reads at one revision
// reuse it at a later one, when no write in between changed any scope it read.
type ScopeTracker interface {
	// ForwardScope is the scope of Contains and Subjects reads of object#relation.
	ForwardScope(object ObjectRef, relation string) Scope
	// ReverseScope is the scope of Objects(subject, objectType, relation).
	ReverseScope(subject SubjectRef, objectType, relation string) Scope
	// UnchangedSince reports whether reads of scope at revision since see the same
	// tuples as at this reader's revision (since ≤ Revision()): no write in
	// (since, Revision()] changed it. False when the tracker cannot tell.
	UnchangedSince(scope Scope, since Revision) bool
}

// ObjectsAfterReader is an optional capability of a Reader (check for it with a type
// assertion): Objects starting strictly after object id after. Lookups page through
// the reverse index with it, a few ids at a time, so that a lookup holds a bounded
// number of ids per scan and a cursor resumes a scan where it stopped; without it they
// scan from the start and skip.
type ObjectsAfterReader interface {
	ObjectsAfter(ctx context.Context, subject SubjectRef, objectType, relation, after string) iter.Seq2[Tuple, error]
}

// ObjectReader is an optional capability of a Reader (check for it with a type
// assertion): all of one object's tuples in one read. A check reads several
// relations of the object it is asked about (a flow's owner, grants, tenant and
// denials), and one pass over the object costs one index seek where a read per
// relation costs one each.
type ObjectReader interface {
	// ObjectTuples yields the tuples of object, every relation, ordered by relation
	// then subject (type, id, relation), as Subjects would relation by relation.
	ObjectTuples(ctx context.Context, object ObjectRef) iter.Seq2[Tuple, error]
}

// SubjectReader is an optional capability of a Reader (check for it with a type
// assertion): all the tuples of one subject in one read. A check asks whether its
// subject is in several relations it has likely never been asked about before (a
// tenant's viewer, then its developer: a point lookup each), where one read of the
// subject's own tuples, which later checks of the same subject share, answers them all.
type SubjectReader interface {
	// SubjectTuples yields the tuples whose subject is exactly subject (type, id and
	// relation), ordered by object type, relation, then object id, as Objects would
	// object type and relation by object type and relation.
	SubjectTuples(ctx context.Context, subject SubjectRef) iter.Seq2[Tuple, error]
}

// SubjectsAfterReader is an optional capability of a Reader (check for it with a type
// assertion): Subjects of one subject type whose subject id is strictly after after.
// LookupSubjects pages through the forward index with it, a few ids at a time, as
// lookups of resources do with ObjectsAfterReader.
type SubjectsAfterReader interface {
	SubjectsAfter(ctx context.Context, object ObjectRef, relation, subjectType, after string) iter.Seq2[Tuple, error]
}
