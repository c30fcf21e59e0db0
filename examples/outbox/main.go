// Command outbox shows the outbox riding out a broker that is not there yet:
//
//  1. open an outbox in a temporary directory, with a connection to a
//     server that is not running;
//  2. enqueue events (each durable on disk when Enqueue returns);
//  3. start an embedded JetStream server on that address and provision the
//     protocol's streams;
//  4. wait with Flush until JetStream has acknowledged every event.
//
// Run it with: go run ./examples/outbox
package main

import (
	"context"
	"fmt"
	"log"
	"net"
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

const n = 1000

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tmp, err := os.MkdirTemp("", "outbox-example-")
	check(err)
	defer os.RemoveAll(tmp)
	port := freePort()

	// 1. A connection to a broker that is down: it keeps retrying.
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	nc, err := nats.Connect(url, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond))
	check(err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	check(err)

	ob, err := outbox.New(outbox.Options[wire.ObsEvent]{
		Dir:       filepath.Join(tmp, "outbox", "obs"),
		Subject:   func(e wire.ObsEvent) (string, error) { return subject.Obs(e.PcID) },
		JetStream: js,
	})
	check(err)
	defer ob.Close()
	go func() { check(ob.Run(ctx)) }()

	// 2. Enqueue while the broker is down.
	for i := 0; i < n; i++ {
		_, err := ob.Enqueue(ctx, wire.ObsEvent{PcID: "pc1", At: time.Now(), Kind: "logon",
			Source: "winlog:Security", Payload: []byte(fmt.Sprintf(`{"n":%d}`, i))})
		check(err)
	}
	fmt.Printf("enqueued %d events, broker down: %+v\n", n, ob.Stats())

	// 3. The broker comes up; create the streams.
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true,
		StoreDir: filepath.Join(tmp, "jetstream"), NoLog: true, NoSigs: true})
	check(err)
	go srv.Start()
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	if !srv.ReadyForConnections(10 * time.Second) {
		log.Fatal("server not ready")
	}
	if nc.Status() != nats.CONNECTED {
		up := nc.StatusChanged(nats.CONNECTED)
		if nc.Status() != nats.CONNECTED {
			select {
			case <-up:
			case <-ctx.Done():
				check(ctx.Err())
			}
		}
		nc.RemoveStatusListener(up)
	}
	check(provision.Ensure(ctx, js))
	fmt.Println("broker up, streams provisioned")

	// 4. The outbox drains by itself (it retries the publishes that found
	// no stream before provisioning, with backoff).
	start := time.Now()
	// Flush returns once every event enqueued above is acknowledged.
	check(ob.Flush(ctx))
	st, err := js.Stream(ctx, subject.StreamObs)
	check(err)
	info, err := st.Info(ctx)
	check(err)
	fmt.Printf("drained in %v; stream %s holds %d messages: %+v\n",
		time.Since(start).Round(time.Millisecond), subject.StreamObs, info.State.Msgs, ob.Stats())
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
