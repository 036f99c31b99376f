package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/relata/relata/validation"
)

// addValidateCommand registers `relata validate FILE...`.
func addValidateCommand(root *cobra.Command, s *streams) {
	root.AddCommand(newValidateCmd(s))
}

// validateProblem is one problem of a file in `relata validate --json`.
type validateProblem struct {
	Line    int    `json:"line"`
	Message string `json:"message"`
}

// validateResult is the `relata validate --json` line of one file.
type validateResult struct {
	File     string            `json:"file"`
	OK       bool              `json:"ok"`
	Problems []validateProblem `json:"problems"`
}

func newValidateCmd(s *streams) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Run validation files offline (schema, relationships, assertions, validation)",
		Long: `Validate runs zed-style validation files without a server: it loads each file's
schema and relationships into an in-memory store and checks its assertions and
expected subject sets. Each failure is printed as FILE:LINE: what was expected and
what was got. It exits 0 when every file passes and 1 otherwise. Files using caveats
or expiration fail with "not supported yet". With --json it prints one JSON object a
file instead: {"file":…,"ok":…,"problems":[{"line":…,"message":…}]}.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			failed := 0
			for _, path := range args {
				problems, err := validation.RunFile(cmd.Context(), path)
				if err != nil {
					return fmt.Errorf("validate %s: %w", path, err)
				}
				if asJSON {
					res := validateResult{File: path, OK: len(problems) == 0, Problems: []validateProblem{}}
					for _, p := range problems {
						res.Problems = append(res.Problems, validateProblem{Line: p.Line, Message: p.Msg})
					}
					if err := json.NewEncoder(s.out).Encode(res); err != nil {
						return fmt.Errorf("validate %s: %w", path, err)
					}
					if !res.OK {
						failed++
					}
					continue
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
				if !asJSON {
					fmt.Fprintf(s.err, "%d of %d files failed\n", failed, len(args))
				}
				return silentExit(ExitError)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object a file for machines instead of text")
	return cmd
}
