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

// addSchemaRemoteCommands registers `relata schema write FILE | --model NAME`,
// `relata schema read`, `relata schema diff FILE` and `relata schema history`, which
// talk to a server.
func addSchemaRemoteCommands(schemaCmd *cobra.Command, s *streams) {
	schemaCmd.AddCommand(newSchemaWriteCmd(s), newSchemaReadCmd(s), newSchemaDiffCmd(s), newSchemaHistoryCmd(s))
}

// schemaText reads the schema text of `schema write` and `schema diff`: FILE, `-` for
// standard input, or a bundled model.
func schemaText(s *streams, what, model string, args []string) ([]byte, error) {
	var text []byte
	var err error
	switch {
	case model != "" && len(args) == 1:
		return nil, usageError("schema %s: give FILE or --model NAME, not both", what)
	case model != "":
		if text, err = models.Schema(model); err != nil {
			return nil, fmt.Errorf("schema %s: model %s not found: %w", what, model, err)
		}
	case len(args) == 1 && args[0] == "-":
		if text, err = readAll(s); err != nil {
			return nil, fmt.Errorf("schema %s: reading standard input: %w", what, err)
		}
	case len(args) == 1:
		if text, err = os.ReadFile(args[0]); err != nil {
			return nil, fmt.Errorf("schema %s: %w", what, err)
		}
	default:
		return nil, usageError("schema %s: give FILE or --model NAME", what)
	}
	return text, nil
}

func newSchemaWriteCmd(s *streams) *cobra.Command {
	var model string
	var dryRun bool
	cmd, f := clientCommand("write FILE | --model NAME", "Write the schema from FILE or a bundled model",
		cobra.MaximumNArgs(1))
	cmd.Long = "Write the server's schema from FILE (`-` for standard input) or from a bundled\n" +
		"model (see `relata schema models`). The server refuses a schema that removes a\n" +
		"relation, subject type, caveat form or caveat parameter that stored tuples still\n" +
		"use, naming every such relation with its tuple count. Prints the zookie. Writing\n" +
		"the schema already in force writes nothing, prints the current zookie and says so.\n" +
		"With --dry-run nothing is written: it prints what `relata schema diff` prints and\n" +
		"exits 0 when the write would succeed, 1 when it would be refused."
	cmd.Flags().StringVar(&model, "model", "", "bundled model to write instead of FILE")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what the write would change and whether it would be refused; write nothing")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		text, err := schemaText(s, "write", model, args)
		if err != nil {
			return err
		}
		c, err := f.dial()
		if err != nil {
			return err
		}
		defer c.Close()
		if dryRun {
			return runSchemaDiff(cmd, s, f, c, text, args, true)
		}
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
	var at string
	cmd, f := clientCommand("read", "Print the server's schema", cobra.NoArgs)
	f.addConsistency(cmd)
	cmd.Flags().StringVar(&at, "at", "", "print the schema in force at this zookie (see `relata schema history`)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if at != "" && cmd.Flags().Changed("consistency") {
			return usageError("schema read: give --at or --consistency, not both")
		}
		cons, err := parseConsistency(f.consistency)
		if err != nil {
			return err
		}
		c, err := f.dial()
		if err != nil {
			return err
		}
		defer c.Close()
		var text, zookie string
		if at != "" {
			text, err = c.ReadSchemaAt(cmd.Context(), at)
			zookie = at
		} else {
			text, zookie, err = c.ReadSchema(cmd.Context(), cons)
		}
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

func newSchemaDiffCmd(s *streams) *cobra.Command {
	var model string
	cmd, f := clientCommand("diff FILE | --model NAME", "Show what writing a schema would change, writing nothing",
		cobra.MaximumNArgs(1))
	cmd.Long = "Compare FILE (`-` for standard input) or a bundled model with the server's\n" +
		"schema: the definitions, relations, permissions and caveats it adds (+), removes\n" +
		"(-) and changes (~), and for each removal how many stored tuples it would orphan,\n" +
		"with one example. Nothing is written. Exits 0 when writing the schema would\n" +
		"succeed, 1 when the server would refuse it (or the schema has errors)."
	cmd.Flags().StringVar(&model, "model", "", "bundled model to compare instead of FILE")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		text, err := schemaText(s, "diff", model, args)
		if err != nil {
			return err
		}
		c, err := f.dial()
		if err != nil {
			return err
		}
		defer c.Close()
		return runSchemaDiff(cmd, s, f, c, text, args, false)
	}
	return cmd
}

