package cli

import "github.com/spf13/cobra"

// addSchemaCommands registers `relata schema` and its subcommands.
func addSchemaCommands(root *cobra.Command, s *streams) {
	schemaCmd := &cobra.Command{Use: "schema", Short: "Format, write, read and list schemas"}
	root.AddCommand(schemaCmd)
	addSchemaRemoteCommands(schemaCmd, s) // write, read (schema_remote.go)
	addSchemaModelsCommand(schemaCmd, s)  // models (models.go)
	addSchemaFormatCommand(schemaCmd, s)  // format (schema_format.go)
}
