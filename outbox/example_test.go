package outbox_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/kanade/kanade-agent/outbox"
	"github.com/kanade/kanade-agent/provision"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func Example() {
	dir, err := os.MkdirTemp("", "outbox-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// An embedded JetStream server with the protocol's streams.
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: filepath.Join(dir, "js"), NoLog: true, NoSigs: true})
	if err != nil {
		log.Fatal(err)
	}
	go srv.Start()
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	if !srv.ReadyForConnections(10 * time.Second) {
		log.Fatal("server not ready")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := provision.Ensure(ctx, js); err != nil {
		log.Fatal(err)
	}

	acked := make(chan string, 1)
	ob, err := outbox.New(outbox.Options[wire.ObsEvent]{
		Dir:       filepath.Join(dir, "obs"),
		Subject:   func(e wire.ObsEvent) (string, error) { return subject.Obs(e.PcID) },
		JetStream: js,
		OnAck:     func(id string, e wire.ObsEvent) { acked <- e.Kind },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer ob.Close()
	go ob.Run(ctx)

	// Enqueue returns once the event is durable on disk; Run publishes it.
	if _, err := ob.Enqueue(ctx, wire.ObsEvent{PcID: "pc1", At: time.Now(), Kind: "boot", Source: "agent:startup"}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("acked:", <-acked)
	fmt.Println("pending:", ob.Stats().Pending)
	// Output:
	// acked: boot
	// pending: 0
}

// Flush waits until everything enqueued so far is acknowledged (or moved
// to stuck/): before a shutdown, or to hand results over before reporting
// done. The wait ends with ctx.
func ExampleOutbox_Flush() {
	dir, err := os.MkdirTemp("", "outbox-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	js, stopServer := exampleServer(dir) // an embedded, provisioned JetStream server
	defer stopServer()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	ob, err := outbox.New(outbox.Options[wire.ObsEvent]{
		Dir:       filepath.Join(dir, "obs"),
		Subject:   func(e wire.ObsEvent) (string, error) { return subject.Obs(e.PcID) },
		JetStream: js,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer ob.Close()
	go ob.Run(ctx)

	for _, kind := range []string{"logon", "logoff", "shutdown"} {
		if _, err := ob.Enqueue(ctx, wire.ObsEvent{PcID: "pc1", At: time.Now(), Kind: kind, Source: "agent:example"}); err != nil {
			log.Fatal(err)
		}
	}
	stuck := ob.Stats().Stuck
	if err := ob.Flush(ctx); err != nil {
		log.Fatal(err) // ctx ended (no broker) or the outbox was closed
	}
	st := ob.Stats()
	fmt.Println("pending:", st.Pending, "moved to stuck/:", st.Stuck-stuck)
	// Output:
	// pending: 0 moved to stuck/: 0
}

// Serve drains in the background: a drain goroutine runs while items are
// pending, and none once the outbox is empty (after IdleLinger).
func ExampleOutbox_Serve() {
	dir, err := os.MkdirTemp("", "outbox-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	js, stopServer := exampleServer(dir) // an embedded, provisioned JetStream server
	defer stopServer()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	ob, err := outbox.New(outbox.Options[wire.ObsEvent]{
		Dir:        filepath.Join(dir, "obs"),
		Subject:    func(e wire.ObsEvent) (string, error) { return subject.Obs(e.PcID) },
		JetStream:  js,
		IdleLinger: time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer ob.Close()
	serveCtx, stop := context.WithCancel(ctx)
	wait, err := ob.Serve(serveCtx)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := ob.Enqueue(ctx, wire.ObsEvent{PcID: "pc1", At: time.Now(), Kind: "logon", Source: "agent:example"}); err != nil {
		log.Fatal(err)
	}
	if err := ob.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("pending:", ob.Stats().Pending)
	stop()
	wait() // the drain goroutine, if still lingering, has stopped
	// Output:
	// pending: 0
}

// exampleServer starts an embedded JetStream server with the protocol's
// streams, storing in dir/js.
func exampleServer(dir string) (jetstream.JetStream, func()) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: filepath.Join(dir, "js"), NoLog: true, NoSigs: true})
	if err != nil {
		log.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		log.Fatal("server not ready")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := provision.Ensure(ctx, js); err != nil {
		log.Fatal(err)
	}
	return js, func() { nc.Close(); srv.Shutdown(); srv.WaitForShutdown() }
}
