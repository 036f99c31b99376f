package cli

import "github.com/spf13/cobra"

// addSchemaModelsCommand registers subcommands of `relata schema`. Not built yet.
func addSchemaModelsCommand(schemaCmd *cobra.Command, s *streams) {
	_ = s
	_ = schemaCmd
}
