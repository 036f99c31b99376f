package server

import (
	"context"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/tuples"
)

// revisionPicker chooses the revision a read uses.
//
// minimize_latency reuses one recent head revision for up to the quantization window,
// so that concurrent reads share a revision and hit the engine's cache; the revision
// is never older than the window. Every write this server acknowledges moves that
// revision forward at once (observe), so a client that writes and then reads through
// the same server sees its write even without passing the zookie: between writes,
// reads share one revision; right after one, they use it. at_least_as_fresh takes the
// recent revision when it is at least the zookie's and the head otherwise;
// at_exact_snapshot takes the zookie's; fully_consistent takes the head.
type revisionPicker struct {
	store        tuples.Store
	zookies      zookies
	quantization time.Duration

	// mu guards the cached head revision and when it was read.
	mu struct {
		sync.Mutex
		rev tuples.Revision
		at  time.Time
	}
}

func newRevisionPicker(store tuples.Store, z zookies, quantization time.Duration) *revisionPicker {
	return &revisionPicker{store: store, zookies: z, quantization: quantization}
}

// recent returns a revision at most the quantization window old.
func (p *revisionPicker) recent(ctx context.Context) (tuples.Revision, error) {
	if p.quantization < 0 {
		return p.store.HeadRevision(ctx)
	}
	now := time.Now()
	p.mu.Lock()
	rev, at := p.mu.rev, p.mu.at
	p.mu.Unlock()
	if !at.IsZero() && now.Sub(at) < p.quantization {
		return rev, nil
	}
	head, err := p.store.HeadRevision(ctx)
	if err != nil {
		return 0, err
	}
	p.mu.Lock()
	if head >= p.mu.rev {
		p.mu.rev, p.mu.at = head, now
	}
	p.mu.Unlock()
	return head, nil
}

// observe records that this server acknowledged a write at rev: minimize_latency
// reads from now on use rev or a later revision.
func (p *revisionPicker) observe(rev tuples.Revision) {
	p.mu.Lock()
	if rev > p.mu.rev {
		p.mu.rev, p.mu.at = rev, time.Now()
	}
	p.mu.Unlock()
}

// pick returns the revision for consistency c; field names the request field in errors.
func (p *revisionPicker) pick(ctx context.Context, c *relatav1.Consistency) (tuples.Revision, error) {
	switch req := c.GetRequirement().(type) {
	case nil, *relatav1.Consistency_MinimizeLatency:
		return p.recent(ctx)
	case *relatav1.Consistency_FullyConsistent:
		return p.store.HeadRevision(ctx)
	case *relatav1.Consistency_AtExactSnapshot:
		return p.zookies.decode("consistency.at_exact_snapshot", req.AtExactSnapshot)
	case *relatav1.Consistency_AtLeastAsFresh:
		want, err := p.zookies.decode("consistency.at_least_as_fresh", req.AtLeastAsFresh)
		if err != nil {
			return 0, err
		}
		rev, err := p.recent(ctx)
		if err != nil || rev >= want {
			return rev, err
		}
		head, err := p.store.HeadRevision(ctx)
		if err != nil {
			return 0, err
		}
		if head < want {
			return 0, fmt.Errorf("consistency.at_least_as_fresh names revision %d but the head is %d: %w", want, head, tuples.ErrRevisionInFuture)
		}
		return head, nil
	}
	return 0, &tuples.ValidationError{Field: "consistency", Value: fmt.Sprint(c), Reason: "unknown consistency requirement"}
}

// reader picks a revision for c and opens a reader at it.
func (s *Server) reader(ctx context.Context, c *relatav1.Consistency) (tuples.Reader, error) {
	rev, err := s.revs.pick(ctx, c)
	if err != nil {
		return nil, err
	}
	r, err := s.cfg.Store.ReaderAt(ctx, rev)
	return s.traced(ctx, r), err
}

// zookies are the zookies of the server's store: a zookie of another store is
// INVALID_ZOOKIE.
type zookies struct{ tuples.Zookies }

