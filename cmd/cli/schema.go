package cli

import "github.com/spf13/cobra"

// addSchemaCommands registers the schema commands. Not built yet: they fail with "not supported yet".
func addSchemaCommands(root *cobra.Command, s *streams) {
	_ = s
	_ = root
}
