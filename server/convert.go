package server

import (
	"fmt"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/relata/relata/check"
	"github.com/relata/relata/internal/tupleproto"
	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/tuples"
)

// Conversion between relata.v1 messages and domain types. Every *FromProto function
// validates what it converts and fails with a *tuples.ValidationError naming the
// request field (in the proto's snake_case path, e.g. "updates[2].tuple.subject.object.id").

func required(field string) error {
	return &tuples.ValidationError{Field: field, Value: "", Reason: "required"}
}

func objectFromProto(field string, o *relatav1.ObjectRef) (tuples.ObjectRef, error) {
	if o == nil {
		return tuples.ObjectRef{}, required(field)
	}
	obj := tuples.ObjectRef{Type: o.GetType(), ID: o.GetId()}
	if err := tuples.ValidateName(field+".type", obj.Type); err != nil {
		return tuples.ObjectRef{}, err
	}
	if err := tuples.ValidateObjectID(field+".id", obj.ID); err != nil {
		return tuples.ObjectRef{}, err
	}
	return obj, nil
}

func subjectFromProto(field string, s *relatav1.SubjectRef) (tuples.SubjectRef, error) {
	if s == nil {
		return tuples.SubjectRef{}, required(field)
	}
	if s.GetObject() == nil {
		return tuples.SubjectRef{}, required(field + ".object")
	}
	sub := tuples.SubjectRef{
		Object:   tuples.ObjectRef{Type: s.GetObject().GetType(), ID: s.GetObject().GetId()},
		Relation: s.GetRelation(),
	}
	if sub.Relation == tuples.Ellipsis {
		sub.Relation = ""
	}
	if err := tuples.ValidateName(field+".object.type", sub.Object.Type); err != nil {
		return tuples.SubjectRef{}, err
	}
	if err := tuples.ValidateSubjectID(field+".object.id", sub.Object.ID); err != nil {
		return tuples.SubjectRef{}, err
	}
	if sub.Relation != "" {
		if sub.IsWildcard() {
			return tuples.SubjectRef{}, &tuples.ValidationError{Field: field + ".relation", Value: sub.Relation, Reason: "a wildcard subject cannot have a relation"}
		}
		if err := tuples.ValidateName(field+".relation", sub.Relation); err != nil {
			return tuples.SubjectRef{}, err
		}
	}
	return sub, nil
}

// tupleFromProto converts and validates a tuple; prefix ends with "." or is empty.
func tupleFromProto(prefix string, t *relatav1.Tuple) (tuples.Tuple, error) {
	if t == nil {
		return tuples.Tuple{}, required(trimDot(prefix))
	}
	obj, err := objectFromProto(prefix+"object", t.GetObject())
	if err != nil {
		return tuples.Tuple{}, err
	}
	if err := tuples.ValidateName(prefix+"relation", t.GetRelation()); err != nil {
		return tuples.Tuple{}, err
	}
	sub, err := subjectFromProto(prefix+"subject", t.GetSubject())
	if err != nil {
		return tuples.Tuple{}, err
	}
	out := tuples.Tuple{Object: obj, Relation: t.GetRelation(), Subject: sub}
	if c := t.GetCaveat(); c != nil {
		if err := tuples.ValidateName(prefix+"caveat.name", c.GetName()); err != nil {
			return tuples.Tuple{}, err
		}
		out.Caveat = &tuples.Caveat{Name: c.GetName()}
		if ctx := c.GetContext().AsMap(); len(ctx) > 0 {
			out.Caveat.Context = ctx
		}
	}
	if e := t.GetExpiresAt(); e != nil {
		if err := e.CheckValid(); err != nil {
			return tuples.Tuple{}, &tuples.ValidationError{Field: prefix + "expires_at", Value: e.String(), Reason: "not a valid timestamp: " + err.Error()}
		}
		out.ExpiresAt = e.AsTime().UTC()
	}
	return out, nil
}

// contextFromProto converts a request's caveat context (nil when empty).
func contextFromProto(s *structpb.Struct) map[string]any {
	if len(s.GetFields()) == 0 {
		return nil
	}
	return s.AsMap()
}

func trimDot(s string) string {
	if n := len(s); n > 0 && s[n-1] == '.' {
		return s[:n-1]
	}
	return s
}

func operationFromProto(field string, op relatav1.Operation) (tuples.Operation, error) {
	switch op {
	case relatav1.Operation_OPERATION_CREATE:
		return tuples.OpCreate, nil
	case relatav1.Operation_OPERATION_TOUCH:
		return tuples.OpTouch, nil
	case relatav1.Operation_OPERATION_DELETE:
		return tuples.OpDelete, nil
	}
	return 0, &tuples.ValidationError{Field: field, Value: op.String(), Reason: "must be CREATE, TOUCH or DELETE (or OPERATION_CREATE, OPERATION_TOUCH, OPERATION_DELETE)"}
}

func operationToProto(op tuples.Operation) relatav1.Operation {
	switch op {
	case tuples.OpCreate:
		return relatav1.Operation_OPERATION_CREATE
	case tuples.OpTouch:
		return relatav1.Operation_OPERATION_TOUCH
	case tuples.OpDelete:
		return relatav1.Operation_OPERATION_DELETE
	}
	return relatav1.Operation_OPERATION_UNSPECIFIED
}

