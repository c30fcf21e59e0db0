package inventory

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
)

// blocker is a function that blocks until released, counting entries.
type blocker struct {
	mu      sync.Mutex
	entered int
	release chan struct{}
}

func newBlocker() *blocker { return &blocker{release: make(chan struct{})} }

// wait blocks, ignoring ctx (like a hung WMI provider).
func (b *blocker) wait() {
	b.mu.Lock()
	b.entered++
	b.mu.Unlock()
	<-b.release
}

func (b *blocker) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.entered
}

// goroutinesSettle waits until the goroutine count is at most n.
func goroutinesAtMost(t testing.TB, n int) {
	t.Helper()
	natstest.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if g := runtime.NumGoroutine(); g > n {
			return fmt.Errorf("%d goroutines, want at most %d", g, n)
		}
		return nil
	})
}

var bg = context.Background()

type slogLogger = slog.Logger

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
