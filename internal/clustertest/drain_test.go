package clustertest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/outbox"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// drainItems is the number of results the drain tests enqueue.
const drainItems = 4000

// TestDrainLeaderCrashClientOnLeader drains thousands of results from an
// outbox into an R3 RESULTS stream and crashes the stream's leader, the
// node the outbox is connected to, when a quarter of them are
// acknowledged: every result must end up in the stream exactly once. The
// connection runs through a proxy adding 10 ms each way, cut with the
// crash, so that many results are stored on a quorum while their acks are
// still on the way and are lost: the outbox re-sends them (after its ack
// timeout, from a survivor) and only the stream's duplicate window keeps
// them from being stored twice.
func TestDrainLeaderCrashClientOnLeader(t *testing.T) { drainThroughCrash(t, true, 5*time.Second) }

// TestDrainLeaderCrashClientOnSurvivor is TestDrainLeaderCrashClientOnLeader
// with the outbox connected straight to a node that survives: what it had
// sent on to the leader is lost with it, and only the ack timeout says so.
func TestDrainLeaderCrashClientOnSurvivor(t *testing.T) { drainThroughCrash(t, false, 5*time.Second) }

// TestDrainLeaderCrashHedged is TestDrainLeaderCrashClientOnSurvivor with
// an ack timeout of 10 minutes: what the crash swallowed must still arrive
// within the test's 40 s, re-sent because a copy of the oldest publish in
// flight (outbox.Options.HedgeAfter, 5 s) was acknowledged before it.
func TestDrainLeaderCrashHedged(t *testing.T) { drainThroughCrash(t, false, 10*time.Minute) }

func drainThroughCrash(t *testing.T, onLeader bool, ackTimeout time.Duration) {
	began := time.Now()
	c := natstest.RunCluster(t, 3)
	leader := c.WaitStreamLeader(subject.StreamResults, 10*time.Second)
	var proxy *natstest.Proxy
	urls := first(c.URLs(), (leader+1)%c.Size())
	if onLeader {
		proxy = natstest.NewProxy(t, c.Node(leader).Addr(), 10*time.Millisecond)
		urls = append([]string{proxy.URL()}, urls...)
	}
	nc := connect(t, urls)
	js := natstest.JetStream(t, nc)

	// The agent's results outbox, as agent/outboxes.go opens it, but with
	// a 5 s ack timeout instead of 30 s, so that what the crash swallowed
	// is re-sent within the test's time, and 256 publishes in flight
	// instead of 4096, so that the drain takes long enough for the crash
	// to land in its middle.
	ob, err := outbox.New(outbox.Options[wire.ExecResult]{
		Dir:        natstest.TempDir(t),
		Name:       "results",
		Subject:    func(r wire.ExecResult) (string, error) { return subject.Result(r.RequestID) },
		AckTimeout: ackTimeout,
		Window:     256,
		Logger:     testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ob.Close() })
	want := enqueueResults(t, ob, drainItems)
	t.Logf("cluster up and %d results enqueued in %v", drainItems, time.Since(began).Round(time.Millisecond))

	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	t.Cleanup(func() {
		cancel()
		<-runDone
	})
	ob.SetJetStream(js)
	go func() { runDone <- ob.Run(ctx) }()

	natstest.CheckFor(t, 30*time.Second, time.Millisecond, func() error {
		if p := ob.Stats().Pending; p > drainItems*3/4 {
			return fmt.Errorf("%d of %d pending", p, drainItems)
		}
		return nil
	})
	pendingAtCrash := ob.Stats().Pending
	crashed := time.Now()
	if proxy != nil {
		proxy.Pause() // the leader is gone: no reconnecting to it
		proxy.Cut()   // and the acks on their way are lost with it
	}
	c.Crash(leader)
	if pendingAtCrash == 0 {
		t.Fatal("the outbox drained before the crash: nothing was tested")
	}
	newLeader := c.WaitStreamLeader(subject.StreamResults, 30*time.Second)
	t.Logf("crashed %s with %d of %d pending; %s leads RESULTS after %v",
		c.Node(leader).Name(), pendingAtCrash, drainItems, c.Node(newLeader).Name(), time.Since(crashed).Round(time.Millisecond))
	natstest.CheckFor(t, 40*time.Second, 20*time.Millisecond, func() error {
		if s := ob.Stats(); s.Pending > 0 || s.Stuck > 0 {
			return fmt.Errorf("%d pending, %d stuck", s.Pending, s.Stuck)
		}
		return nil
	})
	t.Logf("drained %v after the crash", time.Since(crashed).Round(time.Millisecond))
	if s := ob.Stats(); s.Stuck != 0 || s.Corrupt != 0 {
		t.Fatalf("outbox: %d stuck, %d corrupt", s.Stuck, s.Corrupt)
	}
	checkStream(t, js, want)
	if t.Failed() {
		return
	}

	// Back with its store, the crashed node catches up and holds the same.
	c.Start(leader)
	c.WaitStreamCurrent(subject.StreamResults, 30*time.Second)
	checkStream(t, js, want)
}

