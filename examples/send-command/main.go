// Command send-command is the minimal client a backend needs: it publishes a
// Command to one agent with nats.go and waits for its ExecResult in the
// RESULTS stream.
//
// Run an agent first (go run ./cmd/kanade-agent), then:
//
//	go run ./examples/send-command -pc <pc-id> -script 'echo hello'
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	url := flag.String("url", nats.DefaultURL, "NATS server URL")
	pc := flag.String("pc", "", "target pc id (default: this host's)")
	shell := flag.String("shell", wire.ShellSh, "shell: sh, cmd, powershell or pwsh")
	script := flag.String("script", "echo hello from $(hostname)", "script to run")
	timeout := flag.Duration("timeout", 30*time.Second, "how long to wait for the result")
	flag.Parse()
	if *pc == "" {
		h, _ := os.Hostname()
		*pc = subject.SanitizePcID(h)
	}
	if err := run(*url, *pc, *shell, *script, *timeout); err != nil {
		log.Fatal(err)
	}
}

func run(url, pc, shell, script string, timeout time.Duration) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	// 1. Build the command; request_id is the dedup key and names the result subject.
	cmd := wire.Command{ID: wire.AdhocID, RequestID: uuid.NewString(), Shell: shell, Script: script, TimeoutSecs: 60}
	target, err := subject.CommandsPC(pc)
	if err != nil {
		return err
	}
	resultSubj, err := subject.Result(cmd.RequestID)
	if err != nil {
		return err
	}

	// 2. Watch for the result before publishing, so it cannot be missed.
	cons, err := js.OrderedConsumer(ctx, subject.StreamResults, jetstream.OrderedConsumerConfig{FilterSubjects: []string{resultSubj}})
	if err != nil {
		return fmt.Errorf("RESULTS stream: %w", err)
	}

	// 3. Publish the command (core NATS; stream EXEC keeps it for an offline agent).
	body, _ := json.Marshal(cmd)
	if err := nc.Publish(target, body); err != nil {
		return err
	}
	fmt.Printf("sent %s to %s\n", cmd.RequestID, target)

	// 4. Wait for the result.
	msg, err := cons.Next(jetstream.FetchMaxWait(timeout))
	if err != nil {
		return fmt.Errorf("no result within %v: %w", timeout, err)
	}
	res, err := wire.DecodeExecResult(msg.Data())
	if err != nil {
		return err
	}
	fmt.Printf("exit %d from %s\n--- stdout\n%s--- stderr\n%s\n", res.ExitCode, res.PcID, res.Stdout, res.Stderr)
	return nil
}
