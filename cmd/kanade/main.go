// Command kanade is the operator command line of the kanade endpoint agent:
// it runs scripts on agents over NATS and prints their results, pings
// agents, fetches their logs, kills commands, provisions a NATS server and
// manages signing keys and agent releases. All of its logic lives in
// internal/cli; see "kanade help".
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/kanade/kanade-agent/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal gets the default behaviour: exit now
	}()
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
