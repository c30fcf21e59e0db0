package agent

import (
	"context"
	"errors"

	"github.com/kanade/kanade-agent/internal/netwatch"
	"github.com/kanade/kanade-agent/wire"
)

// runNetWatch follows the machine's network configuration (package
// internal/netwatch: a link up or down, an address added or removed, the
// default route changed) while the local scheduler runs, and fires the
// network_change trigger (debounced by the scheduler) at each change.
// A watcher that cannot start, or stops on an error, is logged once and
// left off: `on: [network_change]` schedules then fire only through
// Agent.Trigger. Off with Options.DisableNetworkWatch.
func (a *Agent) runNetWatch(ctx context.Context) {
	if a.opts.DisableNetworkWatch {
		return
	}
	log := a.log.With("component", "netwatch")
	err := netwatch.Run(ctx, func() { a.Trigger(wire.TriggerNetworkChange) }, netwatch.Options{
		Log:     log,
		Started: func() { log.Debug("network watch started") },
	})
	switch {
	case err == nil || ctx.Err() != nil:
	case errors.Is(err, netwatch.ErrUnsupported):
		log.Info("network watch not available on this system; network_change fires only through Agent.Trigger")
	default:
		log.Warn("network watch stopped; network_change fires only through Agent.Trigger", "err", err)
	}
}
