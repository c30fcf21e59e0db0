package outbox

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/kanade/kanade-agent/internal/natstest"
)

// TestMaxBytes: an outbox holding Options.MaxBytes refuses new items with
// ErrFull, keeps every item it accepted (across a restart too), and
// accepts again once it has drained. Before MaxBytes it took items until
// the disk was full.
func TestMaxBytes(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	dir := natstest.TempDir(t)
	pad := strings.Repeat("p", 1000)
	opts := testOptions(dir, nil)
	opts.MaxBytes = 10_000 // room for 9 items of ~1.1 KB

	ob, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	var full error
	for i := 0; i < 100 && full == nil; i++ {
		id, err := ob.Enqueue(context.Background(), item{Seq: i, Pad: pad})
		if err != nil {
			full = err
			break
		}
		ids = append(ids, id)
	}
	if !errors.Is(full, ErrFull) {
		t.Fatalf("after %d items Enqueue = %v, want ErrFull", len(ids), full)
	}
	st := ob.Stats()
	if len(ids) < 5 || st.Pending != len(ids) || st.PendingBytes > opts.MaxBytes || st.PendingBytes+st.PendingBytes/int64(len(ids)) <= opts.MaxBytes {
		t.Fatalf("accepted %d items, stats %+v: want the outbox filled up to MaxBytes %d", len(ids), st, opts.MaxBytes)
	}
	// Concurrent producers: none gets through, none of the accepted is lost.
	var wg sync.WaitGroup
	for p := 0; p < 8; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := ob.Enqueue(context.Background(), item{Seq: 1000, Pad: pad}); !errors.Is(err, ErrFull) {
				t.Errorf("concurrent Enqueue into a full outbox = %v, want ErrFull", err)
			}
		}()
	}
	wg.Wait()
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}

	// The bound holds across a restart: the pending bytes are recovered.
	opts.JetStream = js
	ob = mustNew(t, opts)
	if st := ob.Stats(); st.Pending != len(ids) || st.PendingBytes == 0 {
		t.Fatalf("after reopen: %+v, want %d pending", st, len(ids))
	}
	if _, err := ob.Enqueue(context.Background(), item{Seq: 2000, Pad: pad}); !errors.Is(err, ErrFull) {
		t.Fatalf("Enqueue after reopen = %v, want ErrFull", err)
	}

	// Drained, it accepts again; everything accepted was delivered exactly once.
	startRun(t, ob)
	waitDelivered(t, ob, js, uint64(len(ids)))
	checkExactly(t, js, idMap(ids, 0))
	if st := ob.Stats(); st.PendingBytes != 0 {
		t.Fatalf("drained outbox holds %d bytes", st.PendingBytes)
	}
	id, err := ob.Enqueue(context.Background(), item{Seq: len(ids), Pad: pad})
	if err != nil {
		t.Fatalf("Enqueue after drain: %v", err)
	}
	ids = append(ids, id)
	waitDelivered(t, ob, js, uint64(len(ids)))
	checkExactly(t, js, idMap(ids, 0))
}

// TestMaxBytesOneItemAlwaysFits: an item larger than MaxBytes still goes
// into an empty outbox (else a caller retrying it would wait forever), but
// nothing joins it until it is gone.
func TestMaxBytesOneItemAlwaysFits(t *testing.T) {
	opts := testOptions(natstest.TempDir(t), nil)
	opts.MaxBytes = 100
	ob := mustNew(t, opts)
	if _, err := ob.Enqueue(context.Background(), item{Seq: 1, Pad: strings.Repeat("x", 500)}); err != nil {
		t.Fatalf("first item into an empty outbox: %v", err)
	}
	if _, err := ob.Enqueue(context.Background(), item{Seq: 2}); !errors.Is(err, ErrFull) {
		t.Fatalf("second item = %v, want ErrFull", err)
	}
}
