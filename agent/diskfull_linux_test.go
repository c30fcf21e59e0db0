//go:build linux

package agent_test

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"golang.org/x/sys/unix"
)

// TestDiskFull puts the agent's data directory on a small tmpfs and fills
// it: commands sent meanwhile get results that say why they did not run
// (stored once there is room again), nothing crashes, and once space is
// freed the agent runs commands again without a restart.
func TestDiskFull(t *testing.T) {
	defer agent.SetReopenEvery(50 * time.Millisecond)()
	dir := natstest.TempDir(t)
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=8m"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): the full-disk test needs root", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	e := newEnv(t)
	logs := &natstest.Buffer{}
	e.start("pc-full", filepath.Join(dir, "data"), func(o *agent.Options) {
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	ok := cmd(noopScript)
	e.publish(pcSubject("pc-full"), ok)
	if r := e.waitResult(ok.RequestID, 20*time.Second); r.ExitCode != 0 {
		t.Fatalf("before: %+v", r)
	}

	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	// A 2 MB result cannot be stored now: the agent keeps it and retries.
	big := cmd("head -c 2000000 /dev/zero | tr '\\0' x")
	e.publish(pcSubject("pc-full"), big)
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if !strings.Contains(logs.String(), "cannot store result") {
			return fmt.Errorf("the agent has not hit the full disk yet")
		}
		return nil
	})
	if rs, _ := e.results(big.RequestID); len(rs) != 0 {
		t.Fatalf("a result was stored on a full disk: %+v", rs)
	}
	// Small commands fill what slack the ledger's last page had, until its
	// write fails: from then on it refuses every write until reopened.
	natstest.CheckFor(t, 60*time.Second, 10*time.Millisecond, func() error {
		e.publish(pcSubject("pc-full"), cmd(noopScript))
		if !strings.Contains(logs.String(), "ledger: failed") {
			return fmt.Errorf("the ledger has not failed yet")
		}
		return nil
	})
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// Once there is room the held result is stored: nothing was lost.
	r := e.waitResult(big.RequestID, 60*time.Second)
	if r.ExitCode != 0 || r.StdoutObject == "" {
		t.Fatalf("after freeing space: exit %d object %q stderr %q", r.ExitCode, r.StdoutObject, r.Stderr)
	}
	// And the agent runs commands again without a restart: the failed
	// ledger is reopened.
	natstest.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		c := cmd(noopScript)
		e.publish(pcSubject("pc-full"), c)
		if r := e.waitResult(c.RequestID, 20*time.Second); r.ExitCode != 0 || r.Skipped {
			return fmt.Errorf("after freeing space: exit %d: %s", r.ExitCode, r.Stderr)
		}
		return nil
	})
	if !strings.Contains(logs.String(), "reopened it") {
		t.Fatal("the failed ledger was not reopened")
	}
}
