package models_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/relata/relata/check"
	"github.com/relata/relata/schema"
	"github.com/relata/relata/schema/models"
	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/pebblestore"
	"github.com/relata/relata/validation"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func compileModel(t *testing.T, name string) *schema.Schema {
	t.Helper()
	src, err := models.Schema(name)
	require.NoError(t, err)
	s, err := schema.Compile(name+".zed", src)
	require.NoError(t, err)
	return s
}

func TestNames(t *testing.T) {
	names := models.Names()
	require.Equal(t, []string{"account-addons", "flow-overrides", "privilege-levels",
		"tenant-privileges", "tenant-roles", "workflow-platform"}, names)
	require.Contains(t, names, models.Default)
	for _, name := range names {
		require.NotEmpty(t, models.Description(name), name)
	}
}

func TestUnknownModel(t *testing.T) {
	for _, get := range []func(string) ([]byte, error){models.Schema, models.ValidationFile} {
		_, err := get("no-such-model")
		require.ErrorContains(t, err, `unknown model "no-such-model"`)
		require.ErrorContains(t, err, strings.Join(models.Names(), ", "))
	}
	require.Empty(t, models.Description("no-such-model"))
}

// TestModelsCompile compiles every bundled schema and checks that it is in canonical
// form (`relata schema format -w schema/models/NAME.zed` fixes that).
func TestModelsCompile(t *testing.T) {
	for _, name := range models.Names() {
		t.Run(name, func(t *testing.T) {
			compileModel(t, name)
			src, err := models.Schema(name)
			require.NoError(t, err)
			formatted, err := schema.Format(src)
			require.NoError(t, err)
			require.Equal(t, string(formatted), string(src), "%s.zed is not formatted", name)
		})
	}
}

