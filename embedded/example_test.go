package embedded_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/kanade/kanade-agent/embedded"
	"github.com/nats-io/nats.go/jetstream"
)

// Start a provisioned single-machine server without a network port, connect
// to it in process and look at one of the protocol's streams.
func ExampleStart() {
	dir, err := os.MkdirTemp("", "kanade-embedded")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	srv, err := embedded.Start(ctx, embedded.Options{StoreDir: dir, Token: "a-long-random-secret"})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	nc, err := srv.Connect()
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
