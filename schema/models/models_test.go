package models

import (
	"errors"
	"strings"
	"testing"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// validationDoc is the part of a validation file these tests read directly.
type validationDoc struct {
	SchemaFile    string `yaml:"schemaFile"`
	Relationships string `yaml:"relationships"`
}

func compileModel(t *testing.T, name string) *schema.Schema {
	t.Helper()
	src, err := Schema(name)
	require.NoError(t, err)
	s, err := schema.Compile(name+".zed", src)
	require.NoError(t, err)
	return s
}

func TestNames(t *testing.T) {
	names := Names()
	require.Equal(t, []string{"account-addons", "flow-overrides", "privilege-levels",
		"tenant-privileges", "tenant-roles", "workflow-platform"}, names)
	require.Contains(t, names, Default)
	for _, name := range names {
		require.NotEmpty(t, Description(name), name)
	}
}

func TestUnknownModel(t *testing.T) {
	for _, get := range []func(string) ([]byte, error){Schema, ValidationFile} {
		_, err := get("no-such-model")
		require.ErrorContains(t, err, `models: unknown model "no-such-model"`)
		require.ErrorContains(t, err, strings.Join(Names(), ", "))
	}
	require.Empty(t, Description("no-such-model"))
}

// TestModelsCompile compiles every bundled schema.
func TestModelsCompile(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			compileModel(t, name)
		})
	}
}

// TestValidationFileTuples checks that every validation file names its own schema and
// that the schema accepts every one of its relationships.
func TestValidationFileTuples(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			s := compileModel(t, name)
			src, err := ValidationFile(name)
			require.NoError(t, err)
			var doc validationDoc
			require.NoError(t, yaml.Unmarshal(src, &doc))
			require.Equal(t, name+".zed", doc.SchemaFile)
			n := 0
			for i, line := range strings.Split(doc.Relationships, "\n") {
				if c := strings.Index(line, "//"); c >= 0 {
					line = line[:c]
				}
				line = strings.TrimSpace(line)
				if line == "" {
					continue
				}
				tup, err := tuples.ParseTuple(line)
				require.NoError(t, err, "relationship line %d", i+1)
				require.NoError(t, s.ValidateTuple(tup), "relationship line %d: %s", i+1, line)
				n++
			}
			require.Positive(t, n)
		})
	}
}

// TestModelsRefuseTuples checks that writes a model does not allow are refused with the
// allowed subject types named.
func TestModelsRefuseTuples(t *testing.T) {
	tests := []struct {
		model, tuple string
		wantErr      []string
	}{
		{"flow-overrides", "flow:f#user_granted@role:r#member", []string{"flow#user_granted", "user", "service_account"}},
		{"flow-overrides", "flow:f#role_granted@user:anne", []string{"flow#role_granted", "role#member"}},
		{"flow-overrides", "flow:f#execute@user:anne", []string{"permission"}},
		{"flow-overrides", "flow_version:v#live@user:anne", []string{"user:*"}},
		{"privilege-levels", "workspace:w#flows_author@user:anne", []string{"role#member"}},
		{"tenant-roles", "tenant:t#admin@tenant:other", []string{"tenant#admin", "user"}},
		{"account-addons", "workspace:w#member@account:a", []string{"workspace#member"}},
		{"workflow-platform", "flow:f#user_denied@role:r#member", []string{"flow#user_denied", "service_account"}},
	}
	for _, tt := range tests {
		t.Run(tt.model+"/"+tt.tuple, func(t *testing.T) {
			s := compileModel(t, tt.model)
			tup, err := tuples.ParseTuple(tt.tuple)
			require.NoError(t, err)
			err = s.ValidateTuple(tup)
			require.Error(t, err)
			require.True(t, errors.Is(err, schema.ErrNotAllowed), "%v", err)
			for _, w := range tt.wantErr {
				require.ErrorContains(t, err, w)
			}
		})
	}
}
