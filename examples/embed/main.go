// Command embed shows a Go service embedding the kanade agent library, with
// an ObsEvent source of its own:
//
//  1. start an embedded JetStream server (provisioned with the protocol's
//     streams), as the daemon does when no NATS URL is configured;
//  2. run agent.New(...).Run(ctx) in the service, with an ObsSource that
//     reports a "service_tick" event every 200 ms;
//  3. act as the backend: send the agent a command and read its result, and
//     count the service's events in the OBS_EVENTS stream;
//  4. stop: cancel the context, and Run returns after a clean shutdown.
//
// Run it with: go run ./examples/embed
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/google/uuid"
	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/embedded"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "kanade-embed-")
	check(err)
	defer os.RemoveAll(dir)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// 1. An embedded, provisioned JetStream server on a free port.
	srv, err := embedded.Start(ctx, embedded.Options{StoreDir: dir + "/nats", Listen: "127.0.0.1:0", Logger: logger})
	check(err)
	defer srv.Close()

	// 2. The agent, inside this service, with its own event source.
	ticks := agent.ObsSourceFunc(func(ctx context.Context, emit func(context.Context, wire.ObsEvent) error) error {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for n := 1; ; n++ {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				payload, _ := json.Marshal(map[string]int{"n": n})
				// emit returns once the event is durable in the obs outbox.
				if err := emit(ctx, wire.ObsEvent{Kind: "service_tick", Source: "example:embed", Payload: payload}); err != nil {
					return err
				}
			}
		}
	})
	a, err := agent.New(agent.Options{
		PcID: "embed-demo", DataDir: dir + "/agent", Servers: []string{srv.ClientURL()},
		Logger: logger, ObsSources: []agent.ObsSource{ticks}, DisableInventory: true,
	})
	check(err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	<-a.Ready()
	fmt.Println("agent ready as", a.PcID())

	// 3. The backend side: a command and its result.
	nc, err := nats.Connect(srv.ClientURL())
	check(err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	check(err)
	shell, script := wire.ShellSh, "echo hello from $(uname -s)"
	if runtime.GOOS == "windows" {
		shell, script = wire.ShellCmd, "echo hello from Windows"
	}
	cmd := wire.Command{ID: wire.AdhocID, RequestID: uuid.NewString(), Shell: shell, Script: script, TimeoutSecs: 10}
	resSubj, _ := subject.Result(cmd.RequestID)
	cons, err := js.OrderedConsumer(ctx, subject.StreamResults, jetstream.OrderedConsumerConfig{FilterSubjects: []string{resSubj}})
	check(err)
	body, _ := json.Marshal(cmd)
	target, _ := subject.CommandsPC(a.PcID())
	check(nc.Publish(target, body))
	msg, err := cons.Next(jetstream.FetchMaxWait(20 * time.Second))
	check(err)
	res, err := wire.DecodeExecResult(msg.Data())
	check(err)
	fmt.Printf("result: exit %d, stdout %q\n", res.ExitCode, res.Stdout)

	// The service's own events, stored in OBS_EVENTS next to agent_online.
	obs, err := js.Stream(ctx, subject.StreamObs)
	check(err)
	for {
		info, err := obs.Info(ctx)
		check(err)
		if info.State.Msgs >= 5 {
			fmt.Printf("OBS_EVENTS holds %d events (agent_online and service ticks)\n", info.State.Msgs)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	// 4. Stop the agent.
	stop()
	check(<-done)
	fmt.Println("agent stopped cleanly")
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
