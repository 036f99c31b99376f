package cli

import "github.com/spf13/cobra"

// addBulkCommands registers the bulk commands. Not built yet: they fail with "not supported yet".
func addBulkCommands(root *cobra.Command, s *streams) {
	_ = s
	_ = root
}
