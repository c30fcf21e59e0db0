package natstest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TempDir makes a new temporary directory for t and removes it when the
// test and all its subtests complete, like t.TempDir, but removes the tree
// bottom-up one entry at a time with os.Remove: under Wine os.RemoveAll
// (and so t.TempDir's cleanup) fails with "Invalid function". On Windows a
// file can stay busy for a moment after its last user closed it (a killed
// child, a nats-server store), so removal is retried for a few seconds;
// elsewhere a failure fails the test at once.
//
// Like every t.Cleanup, the removal runs after cleanups registered later,
// so a server or file opened after TempDir is closed before its directory
// is removed.
func TempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", tempPattern(t.Name()))
	if err != nil {
		t.Fatalf("natstest: TempDir: %v", err)
	}
	t.Cleanup(func() {
		wait := time.Duration(0)
		if runtime.GOOS == "windows" {
			wait = 10 * time.Second
		}
		if err := removeTree(dir, wait); err != nil {
			t.Errorf("natstest: TempDir cleanup: %v", err)
		}
	})
	return dir
}

// tempPattern makes an os.MkdirTemp pattern from a test name, as t.TempDir
// does: path separators and other unsafe characters are dropped, and the
// name is cut short.
func tempPattern(name string) string {
	const maxLen = 64
	name = strings.Map(func(r rune) rune {
		if r < 0x80 && (r == '-' || r == '_' || r == '.' ||
			'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return r
		}
		return -1
	}, name)
	if len(name) > maxLen {
		name = name[:maxLen]
	}
	return name + "-"
}

// removeTree removes dir and everything under it with os.Remove, children
// before parents, retrying for up to wait while an entry cannot be removed.
func removeTree(dir string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := removeOnce(dir)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond) // a retry back-off, not a wait for a condition
	}
}

// removeOnce makes one bottom-up pass over dir and returns the first error.
func removeOnce(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var first error
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() {
			err = removeOnce(p)
		} else {
			err = os.Remove(p)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) && first == nil {
			first = err
		}
	}
	if first != nil {
		return first
	}
	return os.Remove(dir)
}
