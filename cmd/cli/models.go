package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/relata/relata/schema/models"
	"github.com/spf13/cobra"
)

// addSchemaModelsCommand registers `relata schema models`, which lists the bundled
// permission models (schema/models) with a one-line description each.
func addSchemaModelsCommand(schemaCmd *cobra.Command, s *streams) {
	schemaCmd.AddCommand(&cobra.Command{
		Use:   "models",
		Short: "List the bundled permission models (for --model NAME)",
		Long: "List the permission models built into relata. Load one with\n" +
			"`relata serve --model NAME` or `relata schema write --model NAME`;\n" +
			"`relata serve` loads " + models.Default + " into an empty store.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printModels(s)
		},
	})
}

// printModels writes one line per bundled model: its name and description, the default
// model marked.
func printModels(s *streams) error {
	tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
	for _, name := range models.Names() {
		desc := models.Description(name)
		if name == models.Default {
			desc += " (default)"
		}
		fmt.Fprintf(tw, "%s\t%s\n", name, desc)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("schema models: %w", err)
	}
	return nil
}
