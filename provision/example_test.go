package provision_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/kanade/kanade-agent/embedded"
	"github.com/kanade/kanade-agent/provision"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Bootstrapping a server for kanade: Check says what is missing, Ensure
// creates it (and is safe to run again).
func ExampleEnsure() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, _ := os.MkdirTemp("", "kanade-provision-")
	defer os.RemoveAll(dir)
	srv, err := embedded.Start(ctx, embedded.Options{StoreDir: filepath.Join(dir, "nats"), Listen: "127.0.0.1:0",
		SkipProvision: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	nc, _ := nats.Connect(srv.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)

	fmt.Println("before:", provision.Check(ctx, js) != nil)
	if err := provision.Ensure(ctx, js); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("after:", provision.Check(ctx, js))
	// Again: nothing created, nothing changed, nothing differs.
	rep, err := provision.Provision(ctx, js, 0)
	fmt.Println("again:", len(rep.Created), "created,", len(rep.Existing), "existing,", rep.Differences, err)
	// Output:
	// before: true
	// after: <nil>
	// again: 0 created, 17 existing, [] <nil>
}

// On a three-node JetStream cluster, create what is missing with three
// replicas; EXEC takes one consumer per agent (DefaultExecMaxConsumers).
func ExampleProvisionWith() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nc, err := nats.Connect("nats://a:4222,nats://b:4222,nats://c:4222")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	rep, err := provision.ProvisionWith(ctx, js, provision.Options{Replicas: 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, d := range rep.Differences {
		fmt.Println(d)
	}
}
