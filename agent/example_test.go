package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/embedded"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// An agent embedded in a program, against an embedded server, sent one
// command the way a backend sends it.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, _ := os.MkdirTemp("", "kanade-example-")
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.DiscardHandler)

	srv, err := embedded.Start(ctx, embedded.Options{StoreDir: filepath.Join(dir, "nats"), Listen: "127.0.0.1:0", Logger: quiet})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	a, err := agent.New(agent.Options{PcID: "example-pc", DataDir: filepath.Join(dir, "agent"),
		Servers: []string{srv.ClientURL()}, Logger: quiet, DisableInventory: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	<-a.Ready()

	// The backend side: watch results.<request_id>, publish the command.
	nc, _ := nats.Connect(srv.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	c := wire.Command{ID: wire.AdhocID, RequestID: uuid.NewString(), Shell: testShell, Script: "echo hello", TimeoutSecs: 10}
	resSubj, _ := subject.Result(c.RequestID)
	cons, _ := js.OrderedConsumer(ctx, subject.StreamResults, jetstream.OrderedConsumerConfig{FilterSubjects: []string{resSubj}})
	body, _ := json.Marshal(c)
	target, _ := subject.CommandsPC(a.PcID())
	_ = nc.Publish(target, body)
	m, err := cons.Next(jetstream.FetchMaxWait(20 * time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	r, _ := wire.DecodeExecResult(m.Data())
	fmt.Printf("%s: exit %d, stdout %q\n", r.PcID, r.ExitCode, strings.TrimSpace(r.Stdout))

	stop()
	fmt.Println("Run:", <-done)
	// Output:
	// example-pc: exit 0, stdout "hello"
	// Run: <nil>
}
