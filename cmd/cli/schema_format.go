package cli

import "github.com/spf13/cobra"

// addSchemaFormatCommand registers `relata schema format FILE [-w]`. Not built yet.
func addSchemaFormatCommand(schemaCmd *cobra.Command, s *streams) {
	_ = s
	_ = schemaCmd
}
