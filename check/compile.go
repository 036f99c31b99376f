package check

import "github.com/relata/relata/schema"

// compileSchema compiles stored schema text.
func compileSchema(text []byte) (*schema.Schema, error) {
	return schema.Compile("schema", text)
}