// TestValidationFiles runs every model's validation file through the validation-file
// runner (as `relata validate schema/models/NAME.yaml` does): every relationship must
// be accepted by the model and every assertion must hold.
func TestValidationFiles(t *testing.T) {
	ctx := context.Background()
	for _, name := range models.Names() {
		t.Run(name, func(t *testing.T) {
			data, err := models.ValidationFile(name)
			require.NoError(t, err)
			require.True(t, bytes.Contains(data, []byte("\nschemaFile: "+name+".zed\n")), "schemaFile must be %s.zed", name)
			f, err := validation.Parse(name+".yaml", data)
			require.NoError(t, err)
			require.NotEmpty(t, f.Relationships)
			var trues, falses int
			for _, a := range f.Assertions {
				switch a.Kind {
				case validation.AssertTrue:
					trues++
				case validation.AssertFalse:
					falses++
				}
			}
			require.Positive(t, trues)
			require.Positive(t, falses)
			problems, err := validation.Run(ctx, f)
			require.NoError(t, err)
			for _, p := range problems {
				t.Error(p)
			}
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

// step is one change to a loaded model followed by checks: Write tuples (touch),
// Delete tuples, DeleteMatching filters, then Allowed/Denied checks in the
// `object#permission@subject` form.
type step struct {
	write, delete []string
	deleteMatch   []tuples.Filter
	allowed       []string
	denied        []string
}

// TestChangesTakeEffect loads a model's validation relationships into a store, then
// changes roles and overrides and checks that the next check, with the same engine and
// its cache, sees the change: unassigning and deleting roles, add-ons, overrides.
func TestChangesTakeEffect(t *testing.T) {
	tests := []struct {
		name  string
		model string
		steps []step
	}{
		{
			name:  "privilege-levels: unassign a role, delete a role",
			model: "privilege-levels",
			steps: []step{
				{allowed: []string{"flow:lab-eddie#edit@user:eddie", "flow:lab-ava#delete@user:ava", "flow:lab-secret#delete@user:olive"}},
				// Unassign editors from eddie: back to the default role (none in lab).
				{delete: []string{"role:editors#member@user:eddie"}, denied: []string{"flow:lab-eddie#edit@user:eddie", "flow:lab-eddie#view@user:eddie"}},
				// Delete role flows-only: every tuple that mentions it.
				{
					deleteMatch: []tuples.Filter{
						{ObjectType: "role", ObjectID: "flows-only"},
						{SubjectType: "role", SubjectID: "flows-only"},
					},
					denied: []string{"flow:lab-ava#delete@user:ava", "flow:lab-ava#view@user:ava", "flow:lab-secret#view@user:olive", "workspace:lab#create_flow@user:ava"},
				},
				// A new role grant counts at once.
				{
					write:   []string{"role:authors#member@user:ava", "workspace:lab#flows_author@role:authors#member"},
					allowed: []string{"flow:lab-ava#schedule@user:ava", "workspace:lab#create_flow@user:ava"},
				},
			},
		},
		{
			name:  "account-addons: an add-on takes effect at once",
			model: "account-addons",
			steps: []step{
				{denied: []string{"flow:ops-sync#edit@user:ulf", "account:northwind#create_flow@user:ulf"}},
				{write: []string{"account:northwind#flow_author@user:ulf"}, allowed: []string{"flow:ops-sync#edit@user:ulf", "account:northwind#create_flow@user:ulf"}},
				{delete: []string{"account:northwind#flow_author@user:ulf"}, denied: []string{"flow:ops-sync#edit@user:ulf"}},
			},
		},
		{
			name:  "flow-overrides: overrides, app-wide settings, a deleted role",
			model: "flow-overrides",
			steps: []step{
				{allowed: []string{"flow:checkout#execute@anonymous:guest", "flow:checkout#execute@user:uma"}},
				{write: []string{"app:shop#role_denied@role:anonymous#member"}, denied: []string{"flow:checkout#execute@anonymous:guest", "flow_version:checkout-v3#activate@anonymous:guest"}, allowed: []string{"flow:checkout#execute@user:uma"}},
				{write: []string{"flow:checkout#role_granted@role:anonymous#member"}, allowed: []string{"flow:checkout#execute@anonymous:guest"}},
				{write: []string{"flow:checkout#user_denied@user:uma"}, denied: []string{"flow:checkout#execute@user:uma"}},
				{write: []string{"flow:checkout#user_granted@user:uma"}, denied: []string{"flow:checkout#execute@user:uma"}},
				{delete: []string{"flow:checkout#user_denied@user:uma"}, allowed: []string{"flow:checkout#execute@user:uma"}},
				{delete: []string{"flow_version:checkout-v3#live@user:*"}, denied: []string{"flow_version:checkout-v3#activate@user:uma"}},
				// Delete role contractors (every tuple that mentions it): cody, denied on refund
				// through it, is left with finance, granted there; on deploy, where contractors
				// was denied app-wide, carl and cody have no role left that counts.
				{
					allowed: []string{"flow:hotfix#execute@user:cody"},
					denied:  []string{"flow:refund#execute@user:cody", "flow:deploy#execute@user:oscar"},
				},
				{
					deleteMatch: []tuples.Filter{
						{ObjectType: "role", ObjectID: "contractors"},
						{SubjectType: "role", SubjectID: "contractors"},
					},
					allowed: []string{"flow:refund#execute@user:cody", "flow:deploy#execute@user:oscar"},
					denied:  []string{"flow:hotfix#execute@user:cody", "flow:deploy#execute@user:carl"},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			st, rev := loadModel(t, tt.model)
			e := check.New(check.Options{})
			for i, s := range tt.steps {
				var ups []tuples.Update
				for _, w := range s.write {
					ups = append(ups, tuples.Update{Op: tuples.OpTouch, Tuple: parseTuple(t, w)})
				}
				for _, d := range s.delete {
					ups = append(ups, tuples.Update{Op: tuples.OpDelete, Tuple: parseTuple(t, d)})
				}
				var err error
				if len(ups) > 0 {
					rev, err = st.Write(ctx, tuples.WriteRequest{Updates: ups})
					require.NoError(t, err)
				}
				for _, f := range s.deleteMatch {
					rev, _, err = st.DeleteMatching(ctx, f, nil)
					require.NoError(t, err)
				}
				r, err := st.ReaderAt(ctx, rev)
				require.NoError(t, err)
				for want, list := range map[bool][]string{true: s.allowed, false: s.denied} {
					for _, c := range list {
						q := parseTuple(t, c)
						res, err := e.Check(ctx, r, check.CheckRequest{Object: q.Object, Permission: q.Relation, Subject: q.Subject})
						require.NoError(t, err, "step %d: %s", i, c)
						require.Equal(t, want, res.Allowed, "step %d: %s", i, c)
					}
				}
			}
		})
	}
}

func parseTuple(t *testing.T, s string) tuples.Tuple {
	t.Helper()
	tup, err := tuples.ParseTuple(s)
	require.NoError(t, err, s)
	return tup
}

// loadModel opens an in-memory store holding model name's schema and the relationships
// of its validation file, and returns it with its head revision.
func loadModel(t *testing.T, name string) (*pebblestore.Store, tuples.Revision) {
	t.Helper()
	ctx := context.Background()
	src, err := models.Schema(name)
	require.NoError(t, err)
	data, err := models.ValidationFile(name)
	require.NoError(t, err)
	f, err := validation.Parse(name+".yaml", data)
	require.NoError(t, err)
	st, err := pebblestore.Open("models", &pebblestore.Options{FS: vfs.NewMem(), GCInterval: -1})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	srev, err := st.WriteSchema(ctx, src, nil)
	require.NoError(t, err)
	ts := make([]tuples.Tuple, 0, len(f.Relationships))
	for _, l := range f.Relationships {
		ts = append(ts, parseTuple(t, l.Text))
	}
	rev, err := st.Import(ctx, ts, srev)
	require.NoError(t, err)
	return st, rev
}

// TestDocsCaveatExample runs the time-boxed and network-limited grant example of
// docs/models.md (flow-overrides) against the model: the tuples its `relata write`
// writes, and each `relata check` with the answer its comment gives, as a validation
// file.
func TestDocsCaveatExample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "models.md"))
	require.NoError(t, err)
	_, block, ok := strings.Cut(string(doc), "<!-- caveat-example")
	require.True(t, ok, "docs/models.md has no caveat-example block")
	_, block, _ = strings.Cut(block, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	quoted := regexp.MustCompile(`'([^']*)'`)
	checkRE := regexp.MustCompile(`^relata check (\S+) (\S+) (\S+)(?: --consistency full)?(?: --context '([^']*)')?\s+# (allowed|denied|conditional)`)
	var rels []string
	answers := map[string][]string{}
	writing := false
	for _, line := range strings.Split(block, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "relata write ") {
			writing = true
		}
		if writing {
			for _, m := range quoted.FindAllStringSubmatch(line, -1) {
				rels = append(rels, m[1])
			}
			writing = strings.HasSuffix(line, `\`)
			continue
		}
		if m := checkRE.FindStringSubmatch(line); m != nil {
			a := m[1] + "#" + m[2] + "@" + m[3]
			if m[4] != "" {
				a += " with " + m[4]
			}
			kind := map[string]string{"allowed": "assertTrue", "denied": "assertFalse", "conditional": "assertCaveated"}[m[5]]
			answers[kind] = append(answers[kind], a)
		} else if strings.HasPrefix(line, "relata check") {
			t.Fatalf("docs/models.md: cannot read the check %q", line)
		}
	}
	require.Len(t, rels, 6)
	require.Len(t, answers["assertTrue"], 3)
	require.Len(t, answers["assertFalse"], 2)
	require.Len(t, answers["assertCaveated"], 1)

	src, err := models.Schema("flow-overrides")
	require.NoError(t, err)
	f := map[string]any{"schema": string(src), "relationships": strings.Join(rels, "\n"), "assertions": answers}
	data, err := yaml.Marshal(f)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "example.yaml")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	problems, err := validation.RunFile(context.Background(), path)
	require.NoError(t, err)
	for _, p := range problems {
		t.Error(p)
	}
}
