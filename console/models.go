package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/relata/relata/docs"
	"github.com/relata/relata/schema/models"
)

// bundledModel is one entry of the console's models.json.
type bundledModel struct {
	Name          string `json:"name"`
	Summary       string `json:"summary"`
	Default       bool   `json:"default,omitempty"`
	Schema        string `json:"schema"`
	Relationships string `json:"relationships"`
	Doc           string `json:"doc"`
}

// modelsJSON builds models.json from the models embedded in the binary (schema and
// the example relationships of each validation file) and their sections of
// docs/models.md (embedded by package docs).
func modelsJSON() ([]byte, error) {
	sections := splitSections(docs.Models)
	var out []bundledModel
	for _, name := range models.Names() {
		text, err := models.Schema(name)
		if err != nil {
			return nil, err
		}
		vf, err := models.ValidationFile(name)
		if err != nil {
			return nil, err
		}
		var v struct {
			Relationships string `yaml:"relationships"`
		}
		if err := yaml.Unmarshal(vf, &v); err != nil {
			return nil, fmt.Errorf("model %s: validation file: %w", name, err)
		}
		out = append(out, bundledModel{
			Name:          name,
			Summary:       models.Description(name),
			Default:       name == models.Default,
			Schema:        string(text),
			Relationships: v.Relationships,
			Doc:           sections[name],
		})
	}
	return json.MarshalIndent(out, "", " ")
}

// serveModels answers GET models.json.
func serveModels(w http.ResponseWriter, b []byte, err error) {
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
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
