package cli

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// buildVersion is the module version and VCS revision the binary was built from, as
// runtime/debug.ReadBuildInfo reports them.
type buildVersion struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
}

func readBuildVersion() buildVersion {
	v := buildVersion{Version: "unknown"}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v.Module, v.Go = info.Main.Path, info.GoVersion
	if info.Main.Version != "" {
		v.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is the one line `relata version` prints: "relata v1.2.3 (revision 0123abcd…,
// 2026-01-02T03:04:05Z, modified) go1.26".
func (v buildVersion) String() string {
	s := "relata " + v.Version
	rev := v.Revision
	if rev == "" {
		rev = "unknown"
	}
	s += " (revision " + rev
	if v.Time != "" {
		s += ", " + v.Time
	}
	if v.Modified {
		s += ", modified"
	}
	s += ")"
	if v.Go != "" {
		s += " " + v.Go
	}
	return s
}

func versionString() string { return readBuildVersion().String() }

func addVersionCommand(root *cobra.Command, s *streams) {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the module version and VCS revision this binary was built from",
		Long: "Print the module version and VCS revision this binary was built from (also\n" +
			"relata --version). A binary built from a checkout (go build, go run) reports the\n" +
			"version (devel) and the commit it was built from; one installed with\n" +
			"go install MODULE@VERSION reports that version.",
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			v := readBuildVersion()
			if asJSON {
				return printJSONValue(s.out, v)
			}
			_, err := fmt.Fprintln(s.out, v.String())
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for machines instead of text")
	root.AddCommand(cmd)
}
