package server

import (
	"fmt"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

// compileSchema compiles schema text. Until schema.Compile lands it reports that
// compiling is not supported yet.
func compileSchema(text []byte) (*schema.Schema, error) {
	_ = text
	return nil, fmt.Errorf("server: schema compiler: %w", tuples.ErrNotSupported)
}

// orphanPreconditions returns MustNotMatch preconditions for the relations and
// subject types next removes from prev. Until schema.Diff lands it returns none.
func orphanPreconditions(prev, next *schema.Schema) []tuples.Precondition {
	_, _ = prev, next
	return nil
}
