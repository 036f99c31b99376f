package models_test

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/schema/models"
)

var update = flag.Bool("update", false, "rewrite the diagrams of docs/models.md from the compiled schemas")

const modelsDoc = "../../docs/models.md"

// TestDocDiagrams fails when a mermaid diagram of docs/models.md differs from the one
// its model's compiled schema produces (models.Diagram); `go test ./schema/models
// -run TestDocDiagrams -update` rewrites them.
func TestDocDiagrams(t *testing.T) {
	doc, err := os.ReadFile(modelsDoc)
	require.NoError(t, err)
	out := doc
	for _, name := range models.Names() {
		want, err := models.Diagram(name)
		require.NoError(t, err)
		start, end := diagramSpan(t, out, name)
		if got := string(out[start:end]); got != want {
			if !*update {
				t.Errorf("docs/models.md: the diagram of %s differs from its schema (run go test ./schema/models -run TestDocDiagrams -update):\n--- doc\n%s--- schema\n%s", name, got, want)
				continue
			}
			out = append(out[:start:start], append([]byte(want), out[end:]...)...)
		}
	}
	if *update && !bytes.Equal(out, doc) {
		require.NoError(t, os.WriteFile(modelsDoc, out, 0o644))
	}
}

// diagramSpan returns where the body of the first mermaid block of model name's
// section (after its `<a id="NAME"></a>` anchor) starts and ends in doc.
func diagramSpan(t *testing.T, doc []byte, name string) (int, int) {
	t.Helper()
	s := string(doc)
	anchor := strings.Index(s, `<a id="`+name+`"></a>`)
	require.GreaterOrEqual(t, anchor, 0, "docs/models.md has no section for model %s", name)
	const open = "```mermaid\n"
	i := strings.Index(s[anchor:], open)
	require.GreaterOrEqual(t, i, 0, "docs/models.md: the section of %s has no mermaid diagram", name)
	start := anchor + i + len(open)
	if next := strings.Index(s[anchor+1:], `<a id="`); next >= 0 {
		require.Less(t, start, anchor+1+next, "docs/models.md: the section of %s has no mermaid diagram", name)
	}
	end := strings.Index(s[start:], "```")
	require.GreaterOrEqual(t, end, 0)
	return start, start + end
}

// TestDiagramTargets: each relation points at the subject types its schema allows
// (the diagrams once drew connection#owner to workspace and catalog_entry#flow to
// tenant), role nesting included.
func TestDiagramTargets(t *testing.T) {
	for _, tc := range []struct {
		model string
		has   []string
		not   []string
	}{
		{"workflow-platform", []string{
			`connection -- "owner, shared_with" --> user`,
			`catalog_entry -- tenant --> tenant`,
			`catalog_entry -- flow --> flow`,
			`role -- member --> role_member["role#member"]`,
		}, []string{`connection -- owner --> workspace`, `catalog_entry -- "tenant, flow" --> tenant`}},
		{"privilege-levels", []string{`connection -- workspace --> workspace`, `connection -- "owner, shared_with" --> user`}, nil},
		{"flow-overrides", []string{`user_granted with from_network`, `role -- member --> user_any["user:*"]`}, nil},
	} {
		d, err := models.Diagram(tc.model)
		require.NoError(t, err)
		for _, s := range tc.has {
			require.Contains(t, d, s, tc.model)
		}
		for _, s := range tc.not {
			require.NotContains(t, d, s, tc.model)
		}
	}
}

// TestReadYourWritesAgree: README.md and docs/models.md explain the consistencies
// and read-your-writes in the same words.
func TestReadYourWritesAgree(t *testing.T) {
	paragraph := func(path string) string {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		s := string(b)
		i := strings.Index(s, "Every read takes a consistency")
		require.GreaterOrEqual(t, i, 0, "%s does not explain the consistencies", path)
		p, _, _ := strings.Cut(s[i:], "\n\n")
		p, _, _ = strings.Cut(p, "\nA zookie names")
		p, _, _ = strings.Cut(p, "\nThe examples")
		return strings.Join(strings.Fields(p), " ")
	}
	readme := paragraph("../../README.md")
	require.Equal(t, readme, paragraph(modelsDoc))
	require.Contains(t, readme, "at_least_as_fresh")
}
