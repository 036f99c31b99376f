package server

import (
	"errors"

	"google.golang.org/grpc/codes"

	"github.com/relata/relata/check"
	"github.com/relata/relata/schema"
)

// classifyDomain holds the cases for the error types of the schema and check
// packages, tried before the generic ones of classify. It returns an empty reason for
// errors it does not know.
func classifyDomain(err error) (codes.Code, string, map[string]string) {
	var (
		nf   *check.NotFoundError
		md   *check.MaxDepthError
		ut   *schema.UnknownTypeError
		ur   *schema.UnknownRelationError
		na   *schema.NotAllowedError
		se   *schema.Error
		sel  schema.ErrorList
		orph *orphanError
	)
	switch {
	case errors.As(err, &orph):
		return codes.FailedPrecondition, ReasonSchemaOrphans, map[string]string{"tuple": orph.tuple.String()}
	case errors.As(err, &nf):
		reason := ReasonUnknownRelation
		if nf.Relation == "" {
			reason = ReasonUnknownType
		}
		return codes.NotFound, reason, map[string]string{"field": nf.Field, "type": nf.Type, "relation": nf.Relation}
	case errors.As(err, &md):
		return codes.ResourceExhausted, ReasonMaxDepth, nil
	case errors.As(err, &ut):
		return codes.NotFound, ReasonUnknownType, map[string]string{"type": ut.Type}
	case errors.As(err, &ur):
		return codes.NotFound, ReasonUnknownRelation, map[string]string{"type": ur.Type, "relation": ur.Relation}
	case errors.As(err, &na):
		return codes.FailedPrecondition, ReasonSubjectNotAllowed, map[string]string{"type": na.Type, "relation": na.Relation, "subject": na.Subject}
	case errors.Is(err, schema.ErrTooLarge):
		return codes.InvalidArgument, ReasonLimitExceeded, map[string]string{"field": "schema"}
	case errors.As(err, &se), errors.As(err, &sel):
		return codes.InvalidArgument, ReasonInvalidSchema, nil
	}
	return codes.OK, "", nil
}
