package console

import (
	"encoding/json"
	"fmt"
	"net/http"

	"go.yaml.in/yaml/v3"

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
// docs/models.md (dist/models-doc.json, written by scripts/genconsole.sh).
func modelsJSON() ([]byte, error) {
	docs := map[string]string{}
	if b, err := dist.ReadFile("dist/models-doc.json"); err == nil {
		if err := json.Unmarshal(b, &docs); err != nil {
			return nil, fmt.Errorf("console: dist/models-doc.json: %w", err)
		}
	}
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
			return nil, fmt.Errorf("console: model %s: validation file: %w", name, err)
		}
		out = append(out, bundledModel{
			Name:          name,
			Summary:       models.Description(name),
			Default:       name == models.Default,
			Schema:        string(text),
			Relationships: v.Relationships,
			Doc:           docs[name],
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
