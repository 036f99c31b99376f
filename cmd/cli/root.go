// Package cli holds the cobra command tree of the relata binary. Commands are thin:
// they parse flags into a struct and call the library packages.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes of the relata binary.
const (
	ExitOK     = 0 // success (check: allowed)
	ExitError  = 1 // any error
	ExitUsage  = 2 // bad command line
	ExitDenied = 3 // check: denied
	// ExitConditional: check: conditional (the answer depends on caveat parameters
	// the --context did not give).
	ExitConditional = 4
)

// exitError carries an exit code out of a command's RunE.
type exitError struct {
	code int
	err  error // nil when the command already printed what it had to say
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageError marks an error in the command line itself (exit 2).
func usageError(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// silentExit ends a command with code without printing anything more.
func silentExit(code int) error { return &exitError{code: code} }

// errNotSupported is what a command not built yet returns.
var errNotSupported = errors.New("not supported yet")

// streams are the standard streams a command reads and writes.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

// Main runs the relata command line with args (without the program name) and returns
// the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	s := &streams{in: stdin, out: stdout, err: stderr}
	root := newRootCmd(s)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd := root
	hoisted, err := hoistClientFlags(root, args)
	if err == nil {
		root.SetArgs(hoisted)
		cmd, err = root.ExecuteContextC(ctx)
	}
	if err == nil {
		return ExitOK
	}
	code := ExitError
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
		if ee.err == nil {
			return code // the command already said what it had to say
		}
		err = ee.err
	case isFlagError(err):
		code = ExitUsage
	}
	if wantsJSON(cmd, args) {
		printJSONError(stderr, err, code)
	} else {
		fmt.Fprintln(stderr, "relata:", err.Error())
	}
	return code
}

func newRootCmd(s *streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "relata",
		Short: "Relata: a Zanzibar-style authorization service",
		Long: "Relata: a Zanzibar-style authorization service.\n\n" +
			"Exit codes: 0 success (check: allowed), 3 check denied, 4 check conditional\n" +
			"(caveat parameters missing from --context), 2 a malformed command\n" +
			"line (argument count, unknown flag, bad flag value), 1 any other error,\n" +
			"including a malformed tuple, name, id or zookie in an argument.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionString(),
	}
	root.Long += "\n\n" + clientFlagsHelp()
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: ExitUsage, err: fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
	for _, add := range commandSets {
		add(root, s)
	}
	explainArgErrors(root)
	return root
}

// explainArgErrors makes every wrong argument count a usage error (exit 2) that
// shows the command's usage line: "accepts 3 arg(s), received 2 (usage: relata check
// OBJECT PERMISSION SUBJECT)".
func explainArgErrors(cmd *cobra.Command) {
	if validate := cmd.Args; validate != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := validate(c, args); err != nil {
				return usageError("%v (usage: %s)", err, strings.TrimSuffix(c.UseLine(), " [flags]"))
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		explainArgErrors(sub)
	}
}

// commandSets adds groups of subcommands to the root; each file of this package that
// defines commands registers its group in init-free style by being listed here.
var commandSets = []func(root *cobra.Command, s *streams){
	addSchemaCommands,
	addValidateCommand,
	addServeCommand,
	addMigrateCommand,
	addBackupCommands,
	addClientCommands,
	addBulkCommands,
	addBenchCommand,
	addVersionCommand,
}

func isFlagError(err error) bool {
	// cobra reports unknown commands and wrong argument counts as plain errors.
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "requires at most", "flag needs an argument", "invalid argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
