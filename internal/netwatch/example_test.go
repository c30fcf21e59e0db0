package netwatch_test

import (
	"context"
	"log"
	"log/slog"

	"github.com/kanade/kanade-agent/internal/netwatch"
)

// The agent runs the watcher beside its scheduler and turns each change
// into a (debounced) network_change trigger.
func ExampleRun() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	trigger := func() { slog.Info("network changed") } // e.g. a.Trigger(wire.TriggerNetworkChange)
	if err := netwatch.Run(ctx, trigger, netwatch.Options{Log: slog.Default()}); err != nil {
		log.Printf("network watch not started: %v", err) // ErrUnsupported on other systems
	}
}