// decode decodes a zookie field, naming the field in the error.
func (zs zookies) decode(field, z string) (tuples.Revision, error) {
	if len(z) > MaxZookieBytes {
		return 0, &limitError{field: field, msg: fmt.Sprintf("%s: longer than %d bytes", field, MaxZookieBytes)}
	}
	rev, err := zs.Decode(z)
	if err != nil {
		return 0, &fieldError{field: field, err: err}
	}
	return rev, nil
}

// Zookie returns the zookie of rev in the server's store. Answers mostly carry the
// same few revisions (reads are quantized), so the last one encoded is kept: a
// zookie costs a SHA-256, which every check paid.
func (s *Server) Zookie(rev tuples.Revision) string {
	if z := s.lastZookie.Load(); z != nil && z.rev == rev {
		return z.text
	}
	text := s.revs.zookies.Encode(rev)
	s.lastZookie.Store(&encodedZookie{rev: rev, text: text})
	return text
}

// encodedZookie is a revision and its zookie.
type encodedZookie struct {
	rev  tuples.Revision
	text string
}

// decodeZookie decodes a zookie of the server's store in field.
func (s *Server) decodeZookie(field, z string) (tuples.Revision, error) {
	return s.revs.zookies.decode(field, z)
}

// A cursor resumes a stream at the revision it started on, after the last item sent,
// and only the query that returned it: base64url of "v2 REVISION QUERY LAST", where
// QUERY is a hash of the query (method and every field that selects results: type,
// permission, subject, filter; not limit or consistency, which may change between
// pages) and LAST is the text form of the last item. A cursor given to another query
// is INVALID_ARGUMENT INVALID_CURSOR.
const cursorVersion = "v2"

// queryKey returns the QUERY part of the cursors of a query made of parts.
func queryKey(parts ...string) string {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return strconv.FormatUint(h.Sum64(), 36)
}

// encodeCursor returns the cursor after item at rev for query (see queryKey).
func encodeCursor(rev tuples.Revision, query, last string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorVersion + " " + strconv.FormatUint(uint64(rev), 10) + " " + query + " " + last))
}

// invalidCursor is the INVALID_CURSOR error naming the field cursor.
func invalidCursor(why string) error {
	return errorf(codes.InvalidArgument, relatav1.ErrorReason_INVALID_CURSOR, "invalid cursor: "+why, map[string]string{"field": "cursor"})
}

// decodeCursor returns the revision and last item of a cursor of query.
func decodeCursor(c, query string) (tuples.Revision, string, error) {
	if len(c) > MaxZookieBytes*8 {
		return 0, "", invalidCursor("too long")
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", invalidCursor("not base64url")
	}
	parts := strings.SplitN(string(b), " ", 4)
	if len(parts) != 4 || parts[0] != cursorVersion {
		return 0, "", invalidCursor("unknown format (pass back a cursor this server returned)")
	}
	rev, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil {
		return 0, "", invalidCursor("bad revision")
	}
	if parts[2] != query {
		return 0, "", invalidCursor("it was returned by another query; a cursor resumes only the call that returned it, with the same method, type, permission, subject, object and filter")
	}
	return tuples.Revision(rev), parts[3], nil
}

// streamReader opens the reader of a paginated stream: at the cursor's revision when
// there is a cursor (so all pages see one snapshot), else per the consistency. It
// returns the last item of the cursor ("" without one), which must be a cursor of
// query (see queryKey).
func (s *Server) streamReader(ctx context.Context, c *relatav1.Consistency, cursor, query string) (tuples.Reader, string, error) {
	if cursor == "" {
		r, err := s.reader(ctx, c)
		return r, "", err
	}
	rev, last, err := decodeCursor(cursor, query)
	if err != nil {
		return nil, "", err
	}
	r, err := s.cfg.Store.ReaderAt(ctx, rev)
	return s.traced(ctx, r), last, err
}
