package pebblestore_test

import (
	"context"
	"fmt"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/pebblestore"
)

func Example() {
	ctx := context.Background()
	s, err := pebblestore.Open("relata-data", &pebblestore.Options{FS: vfs.NewMem()})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	t, _ := tuples.ParseTuple("flow:f1#granted@role:ops#member")
	rev, err := s.Write(ctx, tuples.WriteRequest{Updates: []tuples.Update{{Op: tuples.OpCreate, Tuple: t}}})
	if err != nil {
		panic(err)
	}
	zookies := tuples.NewZookies(s.Identity())
	zookie := zookies.Encode(rev)

	// Later, a read at the revision the zookie names (a zookie of another store fails).
	at, err := zookies.Decode(zookie)
	if err != nil {
		panic(err)
	}
	r, err := s.ReaderAt(ctx, at)
	if err != nil {
		panic(err)
	}
	for tup, err := range r.Subjects(ctx, tuples.ObjectRef{Type: "flow", ID: "f1"}, "granted", "") {
		if err != nil {
			panic(err)
		}
		fmt.Println(tup)
	}
	_, err = s.Write(ctx, tuples.WriteRequest{Updates: []tuples.Update{{Op: tuples.OpCreate, Tuple: t}}})
	fmt.Println(err)
	// Output:
	// flow:f1#granted@role:ops#member
	// tuple flow:f1#granted@role:ops#member already exists
}
