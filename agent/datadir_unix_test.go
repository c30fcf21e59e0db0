//go:build unix

package agent_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/internal/privdir"
)

// TestDataDirPrivate: an agent used as a library creates its data
// directory and its staging directory private (0700), and resets an
// existing data directory that others could read to 0700.
func TestDataDirPrivate(t *testing.T) {
	e := newEnv(t)
	base := natstest.TempDir(t)
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(base, "fresh", "data")
	e.start("pc-dd1", fresh, nil)
	for _, d := range []string{fresh, filepath.Join(fresh, "staging")} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o700 {
			t.Fatalf("%s: mode %04o, want 0700", d, perm)
		}
	}
	wide := filepath.Join(base, "wide")
	if err := os.Mkdir(wide, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(wide, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	e.start("pc-dd2", wide, nil)
	if fi, err := os.Stat(wide); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("existing data dir: %v, %v; want mode 0700", fi.Mode(), err)
	}
}

// TestDataDirUnsafeRefused: an agent refuses to start on a data directory
// that group or others can write (another account could swap the scripts
// it stages), with an error wrapping privdir.ErrUnsafe, and leaves it as
// it was.
func TestDataDirUnsafeRefused(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(natstest.TempDir(t), "open")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Options{PcID: "pc-dd3", DataDir: dir, Servers: []string{e.srv.URL()},
		Logger: testLogger(t), DisableInventory: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Run(ctx); !errors.Is(err, privdir.ErrUnsafe) {
		t.Fatalf("Run: %v, want privdir.ErrUnsafe", err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o777 {
		t.Fatalf("data dir changed: %v, %v", fi.Mode(), err)
	}
}
