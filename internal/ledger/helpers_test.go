package ledger

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func removeTree(t testing.TB, dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() {
			removeTree(t, p)
			continue
		}
		if err := os.Remove(p); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	if err := os.Remove(dir); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

// openT opens a ledger and closes it at the end of the test.
func openT(t testing.TB, dir string, opts Options) *Ledger {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

// closeT closes l and fails the test on error.
func closeT(t testing.TB, l *Ledger) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// mustState fails the test unless id's entry is in state want.
func mustState(t testing.TB, l *Ledger, id string, want State) {
	t.Helper()
	e, ok := l.Lookup(id)
	if want == StateNone {
		if ok {
			t.Fatalf("%s: got %v, want no entry", id, e.State)
		}
		return
	}
	if !ok || e.State != want {
		t.Fatalf("%s: got %v (found %v), want %v", id, e.State, ok, want)
	}
}

// claimLaunch claims id and marks it launching with meta.
func claimLaunch(t testing.TB, l *Ledger, id string, meta []byte) {
	t.Helper()
	ok, _, err := l.Claim(id)
	if err != nil || !ok {
		t.Fatalf("Claim(%s) = %v, %v", id, ok, err)
	}
	if err := l.Launching(id, meta); err != nil {
		t.Fatalf("Launching(%s): %v", id, err)
	}
}

// claimFinish claims id, marks it launching, then finished.
func claimFinish(t testing.TB, l *Ledger, id string) {
	t.Helper()
	claimLaunch(t, l, id, nil)
	if err := l.Finished(id); err != nil {
		t.Fatalf("Finished(%s): %v", id, err)
	}
}

// corruptFiles lists the ledger.corrupt-* files in dir.
func corruptFiles(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), corruptBase) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// waitFor polls cond, yielding the processor, until it holds or the
// deadline passes; no fixed sleeps.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return !errors.Is(err, fs.ErrNotExist)
}
