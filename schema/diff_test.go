package schema

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/relata/relata/tuples"
)

func TestDiff(t *testing.T) {
	t.Parallel()
	old := mustCompile(t, `definition user {}
definition role { relation member: user | role#member }
definition gone { relation r: user }
definition flow {
	relation tenant: role
	relation granted: user | role#member | user:*
	relation denied: user | role#member
	relation becomes_permission: user
	permission execute = granted - denied
}`)
	tests := []struct {
		name string
		new  string
		want []string
	}{
		{
			name: "same schema",
			new: `definition user {}
definition role { relation member: user | role#member }
definition gone { relation r: user }
definition flow {
	relation tenant: role
	relation granted: user | role#member | user:*
	relation denied: user | role#member
	relation becomes_permission: user
	permission execute = granted - denied
}`,
		},
		{
			name: "additions and permission changes remove nothing",
			new: `definition user {}
definition team {}
definition role { relation member: user | role#member | team }
definition gone { relation r: user  relation s: user }
definition flow {
	relation tenant: role
	relation granted: user | role#member | user:* | team
	relation denied: user | role#member
	relation becomes_permission: user
}`,
		},
		{
			name: "removals",
			new: `definition user {}
definition role { relation member: user }
definition flow {
	relation granted: user
	relation denied: role#member | user
	permission becomes_permission = denied
}`,
			want: []string{
				"subject type role#member removed from role#member",
				"relation gone#r removed",
				"relation flow#tenant removed",
				"subject type role#member removed from flow#granted",
				"subject type user:* removed from flow#granted",
				"relation flow#becomes_permission removed",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, r := range Diff(old, mustCompile(t, tt.new)) {
				got = append(got, r.String())
			}
			require.Equal(t, tt.want, got)
		})
	}
	require.Nil(t, Diff(nil, old), "a first schema removes nothing")
}

func TestRemovalFilter(t *testing.T) {
	t.Parallel()
	user := &AllowedSubject{Type: "user"}
	wildcard := &AllowedSubject{Type: "user", Wildcard: true}
	userset := &AllowedSubject{Type: "role", Relation: "member"}
	tests := []struct {
		name    string
		removal Removal
		filter  tuples.Filter
		matches map[string]bool // tuple → orphaned
	}{
		{
			name:    "relation",
			removal: Removal{Type: "flow", Relation: "granted"},
			filter:  tuples.Filter{ObjectType: "flow", Relation: "granted"},
			matches: map[string]bool{
				"flow:f#granted@user:anne":       true,
				"flow:f#granted@role:r#member":   true,
				"flow:f#denied@user:anne":        false,
				"tenant:f#granted@user:anne":     false,
				"flow:f#granted@user:*":          true,
				"flow:other#granted@team:t#lead": true,
			},
		},
		{
			name:    "plain subject type",
			removal: Removal{Type: "flow", Relation: "granted", Subject: user},
			filter:  tuples.Filter{ObjectType: "flow", Relation: "granted", SubjectType: "user", SubjectRelation: tuples.Ellipsis, NoWildcard: true},
			matches: map[string]bool{
				"flow:f#granted@user:anne":        true,
				"flow:f#granted@user:*":           false,
				"flow:f#granted@user:anne#friend": false,
				"flow:f#granted@role:r#member":    false,
			},
		},
		{
			name:    "wildcard",
			removal: Removal{Type: "flow", Relation: "granted", Subject: wildcard},
			filter:  tuples.Filter{ObjectType: "flow", Relation: "granted", SubjectType: "user", SubjectID: "*", SubjectRelation: tuples.Ellipsis},
			matches: map[string]bool{
				"flow:f#granted@user:*":    true,
				"flow:f#granted@user:anne": false,
			},
		},
		{
			name:    "userset",
			removal: Removal{Type: "flow", Relation: "granted", Subject: userset},
			filter:  tuples.Filter{ObjectType: "flow", Relation: "granted", SubjectType: "role", SubjectRelation: "member"},
			matches: map[string]bool{
				"flow:f#granted@role:r#member": true,
				"flow:f#granted@role:r#admin":  false,
				"flow:f#granted@role:r":        false,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.filter, tt.removal.Filter())
			for text, want := range tt.matches {
				tup := tuple(t, text)
				require.Equal(t, want, tt.removal.Matches(tup), "Matches(%s)", text)
				// The filter selects exactly the orphaned tuples: a schema write is
				// refused for no tuple that still fits the new schema.
				require.Equal(t, want, tt.removal.Filter().Matches(tup), "Filter().Matches(%s)", text)
			}
		})
	}
	pre := Preconditions([]Removal{{Type: "flow", Relation: "granted"}})
	require.Equal(t, []tuples.Precondition{{Op: tuples.MustNotMatch, Filter: tuples.Filter{ObjectType: "flow", Relation: "granted"}}}, pre)
}

