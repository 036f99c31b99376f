package schema_test

import (
	"errors"
	"fmt"

	"github.com/relata/relata/schema"
	"github.com/relata/relata/tuples"
)

func ExampleCompile() {
	_, err := schema.Compile("example.zed", []byte(`
definition user {}
definition doc {
	relation viewer: user | usr
	permission view = viewer + editor
}`))
	var list schema.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Println(e)
		}
	}
	// Output:
	// example.zed:4:26: unknown type usr in relation doc#viewer
	// example.zed:5:29: unknown relation or permission editor in definition doc
}

func ExampleFormat() {
	out, err := schema.Format([]byte(`definition user {}
definition doc { /** who reads */ relation viewer: user|user:*
permission view = viewer - nil + viewer }`))
	if err != nil {
		panic(err)
	}
	fmt.Print(string(out))
	// Output:
	// definition user {}
	//
	// definition doc {
	// 	/** who reads */
	// 	relation viewer: user | user:*
	// 	permission view = viewer - (nil + viewer)
	// }
}

func ExampleSchema_ValidateTuple() {
	s, err := schema.Compile("", []byte(`definition user {}
definition role { relation member: user }
definition flow { relation granted: user }`))
	if err != nil {
		panic(err)
	}
	err = s.ValidateTuple(tuples.Tuple{
		Object:   tuples.ObjectRef{Type: "flow", ID: "f1"},
		Relation: "granted",
		Subject:  tuples.SubjectRef{Object: tuples.ObjectRef{Type: "role", ID: "r"}, Relation: "member"},
	})
	fmt.Println(err)
	fmt.Println(errors.Is(err, schema.ErrNotAllowed))
	// Output:
	// schema: subject role:r#member is not allowed on flow#granted; allowed: user
	// true
}

func ExampleDiff() {
	old, _ := schema.Compile("", []byte(`definition user {}
definition flow { relation granted: user | user:*  relation denied: user }`))
	updated, _ := schema.Compile("", []byte(`definition user {}
definition flow { relation granted: user }`))
	for _, r := range schema.Diff(old, updated) {
		fmt.Printf("%s: %+v\n", r, r.Filter())
	}
	// Output:
	// subject type user:* removed from flow#granted: {object_type=flow relation=granted subject_type=user subject_id=* subject_relation=...}
	// relation flow#denied removed: {object_type=flow relation=denied}
}
