package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/relata/relata/check/validationfile"
)

// addValidateCommand registers `relata validate FILE...`.
func addValidateCommand(root *cobra.Command, s *streams) {
	root.AddCommand(newValidateCmd(s))
}

func newValidateCmd(s *streams) *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Run validation files offline (schema, relationships, assertions, validation)",
		Long: `Validate runs zed-style validation files without a server: it loads each file's
schema and relationships into an in-memory store and checks its assertions and
expected subject sets. Each failure is printed as FILE:LINE: what was expected and
what was got. It exits 0 when every file passes and 1 otherwise. Files using caveats
or expiration fail with "not supported yet".`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			failed := 0
			for _, path := range args {
				problems, err := validationfile.RunFile(cmd.Context(), path)
				if err != nil {
					return fmt.Errorf("validate %s: %w", path, err)
				}
				for _, p := range problems {
					fmt.Fprintln(s.err, p)
				}
				if len(problems) > 0 {
					failed++
					continue
				}
				fmt.Fprintf(s.out, "%s: ok\n", path)
			}
			if failed > 0 {
				fmt.Fprintf(s.err, "%d of %d files failed\n", failed, len(args))
				return silentExit(ExitError)
			}
			return nil
		},
	}
}
