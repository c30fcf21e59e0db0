package embedded_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/kanade/kanade-agent/embedded"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Start a provisioned single-machine server on a random port, connect to it
// and look at one of the protocol's streams.
func ExampleStart() {
	dir, err := os.MkdirTemp("", "kanade-embedded")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	srv, err := embedded.Start(ctx, embedded.Options{StoreDir: dir, Listen: "127.0.0.1:-1"})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	st, err := js.Stream(ctx, "RESULTS")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.CachedInfo().Config.Name, st.CachedInfo().Config.Subjects)
	// Output: RESULTS [results.>]
}
