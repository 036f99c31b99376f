package cli

import "github.com/spf13/cobra"

// addSchemaRemoteCommands registers subcommands of `relata schema`. Not built yet.
func addSchemaRemoteCommands(schemaCmd *cobra.Command, s *streams) {
	_ = s
	_ = schemaCmd
}
