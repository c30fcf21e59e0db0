//go:build linux

package outbox

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/kanade/kanade-agent/internal/natstest"
)

// TestDiskFullTmpfs fills a real 256 KiB tmpfs: Enqueue fails with an error
// wrapping ENOSPC, and after a reopen exactly the acknowledged items are
// delivered (no partial item). It needs mount(2) (root); without it the
// fault-injection test TestDiskFullFault covers the same path.
func TestDiskFullTmpfs(t *testing.T) {
	dir := natstest.TempDir(t)
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		t.Skipf("cannot mount a tmpfs (%v); TestDiskFullFault covers ENOSPC by fault injection", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, 0) })
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	ob, err := New(testOptions(dir, nil))
	if err != nil {
		t.Fatal(err)
	}
	acked := map[string]int{}
	pad := strings.Repeat("p", 1000)
	var full error
	for i := 0; i < 10_000; i++ {
		id, err := ob.Enqueue(context.Background(), item{Seq: i, Pad: pad})
		if err != nil {
			full = err
			break
		}
		acked[id] = i
	}
	if !errors.Is(full, syscall.ENOSPC) {
		t.Fatalf("filling the disk: %v, want ENOSPC", full)
	}
	if _, err := ob.Enqueue(context.Background(), item{Seq: -1, Pad: pad}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Enqueue on a full disk again: %v", err)
	}
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
	ob = mustNew(t, testOptions(dir, js))
	if st := ob.Stats(); st.Pending != len(acked) || st.Corrupt != 0 {
		t.Fatalf("after reopen: %+v, want %d pending, 0 corrupt", st, len(acked))
	}
	startRun(t, ob)
	waitDelivered(t, ob, js, uint64(len(acked)))
	msgs := streamMsgs(t, js, "OBS_EVENTS")
	for id := range acked {
		if _, ok := msgs[id]; !ok {
			t.Fatalf("acknowledged %s lost", id)
		}
	}
	if len(msgs) != len(acked) {
		t.Fatalf("stream holds %d, acknowledged %d: a failed item was published", len(msgs), len(acked))
	}
}
