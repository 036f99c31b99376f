package server

import (
	"errors"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"

	"github.com/relata/relata/check"
	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/schema"
	"github.com/relata/relata/server/writes"
)

// classifyDomain holds the cases for the error types of the schema and check
// packages, tried before the generic ones of classify. It returns an empty reason for
// errors it does not know.
func classifyDomain(err error) (codes.Code, relatav1.ErrorReason, map[string]string) {
	var (
		nf   *check.NotFoundError
		md   *check.MaxDepthError
		ut   *schema.UnknownTypeError
		ur   *schema.UnknownRelationError
		na   *schema.NotAllowedError
		se   *schema.Error
		sel  schema.ErrorList
		orph *writes.OrphanError
		ce   *schema.ContextError
		ee   *schema.EvalError
	)
	switch {
	case errors.As(err, &ce) && ce.Stored:
		return codes.FailedPrecondition, relatav1.ErrorReason_CAVEAT_CONTEXT_NOT_ALLOWED, map[string]string{"caveat": ce.Caveat, "parameter": ce.Param}
	case errors.As(err, &ce):
		return codes.InvalidArgument, relatav1.ErrorReason_INVALID_CAVEAT_CONTEXT, map[string]string{"caveat": ce.Caveat, "parameter": ce.Param}
	case errors.As(err, &ee):
		return codes.InvalidArgument, relatav1.ErrorReason_CAVEAT_EVALUATION_FAILED, map[string]string{"caveat": ee.Caveat}
	case errors.As(err, &orph):
		return codes.FailedPrecondition, relatav1.ErrorReason_SCHEMA_ORPHANS_TUPLES, orphanMetadata(orph)
	case errors.As(err, &nf):
		reason := relatav1.ErrorReason_UNKNOWN_RELATION
		if nf.Relation == "" {
			reason = relatav1.ErrorReason_UNKNOWN_TYPE
		}
		return codes.NotFound, reason, map[string]string{"field": nf.Field, "type": nf.Type, "relation": nf.Relation}
	case errors.As(err, &md):
		return codes.ResourceExhausted, relatav1.ErrorReason_MAX_DEPTH_EXCEEDED, nil
	case errors.As(err, &ut):
		return codes.NotFound, relatav1.ErrorReason_UNKNOWN_TYPE, map[string]string{"type": ut.Type}
	case errors.As(err, &ur):
		return codes.NotFound, relatav1.ErrorReason_UNKNOWN_RELATION, map[string]string{"type": ur.Type, "relation": ur.Relation}
	case errors.As(err, &na):
		return codes.FailedPrecondition, relatav1.ErrorReason_SUBJECT_TYPE_NOT_ALLOWED, map[string]string{"type": na.Type, "relation": na.Relation, "subject": na.Subject}
	case errors.Is(err, schema.ErrTooLarge):
		return codes.InvalidArgument, relatav1.ErrorReason_LIMIT_EXCEEDED, map[string]string{"field": "schema"}
	case errors.As(err, &sel):
		if len(sel) == 0 {
			return codes.InvalidArgument, relatav1.ErrorReason_INVALID_SCHEMA, nil
		}
		md := schemaErrorMetadata(sel[0])
		md[MetadataErrors] = strconv.Itoa(len(sel))
		return codes.InvalidArgument, relatav1.ErrorReason_INVALID_SCHEMA, md
	case errors.As(err, &se):
		md := schemaErrorMetadata(se)
		md[MetadataErrors] = "1"
		return codes.InvalidArgument, relatav1.ErrorReason_INVALID_SCHEMA, md
	}
	return codes.OK, relatav1.ErrorReason_ERROR_REASON_UNSPECIFIED, nil
}

// Metadata keys of an INVALID_SCHEMA error's ErrorInfo: where the first error is, and
// how many the schema has, so that a client can name its own file in the positions
// without reading the message.
const (
	MetadataFile    = "file"    // the source name the server compiled ("schema")
	MetadataLine    = "line"    // 1-based line of the first error
	MetadataColumn  = "column"  // 1-based column of the first error
	MetadataProblem = "problem" // the first error's text without its position
	MetadataErrors  = "errors"  // how many errors the schema has
)

// schemaErrorMetadata is the position metadata of one schema error.
func schemaErrorMetadata(e *schema.Error) map[string]string {
	md := map[string]string{MetadataFile: e.Filename, MetadataProblem: e.Msg}
	if e.Pos.IsValid() {
		md[MetadataLine] = strconv.Itoa(e.Pos.Line)
		md[MetadataColumn] = strconv.Itoa(e.Pos.Column)
	}
	return md
}

// orphanMetadata is the ErrorInfo metadata of a refused schema write: "tuple" (one
// orphaned tuple), and when the write path counted them, "orphaned_tuples" (how many
// in all) and "relations": every relation with orphans and its count, as
// `doc#viewer=3,flow#denied=1` in the schema's order.
func orphanMetadata(e *writes.OrphanError) map[string]string {
	md := map[string]string{"tuple": e.Tuple.String()}
	if len(e.Orphans) == 0 {
		return md
	}
	var order []string
	counts := map[string]int64{}
	for _, o := range e.Orphans {
		rel := o.Removal.Type + "#" + o.Removal.Relation
		if _, ok := counts[rel]; !ok {
			order = append(order, rel)
		}
		counts[rel] += o.Count
	}
	parts := make([]string, len(order))
	for i, rel := range order {
		parts[i] = rel + "=" + strconv.FormatInt(counts[rel], 10)
	}
	md["relations"] = strings.Join(parts, ",")
	md["orphaned_tuples"] = strconv.FormatInt(e.Total(), 10)
	return md
}