// runSchemaDiff prints the server's DiffSchema answer for text, readable or as JSON,
// and ends with exit 1 when the write would be refused.
func runSchemaDiff(cmd *cobra.Command, s *streams, f *clientFlags, c *client.Client, text []byte, args []string, dryRun bool) error {
	d, err := c.DiffSchema(cmd.Context(), string(text))
	var cerr *client.Error
	if errors.As(err, &cerr) && len(args) == 1 && args[0] != "-" {
		nameSchemaPositions(cerr, args[0])
	}
	if err != nil {
		return oneLine(err)
	}
	if f.json {
		if err := printJSON(s.out, d); err != nil {
			return err
		}
	} else {
		printSchemaDiff(s.out, d)
		switch {
		case d.GetRefused():
			fmt.Fprintln(s.err, "refused: "+d.GetRefusal())
		case dryRun && d.GetUnchanged():
			fmt.Fprintln(s.out, "Dry run: the server already has this schema; a write would write nothing.")
		case dryRun:
			fmt.Fprintln(s.out, "Dry run: the write would succeed; nothing written.")
		}
	}
	if d.GetRefused() {
		return silentExit(ExitError)
	}
	return nil
}

// printSchemaDiff prints a diff a change a line: `+ relation team#member: user`,
// `- relation flow#denied: orphans 3 tuples, e.g. flow:f1#denied@user:carl`.
func printSchemaDiff(w io.Writer, d *relatav1.DiffSchemaResponse) {
	if d.GetUnchanged() || len(d.GetAdded())+len(d.GetRemoved())+len(d.GetChanged()) == 0 {
		fmt.Fprintln(w, "No change: the server already has this schema.")
		return
	}
	fmt.Fprintln(w, "Changes against the schema at "+d.GetDiffedAt()+":")
	line := func(mark string, c *relatav1.SchemaChange) {
		name := c.GetName()
		if c.GetDefinition() != "" {
			name = c.GetDefinition() + "#" + name
		}
		s := mark + " " + c.GetKind() + " " + name
		if c.GetDescription() != "" {
			s += " (" + c.GetDescription() + ")"
		}
		if n := c.GetOrphanedTuples(); n > 0 {
			s += fmt.Sprintf(": orphans %d tuple%s, e.g. %s", n, map[bool]string{false: "s"}[n == 1], client.TupleFromProto(c.GetOrphanExample()))
		}
		fmt.Fprintln(w, s)
	}
	for _, c := range d.GetRemoved() {
		line("-", c)
	}
	for _, c := range d.GetChanged() {
		line("~", c)
	}
	for _, c := range d.GetAdded() {
		line("+", c)
	}
	if d.GetRefused() {
		fmt.Fprintf(w, "The server would refuse this schema: it would orphan %d stored tuple%s.\n", d.GetOrphanedTuples(), map[bool]string{false: "s"}[d.GetOrphanedTuples() == 1])
	}
}

func newSchemaHistoryCmd(s *streams) *cobra.Command {
	var limit uint32
	cmd, f := clientCommand("history", "List the schema writes, newest first", cobra.NoArgs)
	cmd.Long = "List the server's schema writes, newest first: the zookie that wrote each\n" +
		"(`relata schema read --at ZOOKIE` prints that schema), its revision, how many\n" +
		"definitions and caveats it has, its size and the start of its SHA-256."
	cmd.Flags().Uint32Var(&limit, "limit", 0, "list at most this many (0 for all)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := f.dial()
		if err != nil {
			return err
		}
		defer c.Close()
		resp, err := c.SchemaRevisions(cmd.Context(), limit)
		if err != nil {
			return oneLine(err)
		}
		if f.json {
			return printJSON(s.out, resp)
		}
		if len(resp.GetRevisions()) == 0 {
			fmt.Fprintln(s.err, "no schema written yet")
			return nil
		}
		for _, r := range resp.GetRevisions() {
			fmt.Fprintf(s.out, "%s\trevision %d\t%d definitions\t%d caveats\t%d bytes\tsha256:%.12s\n",
				r.GetWrittenAt(), r.GetRevision(), r.GetDefinitions(), r.GetCaveats(), r.GetSize(), r.GetDigest())
		}
		return nil
	}
	return cmd
}
