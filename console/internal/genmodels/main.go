// Command genmodels writes the console's models-doc.json: the section of docs/models.md
// that describes each bundled model (package schema/models), by model name. The console
// serves it with the models themselves (models.json, built at run time from the
// embedded models); scripts/genconsole.sh runs it, and its --check fails when
// docs/models.md changed since.
//
// Usage: go run ./console/internal/genmodels docs/models.md > console/dist/models-doc.json
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/relata/relata/schema/models"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "genmodels:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: genmodels docs/models.md")
	}
	doc, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	sections := splitSections(string(doc))
	out := map[string]string{}
	for _, name := range models.Names() {
		sec, ok := sections[name]
		if !ok {
			return fmt.Errorf("model %s: %s has no section \"## %s — …\"", name, args[0], name)
		}
		out[name] = sec
	}
	b, err := json.MarshalIndent(out, "", " ")
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(b, '\n'))
	return err
}

// splitSections returns the body of each "## NAME — title" section of docs/models.md,
// by NAME, its heading included.
func splitSections(doc string) map[string]string {
	out := map[string]string{}
	var name string
	var body []string
	flush := func() {
		if name != "" {
			out[name] = strings.TrimSpace(strings.Join(body, "\n"))
		}
	}
	inCode := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
		}
		if !inCode && strings.HasPrefix(line, "## ") {
			flush()
			title := strings.TrimPrefix(line, "## ")
			name, _, _ = strings.Cut(title, " ")
			body = []string{line}
			continue
		}
		if name != "" {
			body = append(body, line)
		}
	}
	flush()
	return out
}
