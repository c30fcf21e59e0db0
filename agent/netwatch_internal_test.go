package agent

import (
	"log/slog"
	"testing"
)

// The agents of one process share one network watcher: started with the
// first subscriber, stopped with the last, started again for a new first.
func TestNetHubShared(t *testing.T) {
	var h netHub
	log := slog.New(slog.DiscardHandler)
	before := netWatchStarts.Load()
	var removes []func()
	for range 50 {
		removes = append(removes, h.add(log, func() {}))
	}
	if h.cancel == nil {
		t.Fatal("no watcher running with 50 subscribers")
	}
	for i, r := range removes {
		r()
		r() // a second call does nothing
		if running := h.cancel != nil; running != (i < len(removes)-1) {
			t.Fatalf("after %d of %d removed: watcher running %v", i+1, len(removes), running)
		}
	}
	h.add(log, func() {})()
	// netWatchStarts counts in the watcher's goroutine: read the starts
	// asked for, i.e. at most two, never one per subscriber.
	if n := netWatchStarts.Load() - before; n > 2 {
		t.Errorf("%d watchers started for 51 subscriptions in two rounds, want at most 2", n)
	}
}