func TestDiffCaveatForms(t *testing.T) {
	t.Parallel()
	old := mustCompile(t, `caveat on_net(cidr string) { cidr == "10.0.0.0/8" }
caveat weekday(day int) { day < 6 }
definition user {}
definition doc {
	relation viewer: user | user with on_net
	relation editor: user with weekday | user with expiration
	relation owner: user with on_net
}`)
	tests := []struct {
		name string
		new  string
		want []string
	}{
		{
			name: "caveat form dropped while the plain type stays",
			new: `caveat weekday(day int) { day < 6 }
definition user {}
definition doc {
	relation viewer: user
	relation editor: user with weekday | user with expiration
	relation owner: user
}`,
			want: []string{
				"subject type user with on_net removed from doc#viewer",
				"subject type user with on_net removed from doc#owner",
			},
		},
		{
			name: "caveat parameters changed, expiration dropped",
			new: `caveat on_net(cidr string) { cidr == "10.0.0.0/8" }
caveat weekday(day string) { day != "sun" }
definition user {}
definition doc {
	relation viewer: user | user with on_net
	relation editor: user with weekday
	relation owner: user with on_net
}`,
			want: []string{
				"caveat weekday changed its parameters, used by doc#editor (user with weekday)",
				"subject type user with expiration removed from doc#editor",
			},
		},
		{
			name: "expression change only",
			new: `caveat on_net(cidr string) { cidr != "" }
caveat weekday(day int) { day < 5 }
definition user {}
definition doc {
	relation viewer: user with on_net | user
	relation editor: user with expiration | user with weekday
	relation owner: user with on_net
}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, r := range Diff(old, mustCompile(t, tt.new)) {
				got = append(got, r.String())
			}
			require.Equal(t, tt.want, got)
		})
	}
	r := Removal{Type: "doc", Relation: "viewer", Subject: &AllowedSubject{Type: "user", Caveat: "on_net"}, Form: true}
	for text, want := range map[string]bool{"doc:1#viewer@user:a[on_net]": true, "doc:1#viewer@user:a": false, "doc:1#viewer@user:a[other]": false} {
		tup, err := tuples.ParseTuple(text)
		require.NoError(t, err)
		require.Equal(t, want, r.Matches(tup), text)
	}
}

func TestCompare(t *testing.T) {
	t.Parallel()
	old := mustCompile(t, `caveat on_net(cidr string) { cidr == "10.0.0.0/8" }
definition user {}
definition gone { relation r: user }
definition doc {
	relation viewer: user | user with on_net
	relation editor: user
	permission view = viewer + editor
}`)
	next := mustCompile(t, `caveat weekday(day int) { day < 6 }
definition user {}
definition team { relation member: user }
definition doc {
	relation viewer: user
	relation owner: user
	permission view = viewer + owner
}`)
	var got []string
	for _, c := range Compare(old, next) {
		got = append(got, fmt.Sprintf("%s [%d]", c, len(c.Removals)))
	}
	require.Equal(t, []string{
		"removed definition gone [1]",
		"removed relation gone#r (relation r: user) [1]",
		"changed definition doc (changed relation viewer, removed relation editor, changed permission view, added relation owner) [0]",
		"changed relation doc#viewer (user | user with on_net → user) [1]",
		"removed relation doc#editor (relation editor: user) [1]",
		"changed permission doc#view (= viewer + editor → = viewer + owner) [0]",
		"added relation doc#owner (relation owner: user) [0]",
		"added definition team [0]",
		"added relation team#member (relation member: user) [0]",
		"removed caveat on_net (caveat on_net(cidr string) { cidr == \"10.0.0.0/8\" }) [1]",
		"added caveat weekday (caveat weekday(day int) { day < 6 }) [0]",
	}, got)
	require.Empty(t, Compare(old, old))
	require.Len(t, Compare(nil, old), 8, "a first schema adds everything")
}
