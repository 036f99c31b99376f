package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/relata/relata/schema"
)

// schemaFormatFlags are the flags of `relata schema format`.
type schemaFormatFlags struct {
	write bool
}

// addSchemaFormatCommand registers `relata schema format FILE [-w]`.
func addSchemaFormatCommand(schemaCmd *cobra.Command, s *streams) {
	schemaCmd.AddCommand(newSchemaFormatCmd(s))
}

func newSchemaFormatCmd(s *streams) *cobra.Command {
	flags := &schemaFormatFlags{}
	cmd := &cobra.Command{
		Use:   "format FILE",
		Short: "Check a schema file and print it in canonical form (offline)",
		Long: `Format checks a schema file and prints it in canonical form on standard output.
On errors it prints every one of them as FILE:line:col: reason and exits 1.
With -w it rewrites FILE in place instead (only when the text changes).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSchemaFormat(s, args[0], flags)
		},
	}
	cmd.Flags().BoolVarP(&flags.write, "write", "w", false, "rewrite FILE in place instead of printing it")
	return cmd
}

func runSchemaFormat(s *streams, path string, flags *schemaFormatFlags) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("schema format: %w", err)
	}
	compiled, err := schema.Compile(path, src)
	if err != nil {
		var list schema.ErrorList
		if !errors.As(err, &list) {
			return fmt.Errorf("schema format: %w", err)
		}
		for _, e := range list {
			fmt.Fprintln(s.err, e)
		}
		return silentExit(ExitError)
	}
	out := compiled.Text()
	if !flags.write {
		_, err := s.out.Write(out)
		return err
	}
	if bytes.Equal(out, src) {
		return nil
	}
	return rewriteSchemaFile(path, out)
}

// rewriteSchemaFile replaces path with data through a temporary file in the same
// directory, keeping the file's permissions.
func rewriteSchemaFile(path string, data []byte) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("schema format: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("schema format: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("schema format: writing %s: %w", path, err)
	}
	if err := tmp.Chmod(info.Mode().Perm()); err != nil {
		tmp.Close()
		return fmt.Errorf("schema format: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("schema format: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("schema format: %w", err)
	}
	return nil
}
