package client

import (
	"context"
	"io"
	"strings"

	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/tuples"
)

// ParseFilter parses a tuple filter in text form, `TYPE[:ID][#RELATION][@SUBJECT]`
// where SUBJECT is `TYPE[:ID][#RELATION]`: `flow:f1#user_granted`, `tenant#admin@user:anne`,
// `flow@role:ops#member`. Empty parts match anything; the server validates the names.
func ParseFilter(s string) (*relatav1.TupleFilter, error) {
	obj, sub, hasSubject := strings.Cut(s, "@")
	f := &relatav1.TupleFilter{}
	f.ObjectType, f.ObjectId, f.Relation = splitFilterPart(obj)
	if f.ObjectType == "" && (f.ObjectId != "" || f.Relation != "") {
		return nil, &tuples.ValidationError{Field: "filter", Value: s, Reason: "want TYPE[:ID][#RELATION][@SUBJECT_TYPE[:ID][#RELATION]]: the object type comes first"}
	}
	if hasSubject {
		typ, id, rel := splitFilterPart(sub)
		if typ == "" {
			return nil, &tuples.ValidationError{Field: "filter", Value: s, Reason: "want TYPE[:ID][#RELATION][@SUBJECT_TYPE[:ID][#RELATION]]: the subject after @ needs a type"}
		}
		f.Subject = &relatav1.SubjectFilter{Type: typ, Id: id, Relation: rel}
	}
	return f, nil
}

// ParseSubjectFilter parses a subject filter, `TYPE[:ID][#RELATION]`.
func ParseSubjectFilter(s string) *relatav1.SubjectFilter {
	typ, id, rel := splitFilterPart(s)
	return &relatav1.SubjectFilter{Type: typ, Id: id, Relation: rel}
}

func splitFilterPart(s string) (typ, id, rel string) {
	rest, rel, _ := strings.Cut(s, "#")
	typ, id, _ = strings.Cut(rest, ":")
	return typ, id, rel
}

// Precondition guards a write: at the revision the write commits, a tuple matching
// Filter must exist (MustMatch) or must not.
type Precondition struct {
	MustMatch bool
	Filter    *relatav1.TupleFilter
}

// Require is the precondition that a tuple matching filter (text form) exists.
func Require(filter string) (Precondition, error) {
	f, err := ParseFilter(filter)
	return Precondition{MustMatch: true, Filter: f}, err
}

// Forbid is the precondition that no tuple matching filter (text form) exists.
func Forbid(filter string) (Precondition, error) {
	f, err := ParseFilter(filter)
	return Precondition{Filter: f}, err
}

func preconditionsProto(ps []Precondition) []*relatav1.Precondition {
	out := make([]*relatav1.Precondition, len(ps))
	for i, p := range ps {
		op := relatav1.Precondition_OPERATION_MUST_NOT_MATCH
		if p.MustMatch {
			op = relatav1.Precondition_OPERATION_MUST_MATCH
		}
		out[i] = &relatav1.Precondition{Operation: op, Filter: p.Filter}
	}
	return out
}

// WriteIf applies updates atomically if every precondition holds, and returns the
// zookie of the new revision. A failed precondition is FAILED_PRECONDITION
// PRECONDITION_FAILED and writes nothing.
func (c *Client) WriteIf(ctx context.Context, updates []Update, preconditions []Precondition) (string, error) {
	req := &relatav1.WriteRequest{Preconditions: preconditionsProto(preconditions)}
	for _, u := range updates {
		op := map[tuples.Operation]relatav1.Operation{
			tuples.OpTouch:  relatav1.Operation_OPERATION_TOUCH,
			tuples.OpCreate: relatav1.Operation_OPERATION_CREATE,
			tuples.OpDelete: relatav1.Operation_OPERATION_DELETE,
		}[u.Op]
		req.Updates = append(req.Updates, &relatav1.TupleUpdate{Operation: op, Tuple: TupleProto(u.Tuple)})
	}
	resp, err := c.tuples.Write(ctx, req)
	if err != nil {
		return "", FromStatus(err)
	}
	return resp.GetWrittenAt(), nil
}

// DeleteMatching deletes every tuple filter selects, atomically and if every
// precondition holds, and returns the zookie of the new revision and how many tuples
// it deleted.
func (c *Client) DeleteMatching(ctx context.Context, filter *relatav1.TupleFilter, preconditions []Precondition) (string, uint32, error) {
	resp, err := c.tuples.Delete(ctx, &relatav1.DeleteRequest{Filter: filter, Preconditions: preconditionsProto(preconditions)})
	if err != nil {
		return "", 0, FromStatus(err)
	}
	return resp.GetDeletedAt(), resp.GetDeleted(), nil
}

// Page is one page of a Read: the tuples, the zookie of the revision read, and the
// cursor that resumes after the last tuple ("" when the read reached the end).
type Page struct {
	Tuples []tuples.Tuple
	ReadAt string
	Cursor string
}

// Read returns the tuples filter selects, at most limit of them (0: all), starting
// after cursor ("" for the first page). Pass the page's Cursor to read the next page.
// A stream cut by an unavailable server resumes after the last tuple received.
func (c *Client) Read(ctx context.Context, filter *relatav1.TupleFilter, cons Consistency, cursor string, limit uint32) (Page, error) {
	var p Page
	err := resumeStream(ctx, cursor,
		func(ctx context.Context, cursor string) (func() (*relatav1.ReadResponse, error), error) {
			rest := limit
			if limit > 0 {
				rest = limit - uint32(len(p.Tuples))
				if rest == 0 {
					return func() (*relatav1.ReadResponse, error) { return nil, io.EOF }, nil
				}
			}
			s, err := c.tuples.Read(ctx, &relatav1.ReadRequest{Filter: filter, Consistency: cons.pb, Cursor: cursor, Limit: rest, BatchResults: true})
			if err != nil {
				return nil, err
			}
			return s.Recv, nil
		},
		(*relatav1.ReadResponse).GetCursor,
		func(resp *relatav1.ReadResponse) error {
			for _, r := range resp.GetResults() {
				p.Tuples = append(p.Tuples, TupleFromProto(r.GetTuple()))
			}
			p.ReadAt, p.Cursor = resp.GetReadAt(), resp.GetCursor()
			return nil
		})
	if err != nil {
		return Page{}, err
	}
	if limit == 0 || uint32(len(p.Tuples)) < limit {
		p.Cursor = ""
	}
	return p, nil
}
