package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/relata/relata/client"
	"github.com/relata/relata/server"
	"github.com/relata/relata/tuples"
	"github.com/relata/relata/tuples/pebblestore"
)

// startExampleServer runs a Relata server on a loopback port over an in-memory store,
// with the preshared key "sekret", and returns its gRPC address and a stop function.
func startExampleServer() (string, func()) {
	store, err := pebblestore.Open("db", &pebblestore.Options{FS: vfs.NewMem()})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: store, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", PresharedKey: "sekret"})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	return srv.GRPCAddr().String(), func() {
		cancel()
		<-done
		store.Close()
	}
}

// A microservice writes relationships and checks a permission, reading its own write
// with the zookie the write returned.
func Example() {
	endpoint, stop := startExampleServer() // in production: "relata.internal:50051"
	defer stop()

	ctx := context.Background()
	c, err := client.New(endpoint, client.WithToken("sekret"), client.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if _, err := c.WriteSchema(ctx, `
		definition user {}
		definition role { relation member: user | role#member }
		definition flow {
			relation granted: user | role#member
			relation denied: user
			permission execute = granted - denied
		}`); err != nil {
		log.Fatal(err)
	}
	updates, err := client.Touch("role:ops#member@user:anne", "role:ops#member@user:bob",
		"flow:f1#granted@role:ops#member", "flow:f1#denied@user:bob")
	if err != nil {
		log.Fatal(err)
	}
	zookie, err := c.Write(ctx, updates)
	if err != nil {
		log.Fatal(err)
	}

	for _, user := range []string{"user:anne", "user:bob"} {
		res, err := c.Check(ctx, "flow:f1", "execute", user, client.AtLeastAsFresh(zookie))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(user, res.Allowed)
	}

	flows, _, err := c.LookupResources(ctx, "flow", "execute", "user:anne", client.AtLeastAsFresh(zookie))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(flows)

	// Server errors carry a reason and match the domain errors.
	_, err = c.Check(ctx, "flow:f1", "run", "user:anne", client.MinimizeLatency())
	fmt.Println(err, errors.Is(err, client.ErrNotFound))
	// Output:
	// user:anne true
	// user:bob false
	// [flow:f1]
	// permission: type "flow" has no relation or permission "run" (UNKNOWN_RELATION) true
}

// A service follows every change of the tuples. Watch reconnects by itself when the
// server restarts or the connection breaks, resuming after the last revision it saw;
// it returns that revision to start from next time.
func ExampleClient_Watch() {
	endpoint, stop := startExampleServer()
	defer stop()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := client.New(endpoint, client.WithToken("sekret"), client.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	from, err := c.WriteSchema(ctx, "definition user {}\ndefinition doc { relation viewer: user }")
	if err != nil {
		log.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() {
		// Not ctx: the watch may see the change and cancel ctx before this call
		// has read the server's acknowledgement.
		updates, _ := client.Touch("doc:readme#viewer@user:anne")
		_, err := c.Write(context.Background(), updates)
		wrote <- err
	}()

	_, err = c.Watch(ctx, client.WatchOptions{From: from}, func(b client.WatchBatch) error {
		for _, ch := range b.Changes {
			fmt.Println(ch.Op == tuples.OpTouch, ch.Tuple)
			cancel() // one change is enough here
		}
		return nil
	})
	fmt.Println(errors.Is(err, context.Canceled))
	if err := <-wrote; err != nil {
		log.Fatal(err)
	}
	// Output:
	// true doc:readme#viewer@user:anne
	// true
}
