package check

import (
	"fmt"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

// compileSchema compiles stored schema text. Until schema.Compile lands it reports
// that compiling is not supported yet.
func compileSchema(text []byte) (*schema.Schema, error) {
	_ = text
	return nil, fmt.Errorf("check: schema compiler: %w", tuples.ErrNotSupported)
}
