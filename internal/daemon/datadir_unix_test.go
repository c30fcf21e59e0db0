//go:build unix

package daemon

import (
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/internal/privdir"
)

// startStopped runs the agent with data directory dir and a ctx that has
// already ended: it gets as far as preparing the data directory and the
// log file, then stops.
func startStopped(t *testing.T, dir string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	code, _, stderr := runMain(t, ctx, map[string]string{"HOME": "/home/u"},
		"--data-dir", dir, "--embedded-listen", "127.0.0.1:0")
	return code, stderr
}

// TestDataDirPlantedByOtherUser: another user created the data directory,
// world-writable, before the agent's first start; the agent refuses to
// start and writes nothing into it.
func TestDataDirPlantedByOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a directory owned by another user (CI runs as root)")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir := filepath.Join(natstest.TempDir(t), "kanade")
	os.Mkdir(dir, 0o777)
	os.Chmod(dir, 0o777)
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	code, stderr := startStopped(t, dir)
	if code != ExitFailure || !strings.Contains(stderr, "owned by uid "+u.Uid) {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("wrote into the planted directory: %v", left)
	}
}

// TestDataDirCreatedPrivate: a new data directory is 0700 from the start;
// one left 0750 by an older agent is reset to 0700; a world-writable one
// is refused.
func TestDataDirCreatedPrivate(t *testing.T) {
	base := natstest.TempDir(t)
	dir := filepath.Join(base, "new", "kanade")
	startStopped(t, dir)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("new data directory: %v %v", fi.Mode(), err)
	}

	old := filepath.Join(base, "old")
	os.Mkdir(old, 0o700)
	os.Chmod(old, 0o750)
	if o, err := ensureDataDir(old); err != nil || o != privdir.Reset {
		t.Fatalf("ensureDataDir(0750) = %v, %v", o, err)
	}
	if fi, _ := os.Stat(old); fi.Mode().Perm() != 0o700 {
		t.Fatalf("after reset: %v", fi.Mode())
	}

	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o700)
	os.Chmod(open, 0o777)
	code, stderr := startStopped(t, open)
	if code != ExitFailure || !strings.Contains(stderr, "writable by group or others") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if _, err := ensureDataDir(open); !errors.Is(err, privdir.ErrUnsafe) {
		t.Fatal(err)
	}
}
