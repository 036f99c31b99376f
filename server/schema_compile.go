package server

import (
	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

// compileSchema compiles schema text; errors print as `schema:LINE:COL: reason`.
func compileSchema(text []byte) (*schema.Schema, error) {
	return schema.Compile("schema", text)
}

// orphanRemovals lists what next removes from prev that stored tuples may use; nothing
// when there is no previous schema.
func orphanRemovals(prev, next *schema.Schema) []schema.Removal {
	if prev == nil {
		return nil
	}
	return schema.Diff(prev, next)
}

// removalOf returns a description of the removal that t would be orphaned by.
func removalOf(removals []schema.Removal, t tuples.Tuple) string {
	for _, r := range removals {
		if r.Filter().Matches(t) {
			return r.String()
		}
	}
	return "a relation or subject type"
}
