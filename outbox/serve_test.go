package outbox

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
)

// serveActive reports whether a Serve's drain goroutine runs.
func (o *Outbox[T]) serveActive() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.serve != nil && o.serve.active
}

// committerRunning reports whether the committer goroutine runs.
func (o *Outbox[T]) committerRunning() bool {
	o.cmu.Lock()
	defer o.cmu.Unlock()
	return o.committing
}

// startServe serves ob until the returned stop is called (also at cleanup).
func startServe[T any](t testing.TB, ob *Outbox[T]) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	wait, err := ob.Serve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		done := make(chan struct{})
		go func() { wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("Serve's wait did not return")
		}
	}
	t.Cleanup(stop)
	return stop
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	natstest.CheckFor(t, 30*time.Second, 5*time.Millisecond, func() error {
		if !cond() {
			return errors.New(what)
		}
		return nil
	})
}

// An idle served outbox holds no goroutine and no publisher: the drain
// goroutine ends IdleLinger after the last ack (giving up the shared
// publisher's reply subscription), the committer once the queue is empty;
// the next Enqueue starts both again and is delivered.
func TestServeIdleHoldsNothing(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s.URL())
	js := natstest.JetStream(t, nc)
	if _, err := streamCount(js, subject.StreamObs); err != nil { // sets up the request subscription
		t.Fatal(err)
	}
	base := nc.NumSubscriptions()
	o := testOptions(natstest.TempDir(t), js)
	o.IdleLinger = 50 * time.Millisecond
	ob := mustNew(t, o)
	if ob.committerRunning() {
		t.Fatal("a committer runs before the first Enqueue")
	}
	startServe(t, ob)
	ids := enqueueN(t, ob, 0, 50)
	waitDelivered(t, ob, js, 50)
	waitFor(t, "the drain goroutine still runs", func() bool { return !ob.serveActive() })
	waitFor(t, "the committer still runs", func() bool { return !ob.committerRunning() })
	if n := nc.NumSubscriptions(); n != base {
		t.Errorf("%d subscriptions on the connection once idle, want %d (the publisher's reply subscription kept)", n, base)
	}
	started := ob.drains.Load()
	loops := ob.loops.Load()

	// Idle: nothing runs, nothing wakes.
	time.Sleep(200 * time.Millisecond) // a span with nothing to wait for: proves the absence of wakeups
	if l := ob.loops.Load(); l != loops {
		t.Errorf("drain loop ran %d times while idle", l-loops)
	}

	ids = append(ids, enqueueN(t, ob, 50, 10)...)
	waitDelivered(t, ob, js, 60)
	checkExactly(t, js, idMap(ids, 0))
	if n := ob.drains.Load(); n != started+1 {
		t.Errorf("%d drain goroutines started for the second burst, want 1", n-started)
	}
	waitFor(t, "the drain goroutine still runs after the second burst", func() bool { return !ob.serveActive() })
}

// Items found at open are drained by Serve without an Enqueue; items held
// while the server is down keep the drain goroutine (it does not end with
// items pending) and arrive once it is back.
func TestServePendingAtOpenAndBrokerDown(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	dir := natstest.TempDir(t)
	ids := enqueueOffline(t, dir, 30)
	o := testOptions(dir, js)
	o.IdleLinger = 20 * time.Millisecond
	o.BackoffBase, o.MaxBackoff = 10*time.Millisecond, 100*time.Millisecond
	ob := mustNew(t, o)
	startServe(t, ob)
	waitDelivered(t, ob, js, 30)

	s.Shutdown()
	ids = append(ids, enqueueN(t, ob, 30, 20)...)
	deadline := time.Now().Add(300 * time.Millisecond) // many lingers
	for time.Now().Before(deadline) {
		if !ob.serveActive() {
			t.Fatal("the drain goroutine ended with items pending")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Start()
	waitDelivered(t, ob, js, 50)
	checkExactly(t, js, idMap(ids, 0))
	waitFor(t, "the drain goroutine still runs", func() bool { return !ob.serveActive() })
}

// Serve excludes Run and a second Serve, ends with ctx (idle or busy) and
// with Close, and a Run may follow it.
func TestServeLifecycle(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	ob := mustNew(t, testOptions(natstest.TempDir(t), js))
	stop := startServe(t, ob)
	if _, err := ob.Serve(context.Background()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Serve: %v, want ErrRunning", err)
	}
	if err := ob.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Errorf("Run during Serve: %v, want ErrRunning", err)
	}
	enqueueN(t, ob, 0, 5)
	waitDelivered(t, ob, js, 5)
	stop() // the drain goroutine lingers: it stops with ctx

	stopRun := startRun(t, ob)
	enqueueN(t, ob, 5, 5)
	waitDelivered(t, ob, js, 10)
	stopRun()

	// Close while serving, with the drain goroutine idle and gone.
	o := testOptions(natstest.TempDir(t), js)
	o.IdleLinger = time.Millisecond
	ob2 := mustNew(t, o)
	wait, err := ob2.Serve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the drain goroutine still runs", func() bool { return !ob2.serveActive() })
	if err := ob2.Close(); err != nil {
		t.Fatal(err)
	}
	wait() // returns: Close ended the Serve
	if _, err := ob2.Serve(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Serve after Close: %v, want ErrClosed", err)
	}

	// A ctx already ended: Serve ends at once.
	ob3 := mustNew(t, testOptions(natstest.TempDir(t), js))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	wait, err = ob3.Serve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wait()
	startRun(t, ob3) // the Serve released the outbox
	enqueueN(t, ob3, 0, 1)
	waitDelivered(t, ob3, js, 11)
}