// filterFromProto converts and validates a filter; nil selects everything.
func filterFromProto(field string, f *relatav1.TupleFilter) (tuples.Filter, error) {
	out := tuples.Filter{
		ObjectType:      f.GetObjectType(),
		ObjectID:        f.GetObjectId(),
		Relation:        f.GetRelation(),
		SubjectType:     f.GetSubject().GetType(),
		SubjectID:       f.GetSubject().GetId(),
		SubjectRelation: f.GetSubject().GetRelation(),
	}
	if o := f.GetSubject().GetObject(); o != nil {
		// The SubjectRef spelling: subject.object.{type,id}.
		for _, c := range []struct{ name, flat, nested string }{
			{"type", out.SubjectType, o.GetType()},
			{"id", out.SubjectID, o.GetId()},
		} {
			if c.flat != "" && c.nested != "" && c.flat != c.nested {
				return tuples.Filter{}, &tuples.ValidationError{Field: field + ".subject.object." + c.name, Value: c.nested,
					Reason: fmt.Sprintf("differs from subject.%s %q: set one of them", c.name, c.flat)}
			}
		}
		if o.GetType() != "" {
			out.SubjectType = o.GetType()
		}
		if o.GetId() != "" {
			out.SubjectID = o.GetId()
		}
	}
	check := func(name, v string, validate func(string, string) error) error {
		if v == "" {
			return nil
		}
		return validate(field+"."+name, v)
	}
	for _, c := range []struct {
		name, v  string
		validate func(string, string) error
	}{
		{"object_type", out.ObjectType, tuples.ValidateName},
		{"object_id", out.ObjectID, tuples.ValidateObjectID},
		{"relation", out.Relation, tuples.ValidateName},
		{"subject.type", out.SubjectType, tuples.ValidateName},
		{"subject.id", out.SubjectID, tuples.ValidateSubjectID},
	} {
		if err := check(c.name, c.v, c.validate); err != nil {
			return tuples.Filter{}, err
		}
	}
	if out.SubjectRelation != "" && out.SubjectRelation != tuples.Ellipsis {
		if err := tuples.ValidateName(field+".subject.relation", out.SubjectRelation); err != nil {
			return tuples.Filter{}, err
		}
	}
	if out.ObjectID != "" && out.ObjectType == "" {
		return tuples.Filter{}, &tuples.ValidationError{Field: field + ".object_id", Value: out.ObjectID, Reason: "requires object_type"}
	}
	if out.SubjectID != "" && out.SubjectType == "" {
		return tuples.Filter{}, &tuples.ValidationError{Field: field + ".subject.id", Value: out.SubjectID, Reason: "requires subject.type"}
	}
	return out, nil
}

func preconditionsFromProto(ps []*relatav1.Precondition) ([]tuples.Precondition, error) {
	if len(ps) > tuples.MaxPreconditions {
		return nil, &limitError{field: "preconditions", msg: fmt.Sprintf("preconditions: %d is more than the limit of %d", len(ps), tuples.MaxPreconditions)}
	}
	out := make([]tuples.Precondition, 0, len(ps))
	for i, p := range ps {
		field := fmt.Sprintf("preconditions[%d]", i)
		var op tuples.PreconditionOp
		switch p.GetOperation() {
		case relatav1.Precondition_OPERATION_MUST_MATCH:
			op = tuples.MustMatch
		case relatav1.Precondition_OPERATION_MUST_NOT_MATCH:
			op = tuples.MustNotMatch
		default:
			return nil, &tuples.ValidationError{Field: field + ".operation", Value: p.GetOperation().String(), Reason: "must be MUST_MATCH or MUST_NOT_MATCH (or OPERATION_MUST_MATCH, OPERATION_MUST_NOT_MATCH)"}
		}
		if p.GetFilter() == nil {
			return nil, required(field + ".filter")
		}
		f, err := filterFromProto(field+".filter", p.GetFilter())
		if err != nil {
			return nil, err
		}
		out = append(out, tuples.Precondition{Op: op, Filter: f})
	}
	return out, nil
}

func explanationToProto(e *check.Explanation) *relatav1.Explanation {
	if e == nil {
		return nil
	}
	out := &relatav1.Explanation{Step: e.Step, Result: e.Result, Note: e.Note, Conditional: e.Conditional, MissingContext: e.Missing}
	for _, c := range e.Children {
		out.Children = append(out.Children, explanationToProto(c))
	}
	return out
}

func expandTreeToProto(n *check.ExpandNode) *relatav1.ExpandTree {
	if n == nil {
		return nil
	}
	out := &relatav1.ExpandTree{Description: n.Description, Relation: n.Relation}
	switch n.Kind {
	case check.ExpandLeaf:
		out.Kind = relatav1.ExpandTree_KIND_LEAF
	case check.ExpandUnion:
		out.Kind = relatav1.ExpandTree_KIND_UNION
	case check.ExpandIntersection:
		out.Kind = relatav1.ExpandTree_KIND_INTERSECTION
	case check.ExpandExclusion:
		out.Kind = relatav1.ExpandTree_KIND_EXCLUSION
	}
	if n.Object != (tuples.ObjectRef{}) {
		out.Object = tupleproto.Object(n.Object)
	}
	for _, s := range n.Subjects {
		out.Subjects = append(out.Subjects, tupleproto.Subject(s))
	}
	for _, c := range n.Children {
		out.Children = append(out.Children, expandTreeToProto(c))
	}
	return out
}
