package netwatch

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Windows (and Wine): the watcher subscribes, reads a first state and
// stops cleanly, several times over (the one system callback is shared).
// Changing the network needs an administrator and real adapters, so a
// change itself is not made here; the Linux tests cover the comparison.
func TestStartsAndStops(t *testing.T) {
	first, err := read()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !strings.Contains(strings.Join(first, "\n"), "link ") {
		t.Fatalf("no adapter in the first reading: %q", first)
	}
	t.Logf("state: %q", first)
	g := runtime.NumGoroutine()
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		started := make(chan struct{})
		done := make(chan error, 1)
		go func() { done <- Run(ctx, func() {}, Options{Started: func() { close(started) }}) }()
		select {
		case <-started:
		case err := <-done:
			cancel()
			t.Fatalf("Run: %v", err)
		case <-time.After(20 * time.Second):
			cancel()
			t.Fatal("watcher not started")
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
	}
	if p := subs.Load(); p != nil && len(*p) != 0 {
		t.Fatalf("%d watchers still subscribed", len(*p))
	}
	if n := runtime.NumGoroutine(); n > g+1 {
		t.Fatalf("%d goroutines after, %d before", n, g)
	}
}
