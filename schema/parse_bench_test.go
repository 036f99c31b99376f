package schema

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/internal/conformance"
)

// BenchmarkCompileConformance compiles the largest schema of the conformance suite
// that Relata accepts (target: ≤ 1 ms).
func BenchmarkCompileConformance(b *testing.B) {
	var largest conformanceSchema
	for _, cs := range conformanceSchemas(b, conformance.Dir(b)) {
		if !usesCaveatsOrExpiration(cs.schema) && len(cs.schema) > len(largest.schema) {
			largest = cs
		}
	}
	src := []byte(largest.schema)
	b.Logf("%s: %d bytes", largest.file, len(src))
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := Compile(largest.file, src); err != nil {
			b.Fatal(err)
		}
	}
}

// generatedSchema returns a schema of n definitions, each with relations to its
// neighbours, an arrow, and a permission mixing every operator.
func generatedSchema(n int) []byte {
	var s strings.Builder
	s.WriteString("definition user {}\n")
	for i := 0; i < n-1; i++ {
		next := (i + 1) % (n - 1)
		fmt.Fprintf(&s, `
/** type %d */
definition t%d {
	relation parent: t%d
	relation owner: user | t%d#member
	relation viewer: user | user:* | t%d#member
	relation banned: user
	permission member = owner + viewer
	permission view = (member + parent->view) - banned & parent.all(member)
}
`, i, i, next, next, next)
	}
	return []byte(s.String())
}

// BenchmarkCompileGenerated compiles a generated 1,000-definition schema (target:
// ≤ 50 ms).
func BenchmarkCompileGenerated(b *testing.B) {
	src := generatedSchema(1000)
	s, err := Compile("gen.zed", src)
	require.NoError(b, err)
	require.Len(b, s.Definitions, 1000)
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := Compile("gen.zed", src); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFormatGenerated formats the generated 1,000-definition schema.
func BenchmarkFormatGenerated(b *testing.B) {
	src := generatedSchema(1000)
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := Format(src); err != nil {
			b.Fatal(err)
		}
	}
}
