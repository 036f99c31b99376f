package models

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/relata/relata/schema"
)

// Diagram returns the mermaid flowchart of model name's stored relations, generated
// from its compiled schema: one edge from each type to each subject type its relations
// accept, labelled with those relations. A userset subject (`role#member`, role
// nesting) and a wildcard (`user:*`) are nodes of their own; a subject type allowed
// only with a caveat or an expiration is labelled so (`user_granted with
// from_network`). docs/models.md shows these diagrams, and a test keeps them in sync.
func Diagram(name string) (string, error) {
	src, err := Schema(name)
	if err != nil {
		return "", err
	}
	s, err := schema.Compile(name+".zed", src)
	if err != nil {
		return "", fmt.Errorf("model %s: %w", name, err)
	}
	return diagram(s), nil
}

// labelsPerLine is how many relation names an edge label holds on one line.
const labelsPerLine = 4

func diagram(s *schema.Schema) string {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	for _, typ := range s.Order {
		def := s.Definitions[typ]
		var targets []string // subject nodes, in order of first appearance
		labels := map[string][]string{}
		for _, rel := range def.Order {
			r := def.Relations[rel]
			if r.Permission {
				continue
			}
			for _, a := range r.Allowed {
				node := subjectNode(a)
				if _, ok := labels[node]; !ok {
					targets = append(targets, node)
				}
				labels[node] = append(labels[node], relationLabel(rel, a))
			}
		}
		for _, node := range targets {
			fmt.Fprintf(&b, "    %s -- %s --> %s\n", typ, edgeLabel(labels[node]), node)
		}
	}
	return b.String()
}

// subjectNode returns the mermaid node of an allowed subject: the type's name, or for
// a userset or a wildcard a node with its own id and the subject's text as label.
func subjectNode(a schema.AllowedSubject) string {
	switch {
	case a.Wildcard:
		return fmt.Sprintf("%s_any[\"%s:*\"]", a.Type, a.Type)
	case a.Relation != "":
		return fmt.Sprintf("%s_%s[\"%s#%s\"]", a.Type, a.Relation, a.Type, a.Relation)
	}
	return a.Type
}

// relationLabel names a relation on an edge, with the caveat or expiration its subject
// type requires or allows.
func relationLabel(rel string, a schema.AllowedSubject) string {
	switch {
	case a.Caveat != "" && a.Expiration:
		return rel + " with " + a.Caveat + " and expiration"
	case a.Caveat != "":
		return rel + " with " + a.Caveat
	case a.Expiration:
		return rel + " with expiration"
	}
	return rel
}

var bareLabel = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// edgeLabel joins relation names into an edge label, labelsPerLine a line, quoted
// unless it is one plain name.
func edgeLabel(names []string) string {
	if len(names) == 1 && bareLabel.MatchString(names[0]) {
		return names[0]
	}
	var lines []string
	for i := 0; i < len(names); i += labelsPerLine {
		lines = append(lines, strings.Join(names[i:min(i+labelsPerLine, len(names))], ", "))
	}
	return `"` + strings.Join(lines, ",<br/>") + `"`
}
