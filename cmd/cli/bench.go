package cli

import "github.com/spf13/cobra"

// addBenchCommand registers the bench commands. Not built yet: they fail with "not supported yet".
func addBenchCommand(root *cobra.Command, s *streams) {
	_ = s
	_ = root
}
