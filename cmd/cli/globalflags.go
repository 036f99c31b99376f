package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// clientFlagSet is the set of flags every client command has (clientFlags.register),
// built on a throwaway command so that a flag added there is known here too.
func clientFlagSet() *pflag.FlagSet {
	cmd := &cobra.Command{Use: "x"}
	(&clientFlags{}).register(cmd)
	return cmd.Flags()
}

// hoistClientFlags lets the client flags stand before the command, as with zed:
// `relata --endpoint HOST:PORT --insecure schema read` runs `schema read` with those
// flags. It moves the flags that precede the command to just after the command's path
// (`schema read --endpoint HOST:PORT --insecure`), where cobra parses them as the
// command's own; a command that has no such flag (serve, validate) refuses them with
// exit 2 as if they had been written after it. A flag before the command that is not
// a client flag is a usage error naming it, so that it can never swallow the command's
// name as its value and run another command. --help, -h and --version stay where they
// are, for the root.
func hoistClientFlags(root *cobra.Command, args []string) ([]string, error) {
	known := clientFlagSet()
	var hoisted []string
	i := 0
	for i < len(args) {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			break
		}
		if a == "--help" || a == "-h" || a == "--version" {
			return args, nil // the root answers these itself
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		var fl *pflag.Flag
		if strings.HasPrefix(a, "--") {
			fl = known.Lookup(name)
		} else if len(name) == 1 {
			fl = known.ShorthandLookup(name)
		}
		if fl == nil {
			return nil, usageError("unknown flag: %s (before the command only the client flags may stand: %s; see 'relata --help')",
				a, strings.Join(flagNames(known), ", "))
		}
		hoisted = append(hoisted, a)
		i++
		if !hasValue && fl.NoOptDefVal == "" { // the value is the next argument
			if i == len(args) {
				return nil, usageError("flag needs an argument: %s (see 'relata --help')", a)
			}
			hoisted = append(hoisted, args[i])
			i++
		}
	}
	if len(hoisted) == 0 {
		return args, nil
	}
	rest := args[i:]
	// The command's path: the leading words that name subcommands.
	cmd, n := root, 0
	for n < len(rest) {
		sub := findSub(cmd, rest[n])
		if sub == nil {
			break
		}
		cmd, n = sub, n+1
	}
	if cmd == root {
		if len(rest) == 0 {
			return nil, usageError("client flags %s given but no command (see 'relata --help')", strings.Join(hoisted, " "))
		}
		return nil, usageError("unknown command %q for \"relata\" (see 'relata --help')", rest[0])
	}
	out := make([]string, 0, len(args))
	out = append(out, rest[:n]...)
	out = append(out, hoisted...)
	out = append(out, rest[n:]...)
	return out, nil
}

// findSub returns cmd's subcommand named (or aliased) name, or nil.
func findSub(cmd *cobra.Command, name string) *cobra.Command {
	for _, sub := range cmd.Commands() {
		if sub.Name() == name || sub.HasAlias(name) {
			return sub
		}
	}
	return nil
}

// flagNames lists the flags of fs as --name, sorted.
func flagNames(fs *pflag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(fl *pflag.Flag) { names = append(names, "--"+fl.Name) })
	sort.Strings(names)
	return names
}

// clientFlagsHelp is the root's help paragraph on the client flags.
func clientFlagsHelp() string {
	var b strings.Builder
	b.WriteString("Client flags (every command that talks to a server has them; each is also a\n" +
		"RELATA_<NAME> environment variable) may stand before the command or after it:\n" +
		"  relata --endpoint HOST:PORT --insecure schema read\n")
	clientFlagSet().VisitAll(func(fl *pflag.Flag) {
		fmt.Fprintf(&b, "  --%-10s %s\n", fl.Name, fl.Usage)
	})
	return b.String()
}
