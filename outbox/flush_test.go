package outbox

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
)

// TestFlushEmpty: Flush returns at once on an outbox with nothing pending,
// before any Run and without a connection, and again once all is acked.
func TestFlushEmpty(t *testing.T) {
	ob := mustNew(t, testOptions(natstest.TempDir(t), nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ob.Flush(ctx); err != nil {
		t.Fatalf("Flush on an empty outbox: %v", err)
	}

	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	ob2 := mustNew(t, testOptions(natstest.TempDir(t), js))
	startRun(t, ob2)
	enqueueN(t, ob2, 0, 10)
	waitDelivered(t, ob2, js, 10)
	if err := ob2.Flush(ctx); err != nil {
		t.Fatalf("Flush with everything acked: %v", err)
	}
}

// TestFlushWaitsForBroker: with the broker down, Flush waits (its ctx ends
// first); once the broker is back it returns nil, every item enqueued
// before it being in the stream.
func TestFlushWaitsForBroker(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	o := testOptions(natstest.TempDir(t), js)
	o.BackoffBase, o.MaxBackoff = 10*time.Millisecond, 100*time.Millisecond
	ob := mustNew(t, o)
	startRun(t, ob)
	ids := enqueueN(t, ob, 0, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := ob.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Flush returned nil: all 100 are acknowledged, so in the stream.
	if n, err := streamCount(js, "OBS_EVENTS"); err != nil || n != 100 {
		t.Fatalf("after Flush the stream holds %d (%v), want 100", n, err)
	}

	s.Shutdown()
	ids = append(ids, enqueueN(t, ob, 100, 300)...)
	short, cancelShort := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelShort()
	if err := ob.Flush(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush with the broker down = %v, want DeadlineExceeded", err)
	}
	if p := ob.Stats().Pending; p != 300 {
		t.Fatalf("pending %d, want 300", p)
	}

	done := make(chan error, 1)
	go func() { done <- ob.Flush(ctx) }()
	s.Start()
	if err := <-done; err != nil {
		t.Fatalf("Flush after the broker came back: %v", err)
	}
	if p := ob.Stats().Pending; p != 0 {
		t.Fatalf("Flush returned with %d pending", p)
	}
	checkExactly(t, js, idMap(ids, 0))
}

// TestFlushHonoursCtxAndClose: a cancelled ctx ends Flush with ctx.Err();
// Close ends a waiting Flush with ErrClosed, and a later Flush returns
// ErrClosed at once.
func TestFlushHonoursCtxAndClose(t *testing.T) {
	ob, err := New(testOptions(natstest.TempDir(t), nil)) // no connection: nothing drains
	if err != nil {
		t.Fatal(err)
	}
	enqueueN(t, ob, 0, 3)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ob.Flush(ctx) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Flush after cancel = %v, want Canceled", err)
	}

	go func() { done <- ob.Flush(context.Background()) }()
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush across Close = %v, want ErrClosed", err)
	}
	if err := ob.Flush(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush after Close = %v, want ErrClosed", err)
	}
}

// TestFlushCountsStuck: an item moved to stuck/ is finished for Flush,
// which returns nil; Stats.Stuck counts it.
func TestFlushCountsStuck(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	o := testOptions(natstest.TempDir(t), js)
	o.BackoffBase, o.MaxBackoff, o.MaxAttempts = time.Millisecond, 4*time.Millisecond, 3
	o.Prepare = func(_ context.Context, _ string, v item) (item, error) {
		if v.Seq == 1 {
			return v, errors.New("cannot prepare")
		}
		return v, nil
	}
	ob := mustNew(t, o)
	ids := enqueueN(t, ob, 0, 3)
	startRun(t, ob)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := ob.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if st := ob.Stats(); st.Stuck != 1 || st.Pending != 0 {
		t.Fatalf("stats after Flush: %+v", st)
	}
	checkExactly(t, js, map[string]int{ids[0]: 0, ids[2]: 2})
}
