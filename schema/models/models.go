// Package models embeds the permission models Relata ships: five schemas drawn from the
// permission documentation of workflow-automation platforms (see docs/models.md) and
// the default model, workflow-platform, that `relata serve` loads into an empty store.
// Each model NAME has a schema, NAME.zed, and a validation file, NAME.yaml, whose
// assertions pin the model's permission tables; docs/models.md describes every model.
package models

import (
	"embed"
	"fmt"
	"sort"
	"strings"
)

// Default is the model `relata serve` loads when the store has no schema yet.
const Default = "workflow-platform"

//go:embed *.zed *.yaml
var files embed.FS

// descriptions holds the one-line description of every bundled model, by name. A model
// is bundled when it is listed here and its .zed and .yaml files are embedded.
var descriptions = map[string]string{
	"tenant-roles":      "five tenant roles (admin, developer, contributor, creator, viewer), nested tenants, a catalog",
	"account-addons":    "account base roles plus add-on author roles, platform administrator, workspace-gated flows",
	"tenant-privileges": "administrator and standard user privileges on tenant features",
	"privilege-levels":  "additive custom roles with none/viewer/editor/author levels per object kind",
	"flow-overrides":    "per-flow user and role grant/deny over app-wide execution settings, LIVE versions",
	"workflow-platform": "all of the above combined for a multi-tenant workflow platform",
}

// Names returns the names of the bundled models, sorted, with the default model included.
func Names() []string {
	names := make([]string, 0, len(descriptions))
	for name := range descriptions {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Description returns the one-line description of model name, or "" when there is no
// such model.
func Description(name string) string {
	return descriptions[name]
}

// Schema returns the schema text (NAME.zed) of model name. The returned slice is a fresh
// copy the caller may modify. An unknown name is an error that lists the known names.
func Schema(name string) ([]byte, error) {
	return read(name, ".zed")
}

// ValidationFile returns the validation file (NAME.yaml) of model name, whose schemaFile
// key names NAME.zed. The returned slice is a fresh copy. An unknown name is an error that
// lists the known names.
func ValidationFile(name string) ([]byte, error) {
	return read(name, ".yaml")
}

func read(name, ext string) ([]byte, error) {
	if _, ok := descriptions[name]; !ok {
		return nil, fmt.Errorf("unknown model %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	b, err := files.ReadFile(name + ext)
	if err != nil {
		return nil, fmt.Errorf("model %q: %w", name, err)
	}
	return b, nil
}
