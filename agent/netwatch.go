package agent

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/kanade/kanade-agent/internal/netwatch"
	"github.com/kanade/kanade-agent/wire"
)

// watchNetwork follows the machine's network configuration (package
// internal/netwatch: a link up or down, an address added or removed, the
// default route changed) while ctx lasts, and fires the network_change
// trigger (debounced by the scheduler) at each change. The agents of one
// process share one watcher (one socket, one goroutine), started with the
// first and stopped with the last; watchNetwork itself starts no
// goroutine. A watcher that cannot start, or stops on an error, is logged
// once and left off until every agent has left it: `on: [network_change]`
// schedules then fire only through Agent.Trigger. Off with
// Options.DisableNetworkWatch.
func (a *Agent) watchNetwork(ctx context.Context) {
	if a.opts.DisableNetworkWatch {
		return
	}
	remove := sharedNetWatch.add(a.log.With("component", "netwatch"), func() { a.Trigger(wire.TriggerNetworkChange) })
	context.AfterFunc(ctx, remove)
}

// sharedNetWatch is the process's network watcher.
var sharedNetWatch netHub

// netHub runs one netwatch.Run for all the agents of a process.
type netHub struct {
	mu     sync.Mutex
	next   uint64
	subs   map[uint64]func()
	cancel context.CancelFunc // set while a watcher runs (or failed) for the current subscribers
}

// add subscribes fire to network changes, starting the watcher for the
// first subscriber; the returned func unsubscribes (once).
func (h *netHub) add(log *slog.Logger, fire func()) (remove func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = map[uint64]func(){}
	}
	id := h.next
	h.next++
	h.subs[id] = fire
	if h.cancel == nil {
		ctx, cancel := context.WithCancel(context.Background())
		h.cancel = cancel
		go h.run(ctx, log)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			delete(h.subs, id)
			if len(h.subs) == 0 && h.cancel != nil {
				h.cancel()
				h.cancel = nil
			}
		})
	}
}

// netWatchStarts counts the watchers started (tests).
var netWatchStarts atomic.Int64

func (h *netHub) run(ctx context.Context, log *slog.Logger) {
	netWatchStarts.Add(1)
	err := netwatch.Run(ctx, h.fire, netwatch.Options{
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

// fire calls every subscriber (each only signals its scheduler).
func (h *netHub) fire() {
	h.mu.Lock()
	fs := make([]func(), 0, len(h.subs))
	for _, f := range h.subs {
		fs = append(fs, f)
	}
	h.mu.Unlock()
	for _, f := range fs {
		f()
	}
}
