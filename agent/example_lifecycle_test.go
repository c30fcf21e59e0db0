package agent_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/embedded"
	"github.com/nats-io/nats.go"
)

// Two agents in one program share the program's own connection
// (Options.Conn); WaitReady tells when each is ready, or why it failed:
// here a third agent on the first one's data directory.
func ExampleAgent_WaitReady() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, _ := os.MkdirTemp("", "kanade-example-")
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.DiscardHandler)

	srv, err := embedded.Start(ctx, embedded.Options{StoreDir: filepath.Join(dir, "nats"), Logger: quiet})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	// The program's connection: it stays open after the agents stop.
	nc, err := srv.Connect(nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()

	runCtx, stop := context.WithCancel(ctx)
	var done []chan error
	start := func(pcID, dataDir string) *agent.Agent {
		a, err := agent.New(agent.Options{PcID: pcID, DataDir: filepath.Join(dir, dataDir),
			Conn: nc, Logger: quiet, DisableInventory: true})
		if err != nil {
			panic(err)
		}
		ch := make(chan error, 1)
		done = append(done, ch)
		go func() { ch <- a.Run(runCtx) }()
		return a
	}
	for _, a := range []*agent.Agent{start("pc-1", "a1"), start("pc-2", "a2")} {
		err := a.WaitReady(ctx)
		fmt.Printf("%s ready: %v\n", a.PcID(), err == nil)
	}
	third := start("pc-3", "a1") // pc-1's data directory: locked
	err = third.WaitReady(ctx)
	fmt.Printf("%s ready: %v\n", third.PcID(), err == nil)

	stop()
	for _, ch := range done {
		if err := <-ch; err != nil && !errors.Is(err, context.Canceled) {
			fmt.Println("Run failed")
		}
	}
	fmt.Println("connection still open:", !nc.IsClosed())
	// Output:
	// pc-1 ready: true
	// pc-2 ready: true
	// pc-3 ready: false
	// Run failed
	// connection still open: true
}
