package inventory

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// tempDir is t.TempDir that also works under Wine, where os.RemoveAll
// fails: the cleanup removes files one by one, deepest first.
func tempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "inventory-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var paths []string
		filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err == nil {
				paths = append(paths, p)
			}
			return nil
		})
		for i := len(paths) - 1; i >= 0; i-- {
			os.Remove(paths[i])
		}
	})
	return dir
}

// checkFor polls f every `every` until it returns nil or total has passed.
func checkFor(t testing.TB, total, every time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	var err error
	for {
		if err = f(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", total, err)
		}
		time.Sleep(every)
	}
}

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
	checkFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if g := runtime.NumGoroutine(); g > n {
			return fmt.Errorf("%d goroutines, want at most %d", g, n)
		}
		return nil
	})
}

var bg = context.Background()

type slogLogger = slog.Logger

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
