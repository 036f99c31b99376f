// Package tupleproto converts relation tuples to their relata.v1 messages. The server
// answers with them and the Go client sends them; both use this one conversion.
package tupleproto

import (
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/tuples"
)

// Object converts a tuples.ObjectRef.
func Object(o tuples.ObjectRef) *relatav1.ObjectRef {
	return &relatav1.ObjectRef{Type: o.Type, Id: o.ID}
}

// Subject converts a tuples.SubjectRef.
func Subject(s tuples.SubjectRef) *relatav1.SubjectRef {
	return &relatav1.SubjectRef{Object: Object(s.Object), Relation: s.Relation}
}

// Tuple converts a tuples.Tuple with its caveat and expiration. A caveat context that
// structpb cannot hold (it holds every JSON value a tuple's context can carry) is left
// out rather than failing the whole answer.
func Tuple(t tuples.Tuple) *relatav1.Tuple {
	out := &relatav1.Tuple{Object: Object(t.Object), Relation: t.Relation, Subject: Subject(t.Subject)}
	if t.Caveat != nil {
		out.Caveat = &relatav1.ContextualizedCaveat{Name: t.Caveat.Name}
		if len(t.Caveat.Context) > 0 {
			if st, err := structpb.NewStruct(t.Caveat.Context); err == nil {
				out.Caveat.Context = st
			}
		}
	}
	if !t.ExpiresAt.IsZero() {
		out.ExpiresAt = timestamppb.New(t.ExpiresAt)
	}
	return out
}