// enqueueResults stores n results with distinct request and result ids in
// ob, from several goroutines (the outbox commits them in groups), and
// returns their result_ids by outbox item id.
func enqueueResults(t *testing.T, ob *outbox.Outbox[wire.ExecResult], n int) map[string]string {
	t.Helper()
	const workers = 32
	var mu sync.Mutex
	want := make(map[string]string, n)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				now := time.Now().UTC()
				r := wire.ExecResult{ResultID: uuid.NewString(), RequestID: uuid.NewString(), PcID: "pc-drain",
					ManifestID: wire.AdhocID, Stdout: fmt.Sprintf("item %d\n", i), StartedAt: now, FinishedAt: now}
				id, err := ob.Enqueue(context.Background(), r)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				want[id] = r.ResultID
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return want
}

// checkStream reads all of RESULTS and checks that it holds exactly the
// results of want (Nats-Msg-Id → result_id), each once.
func checkStream(t *testing.T, js jetstream.JetStream, want map[string]string) {
	t.Helper()
	var msgs []stored
	var total uint64
	// Reading is retried whole while the cluster settles (a consumer or
	// meta leader that moved answers "no responders" for a moment).
	natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() (err error) {
		msgs, total, err = readResults(js)
		return err
	})
	if total != uint64(len(want)) {
		t.Errorf("RESULTS holds %d messages, want %d", total, len(want))
	}
	seen := map[string]bool{}
	results := map[string]bool{}
	for _, m := range msgs {
		id, r := m.msgID, m.result
		switch {
		case seen[id]:
			t.Errorf("Nats-Msg-Id %s stored twice", id)
		case want[id] == "":
			t.Errorf("Nats-Msg-Id %s was never enqueued", id)
		case want[id] != r.ResultID:
			t.Errorf("Nats-Msg-Id %s carries result_id %s, want %s", id, r.ResultID, want[id])
		}
		if results[r.ResultID] {
			t.Errorf("result_id %s stored twice", r.ResultID)
		}
		seen[id], results[r.ResultID] = true, true
	}
	lost := 0
	for id := range want {
		if !seen[id] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d results lost", lost, len(want))
	}
}

// readResults returns every message of RESULTS, read with an ordered
// consumer, and the stream's message count.
func readResults(js jetstream.JetStream) ([]stored, uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, subject.StreamResults)
	if err != nil {
		return nil, 0, err
	}
	total := st.CachedInfo().State.Msgs
	cons, err := js.OrderedConsumer(ctx, subject.StreamResults, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, 0, err
	}
	out := make([]stored, 0, total)
	for uint64(len(out)) < total {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, 0, err
		}
		n := len(out)
		for m := range batch.Messages() {
			r, err := wire.DecodeExecResult(m.Data())
			if err != nil {
				return nil, 0, fmt.Errorf("message %d: %w", len(out)+1, err)
			}
			out = append(out, stored{msgID: m.Headers().Get(jetstream.MsgIDHeader), result: *r})
		}
		if err := batch.Error(); err != nil {
			return nil, 0, err
		}
		if len(out) == n {
			return nil, 0, fmt.Errorf("read %d of %d messages, then nothing", n, total)
		}
	}
	return out, total, nil
}
