package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/relata/relata/client"
	relatav1 "github.com/relata/relata/proto/relata/v1"
	"github.com/relata/relata/schema/models"
	"github.com/relata/relata/server"
)

// addSchemaRemoteCommands registers `relata schema write FILE | --model NAME` and
// `relata schema read`, which talk to a server.
func addSchemaRemoteCommands(schemaCmd *cobra.Command, s *streams) {
	schemaCmd.AddCommand(newSchemaWriteCmd(s), newSchemaReadCmd(s))
}

func newSchemaWriteCmd(s *streams) *cobra.Command {
	var model string
	cmd, f := clientCommand("write FILE | --model NAME", "Write the schema from FILE or a bundled model",
		cobra.MaximumNArgs(1))
	cmd.Long = "Write the server's schema from FILE (`-` for standard input) or from a bundled\n" +
		"model (see `relata schema models`). The server refuses a schema that removes a\n" +
		"relation or subject type that stored tuples still use. Prints the zookie. Writing\n" +
		"the schema already in force writes nothing, prints the current zookie and says so."
	cmd.Flags().StringVar(&model, "model", "", "bundled model to write instead of FILE")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var text []byte
		var err error
		switch {
		case model != "" && len(args) == 1:
			return usageError("schema write: give FILE or --model NAME, not both")
		case model != "":
			if text, err = models.Schema(model); err != nil {
				return fmt.Errorf("schema write: model %s not found: %w", model, err)
			}
		case len(args) == 1 && args[0] == "-":
			if text, err = readAll(s); err != nil {
				return fmt.Errorf("schema write: reading standard input: %w", err)
			}
		case len(args) == 1:
			if text, err = os.ReadFile(args[0]); err != nil {
				return fmt.Errorf("schema write: %w", err)
			}
		default:
			return usageError("schema write: give FILE or --model NAME")
		}
		c, err := f.dial()
		if err != nil {
			return err
		}
		defer c.Close()
		// The schema already in force is not written again (the server answers its
		// head revision); say so. A failed read (a token without read scope) just
		// goes on to the write.
		if cur, at, rerr := c.ReadSchema(cmd.Context(), client.FullyConsistent()); rerr == nil && cur == string(text) {
			if f.json {
				return printJSONValue(s.out, map[string]any{"writtenAt": at, "unchanged": true})
			}
			fmt.Fprintln(s.out, at)
			fmt.Fprintln(s.err, "schema unchanged: the server already has this schema; nothing written")
			return nil
		}
		zookie, err := c.WriteSchema(cmd.Context(), string(text))
		var cerr *client.Error
		if errors.As(err, &cerr) && len(args) == 1 && args[0] != "-" {
			nameSchemaPositions(cerr, args[0])
		}
		if err != nil {
			return oneLine(err)
		}
		if f.json {
			return printJSON(s.out, &relatav1.WriteSchemaResponse{WrittenAt: zookie})
		}
		fmt.Fprintln(s.out, zookie)
		return nil
	}
	return cmd
}

func newSchemaReadCmd(s *streams) *cobra.Command {
	cmd, f := clientCommand("read", "Print the server's schema", cobra.NoArgs)
	f.addConsistency(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cons, err := parseConsistency(f.consistency)
		if err != nil {
			return err
		}
		c, err := f.dial()
		if err != nil {
			return err
		}
		defer c.Close()
		text, zookie, err := c.ReadSchema(cmd.Context(), cons)
		if err != nil {
			return oneLine(err)
		}
		if f.json {
			return printJSON(s.out, &relatav1.ReadSchemaResponse{Schema: text, ReadAt: zookie})
		}
		fmt.Fprint(s.out, text)
		if len(text) > 0 && text[len(text)-1] != '\n' {
			fmt.Fprintln(s.out)
		}
		return nil
	}
	return cmd
}

// nameSchemaPositions rewrites the message of an INVALID_SCHEMA error from the
// position metadata the server sends (server.MetadataLine, …), naming file instead of
// the server's source name, so that it reads like `relata schema format FILE`'s.
func nameSchemaPositions(cerr *client.Error, file string) {
	md := cerr.Metadata
	if cerr.ReasonCode() != relatav1.ErrorReason_INVALID_SCHEMA || md[server.MetadataLine] == "" || md[server.MetadataColumn] == "" {
		return
	}
	msg := "schema: " + file + ":" + md[server.MetadataLine] + ":" + md[server.MetadataColumn] + ": " + md[server.MetadataProblem]
	if n, err := strconv.Atoi(md[server.MetadataErrors]); err == nil && n > 1 {
		msg += fmt.Sprintf(" (and %d more errors)", n-1)
	}
	cerr.Message = msg
}

func readAll(s *streams) ([]byte, error) {
	if s.in == nil {
		return nil, nil
	}
	return io.ReadAll(s.in)
}
