package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

func TestDeliverExactlyOnceInOrder(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	var mu sync.Mutex
	acked := map[string]int{}
	o := testOptions(natstest.TempDir(t), js)
	o.OnAck = func(id string, v item) {
		mu.Lock()
		acked[id] = v.Seq
		mu.Unlock()
	}
	ob := mustNew(t, o)
	ids := enqueueN(t, ob, 0, 500)
	if st := ob.Stats(); st.Pending != 500 || st.OldestAge < 0 {
		t.Fatalf("stats before Run: %+v", st)
	}
	startRun(t, ob)
	waitDelivered(t, ob, js, 500)
	seqs := streamSeqs(t, js)
	for i, s := range seqs {
		if s != i {
			t.Fatalf("stream position %d holds seq %d: not FIFO", i, s)
		}
	}
	ids = append(ids, enqueueN(t, ob, 500, 500)...)
	waitDelivered(t, ob, js, 1000)
	want := idMap(ids, 0)
	checkExactly(t, js, want)
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(acked) != fmt.Sprint(want) {
		t.Fatalf("OnAck saw %d items, want %d", len(acked), len(want))
	}
	if st := ob.Stats(); st.Pending != 0 || st.OldestAge != 0 || st.Stuck != 0 || st.Corrupt != 0 {
		t.Fatalf("stats after: %+v", st)
	}
}

func TestRestartWithPending(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	dir := natstest.TempDir(t)
	ids := enqueueOffline(t, dir, 300)
	ob := mustNew(t, testOptions(dir, js))
	if p := ob.Stats().Pending; p != 300 {
		t.Fatalf("pending after reopen = %d, want 300", p)
	}
	startRun(t, ob)
	waitDelivered(t, ob, js, 300)
	checkExactly(t, js, idMap(ids, 0))
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopen: nothing left, and the finished segments are gone.
	ob = mustNew(t, testOptions(dir, js))
	if p := ob.Stats().Pending; p != 0 {
		t.Fatalf("pending after delivered+reopen = %d", p)
	}
	ents, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
	if len(ents) != 0 {
		t.Fatalf("finished segments left: %v", ents)
	}
}

func TestBrokerDownThenBack(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	o := testOptions(natstest.TempDir(t), js)
	o.BackoffBase, o.MaxBackoff = 10*time.Millisecond, 100*time.Millisecond
	o.MaxAttempts = 2 // a transport failure counted as an item failure would show up as stuck
	ob := mustNew(t, o)
	startRun(t, ob)
	ids := enqueueN(t, ob, 0, 200)
	waitDelivered(t, ob, js, 200)

	s.Shutdown()
	ids = append(ids, enqueueN(t, ob, 200, 300)...)
	if p := ob.Stats().Pending; p != 300 {
		t.Fatalf("pending while broker down = %d, want 300", p)
	}
	s.Start()
	waitDelivered(t, ob, js, 500)
	checkExactly(t, js, idMap(ids, 0))
	if st := ob.Stats(); st.Stuck != 0 {
		t.Fatalf("transport failures moved items to stuck: %+v", st)
	}
}

func TestProxyPauseAndCutMidDrain(t *testing.T) {
	s := natstest.RunServer(t)
	p := natstest.NewProxy(t, s.Addr(), 5*time.Millisecond)
	js := natstest.JetStream(t, natstest.Connect(t, p.URL()))
	check := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	o := testOptions(natstest.TempDir(t), js)
	o.BackoffBase, o.MaxBackoff, o.MaxAttempts = 5*time.Millisecond, 50*time.Millisecond, 2
	o.Window = 512 // slow the drain down so the cuts land mid-flight
	o.AckTimeout = 2 * time.Second
	ob := mustNew(t, o)
	const n = 4000
	ids := enqueueConcurrent(t, ob, 0, n, 8)
	startRun(t, ob)
	// Cut three times while thousands are in flight.
	for cut := 1; cut <= 3; cut++ {
		natstest.CheckFor(t, 30*time.Second, time.Millisecond, func() error {
			if c, _ := streamCount(check, "OBS_EVENTS"); c < uint64(cut*n/5) {
				return fmt.Errorf("only %d delivered", c)
			}
			return nil
		})
		p.Cut()
		if c, _ := streamCount(check, "OBS_EVENTS"); cut == 1 && c >= n {
			t.Fatalf("first cut after everything was delivered (%d): nothing in flight", c)
		}
	}
	// Dead broker: refuse connections, enqueue more, then come back.
	p.Pause()
	p.Cut()
	ids = append(ids, enqueueN(t, ob, n, 100)...)
	p.Resume()
	waitDelivered(t, ob, check, n+100)
	checkExactly(t, check, idMap(ids, 0))
	if st := ob.Stats(); st.Stuck != 0 {
		t.Fatalf("stuck after cuts: %+v", st)
	}
}

// TestReconnectRepublishesInflight: the PubAcks of items in flight when
// the connection drops are lost with it; the items are published again as
// soon as the connection is back, not after AckTimeout (here a minute),
// and stored once (the server drops the duplicates by Nats-Msg-Id).
func TestReconnectRepublishesInflight(t *testing.T) {
	s := natstest.RunServer(t)
	p := natstest.NewProxy(t, s.Addr(), 300*time.Millisecond)
	js := natstest.JetStream(t, natstest.Connect(t, p.URL()))
	check := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	o := testOptions(natstest.TempDir(t), js)
	o.AckTimeout = time.Minute
	ob := mustNew(t, o)
	ids := enqueueN(t, ob, 0, 50)
	startRun(t, ob)
	// Stored, with the acks still in the proxy's 300 ms: cut them off.
	natstest.CheckFor(t, 30*time.Second, time.Millisecond, func() error {
		if c, _ := streamCount(check, "OBS_EVENTS"); c == 0 {
			return errors.New("nothing stored yet")
		}
		return nil
	})
	p.Cut()
	if st := ob.Stats(); st.Pending == 0 {
		t.Fatal("every ack arrived before the cut: nothing was in flight")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ob.Flush(ctx); err != nil {
		t.Fatalf("flush after the reconnect: %v (stats %+v): in-flight items waited for AckTimeout", err, ob.Stats())
	}
	checkExactly(t, check, idMap(ids, 0))
}

func enqueueConcurrent(t testing.TB, ob *Outbox[item], from, n, producers int) []string {
	t.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < n; i += producers {
				id, err := ob.Enqueue(context.Background(), item{Seq: from + i})
				if err != nil {
					errs <- err
					return
				}
				ids[i] = id
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return ids
}

func TestConcurrentProducersWhileDraining(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	ob := mustNew(t, testOptions(natstest.TempDir(t), js))
	startRun(t, ob)
	ids := enqueueConcurrent(t, ob, 0, 3200, 16)
	waitDelivered(t, ob, js, 3200)
	checkExactly(t, js, idMap(ids, 0))
}

func TestSetJetStreamLater(t *testing.T) {
	ob := mustNew(t, testOptions(natstest.TempDir(t), nil))
	startRun(t, ob)
	ids := enqueueN(t, ob, 0, 50)
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	ob.SetJetStream(js)
	waitDelivered(t, ob, js, 50)
	checkExactly(t, js, idMap(ids, 0))
}

func TestCorruptAndTruncated(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	dir := natstest.TempDir(t)
	ob, err := New(testOptions(dir, nil))
	if err != nil {
		t.Fatal(err)
	}
	ids := enqueueN(t, ob, 0, 10)
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	if len(segs) != 1 {
		t.Fatalf("segments: %v", segs)
	}
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	// Records are the same size: find record 3 and garble a data byte;
	// cut the last record in half.
	recLen := (len(b) - segHeaderLen) / 10
	b[segHeaderLen+3*recLen+recLen-2] ^= 0xff
	b = b[:len(b)-recLen/2]
	if err := os.WriteFile(segs[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	// A legacy file that is not JSON, and stray tmp files.
	if err := os.WriteFile(filepath.Join(dir, "broken.json"), []byte(`{"seq": 1`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "x.tmp"), filepath.Join(dir, "stuck", "y.json.123.tmp")} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ob = mustNew(t, testOptions(dir, js))
	st := ob.Stats()
	if st.Pending != 8 || st.Corrupt != 3 {
		t.Fatalf("stats after reopen: %+v, want 8 pending, 3 corrupt", st)
	}
	for _, p := range []string{filepath.Join(dir, "x.tmp"), filepath.Join(dir, "stuck", "y.json.123.tmp")} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("stray tmp %s not swept: %v", p, err)
		}
	}
	corrupt, _ := os.ReadDir(filepath.Join(dir, "corrupt"))
	if len(corrupt) != 3 {
		t.Fatalf("corrupt/ holds %d files, want 3", len(corrupt))
	}
	startRun(t, ob)
	waitDelivered(t, ob, js, 8)
	want := idMap(ids, 0)
	delete(want, ids[3])
	delete(want, ids[9])
	checkExactly(t, js, want)
}

func TestCorruptErrorUnwraps(t *testing.T) {
	err := error(&CorruptError{Path: "p", Err: errChecksum})
	if !errors.Is(err, ErrCorrupt) || !errors.Is(err, errChecksum) {
		t.Fatal("CorruptError does not unwrap")
	}
	if !strings.HasPrefix(err.Error(), "outbox: ") {
		t.Fatal(err)
	}
}

func TestLegacyFiles(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	dir := natstest.TempDir(t)
	for i, name := range []string{"legacy-a", "legacy-b"} {
		b, _ := json.Marshal(item{Seq: 100 + i})
		if err := os.WriteFile(filepath.Join(dir, name+".json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ob := mustNew(t, testOptions(dir, js))
	if p := ob.Stats().Pending; p != 2 {
		t.Fatalf("pending = %d, want 2", p)
	}
	startRun(t, ob)
	ids := enqueueN(t, ob, 0, 5)
	waitDelivered(t, ob, js, 7)
	want := idMap(ids, 0)
	want["legacy-a"], want["legacy-b"] = 100, 101
	checkExactly(t, js, want)
	left, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(left) != 0 {
		t.Fatalf("acked legacy files left: %v", left)
	}
}

func TestStuckAfterMaxAttempts(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	dir := natstest.TempDir(t)
	o := testOptions(dir, js)
	o.BackoffBase, o.MaxBackoff = time.Millisecond, 8*time.Millisecond
	var mu sync.Mutex
	attempts := map[int]int{}
	o.Prepare = func(_ context.Context, _ string, v item) (item, error) {
		mu.Lock()
		defer mu.Unlock()
		attempts[v.Seq]++
		if v.Seq%2 == 0 {
			return v, errors.New("cannot prepare")
		}
		v.Pad = "prepared"
		return v, nil
	}
	ob := mustNew(t, o)
	ids := enqueueN(t, ob, 0, 10)
	startRun(t, ob)
	natstest.CheckFor(t, 30*time.Second, 5*time.Millisecond, func() error {
		if st := ob.Stats(); st.Stuck != 5 || st.Pending != 0 {
			return fmt.Errorf("stats %+v", st)
		}
		return nil
	})
	want := map[string]int{}
	for i, id := range ids {
		if i%2 == 1 {
			want[id] = i
		}
	}
	checkExactly(t, js, want)
	msgs := streamMsgs(t, js, "OBS_EVENTS")
	for id := range want {
		var v item
		_ = json.Unmarshal(msgs[id], &v)
		if v.Pad != "prepared" {
			t.Fatalf("published item not prepared: %s", msgs[id])
		}
	}
	mu.Lock()
	for i := 0; i < 10; i += 2 {
		if attempts[i] != DefaultMaxAttempts {
			t.Errorf("item %d: %d attempts, want %d", i, attempts[i], DefaultMaxAttempts)
		}
	}
	mu.Unlock()
	// Stuck items are kept as <id>.json (the legacy format): moving one
	// back re-queues it.
	for i := 0; i < 10; i += 2 {
		b, err := os.ReadFile(filepath.Join(dir, "stuck", ids[i]+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var v item
		if err := json.Unmarshal(b, &v); err != nil || v.Seq != i {
			t.Fatalf("stuck file %s: %s (%v)", ids[i], b, err)
		}
	}
}

func TestItemFailureDoesNotBlockOthers(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	o := testOptions(natstest.TempDir(t), js)
	ob := mustNew(t, o)
	// No stream captures this subject: the server has no responder.
	if _, err := ob.Enqueue(context.Background(), item{Seq: -1, Sub: "nostream.x"}); err != nil {
		t.Fatal(err)
	}
	ids := enqueueN(t, ob, 0, 20)
	startRun(t, ob)
	natstest.CheckFor(t, 30*time.Second, 5*time.Millisecond, func() error {
		n, err := streamCount(js, "OBS_EVENTS")
		if err != nil || n != 20 {
			return fmt.Errorf("delivered %d (%v)", n, err)
		}
		return nil
	})
	checkExactly(t, js, idMap(ids, 0))
	if st := ob.Stats(); st.Pending != 1 || st.Stuck != 0 {
		t.Fatalf("stats %+v: the failing item must stay pending", st)
	}
}

func TestRefusedAtEnqueue(t *testing.T) {
	dir := natstest.TempDir(t)
	o := testOptions(dir, nil)
	o.MaxPayload = 1024
	o.Subject = func(v item) (string, error) {
		switch v.Sub {
		case "fail":
			return "", errors.New("no pc id")
		case "":
			return "obs.pc1", nil
		}
		return v.Sub, nil
	}
	ob := mustNew(t, o)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		v    item
		want error
	}{
		{"subject func fails", item{Sub: "fail"}, ErrSubject},
		{"empty token", item{Sub: "obs..x"}, ErrSubject},
		{"wildcard", item{Sub: "obs.>"}, ErrSubject},
		{"space", item{Sub: "obs.a b"}, ErrSubject},
		{"too large", item{Pad: strings.Repeat("x", 1024)}, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ob.Enqueue(ctx, tc.v)
			if !errors.Is(err, tc.want) || !strings.HasPrefix(err.Error(), "outbox: ") {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := ob.Enqueue(ctx, item{Pad: strings.Repeat("x", 900)}); err != nil {
		t.Fatalf("item under the limit: %v", err)
	}
	if p := ob.Stats().Pending; p != 1 {
		t.Fatalf("pending = %d, want 1 (refused items stored?)", p)
	}
}

func TestCloseTwice(t *testing.T) {
	ob, err := New(testOptions(natstest.TempDir(t), nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ob.Close(); !errors.Is(err, net.ErrClosed) || !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := ob.Enqueue(context.Background(), item{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Enqueue after Close: %v", err)
	}
	if err := ob.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close: %v", err)
	}
}

func TestCloseStopsRun(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	ob, err := New(testOptions(natstest.TempDir(t), js))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ob.Run(context.Background()) }()
	enqueueN(t, ob, 0, 100)
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after Close returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Close")
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options[item]{
		{Subject: itemSubject},
		{Dir: "x"},
		{Dir: "x", Subject: itemSubject, BackoffBase: time.Minute, MaxBackoff: time.Second},
		{Dir: "x", Subject: itemSubject, Window: -1},
	} {
		if _, err := New(o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("New(%+v): %v, want ErrInvalidOptions", o, err)
		}
	}
}

// TestDiskFullFault injects ENOSPC (after a partial write) into segment
// appends: Enqueue fails cleanly with an error wrapping ENOSPC, the partial
// record is never published, and later items go through.
func TestDiskFullFault(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	dir := natstest.TempDir(t)
	o := testOptions(dir, nil)
	var mu sync.Mutex
	full := false
	o.writeFile = func(f *os.File, b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if full {
			n, _ := f.Write(b[:len(b)/2])
			return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
		}
		return f.Write(b)
	}
	ob, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ids := enqueueN(t, ob, 0, 5)
	mu.Lock()
	full = true
	mu.Unlock()
	for i := 0; i < 3; i++ {
		_, err := ob.Enqueue(context.Background(), item{Seq: 1000 + i})
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Enqueue on a full disk: %v, want ENOSPC", err)
		}
	}
	mu.Lock()
	full = false
	mu.Unlock()
	ids = append(ids, enqueueN(t, ob, 5, 5)...)
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
	ob = mustNew(t, testOptions(dir, js))
	startRun(t, ob)
	waitDelivered(t, ob, js, 10)
	checkExactly(t, js, idMap(ids, 0))
}

func TestIdleCostsNothing(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s.URL())
	js := natstest.JetStream(t, nc)
	dir := natstest.TempDir(t)
	ob := mustNew(t, testOptions(dir, js))
	startRun(t, ob)
	enqueueN(t, ob, 0, 10)
	waitDelivered(t, ob, js, 10)
	// Let the last acks settle: the loop count stops moving.
	var loops int64
	natstest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if l := ob.loops.Load(); l != loops {
			loops = l
			return errors.New("still busy")
		}
		return nil
	})
	out := nc.Stats().OutMsgs
	info := dirState(t, dir)
	// An observation window, not a wait for a condition.
	<-time.After(500 * time.Millisecond)
	if l := ob.loops.Load(); l != loops {
		t.Fatalf("idle drain loop ran %d times", l-loops)
	}
	if o := nc.Stats().OutMsgs; o != out {
		t.Fatalf("idle outbox published %d messages", o-out)
	}
	if got := dirState(t, dir); got != info {
		t.Fatalf("idle outbox touched files:\n%s\n%s", info, got)
	}
}

func dirState(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %d %d\n", p, fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestNoStreamNeverStuck: an item whose subject no stream captures (streams
// not provisioned yet) backs off far past MaxAttempts without going to
// stuck/, and is delivered once a stream for it exists.
func TestNoStreamNeverStuck(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	o := testOptions(natstest.TempDir(t), js)
	o.MaxAttempts, o.BackoffBase, o.MaxBackoff = 2, time.Millisecond, 5*time.Millisecond
	ob := mustNew(t, o)
	if _, err := ob.Enqueue(context.Background(), item{Seq: 7, Sub: "later.x"}); err != nil {
		t.Fatal(err)
	}
	startRun(t, ob)
	start := ob.loops.Load()
	natstest.CheckFor(t, 30*time.Second, 5*time.Millisecond, func() error {
		if n := ob.loops.Load() - start; n < 8 {
			return fmt.Errorf("%d drain passes", n)
		}
		return nil
	})
	if st := ob.Stats(); st.Pending != 1 || st.Stuck != 0 {
		t.Fatalf("stats %+v after many failed attempts: want it pending, not stuck", st)
	}
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "LATER", Subjects: []string{"later.>"}}); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 30*time.Second, 5*time.Millisecond, func() error {
		if n, err := streamCount(js, "LATER"); err != nil || n != 1 {
			return fmt.Errorf("delivered %d (%v)", n, err)
		}
		return nil
	})
}

// TestNoStreamProbes: items that find no stream answering (none
// provisioned yet, or one electing a leader) are held, and one of them at
// a time probes, not each on its own backoff: 100 held items with a 100 ms
// probe cap make about 10 publishes a second, where per-item retries made
// 1,000. The first probe acknowledged releases every held item at once.
func TestNoStreamProbes(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	o := testOptions(natstest.TempDir(t), js)
	o.MaxAttempts, o.BackoffBase, o.MaxBackoff = 2, 20*time.Millisecond, 100*time.Millisecond
	ob := mustNew(t, o)
	const n = 100
	for i := range n {
		if _, err := ob.Enqueue(context.Background(), item{Seq: i, Sub: "later.x"}); err != nil {
			t.Fatal(err)
		}
	}
	inMsgs := func() int64 {
		v, err := s.NATS().Varz(nil)
		if err != nil {
			t.Fatal(err)
		}
		return v.InMsgs
	}
	base := inMsgs()
	startRun(t, ob)
	// Every item is tried once (nats.go sends a publish that finds no
	// responders three times: its own retries), then held.
	natstest.CheckFor(t, 30*time.Second, 5*time.Millisecond, func() error {
		if d := inMsgs() - base; d < 3*n {
			return fmt.Errorf("%d publishes", d)
		}
		return nil
	})
	// 20 more publishes take 20 probes, at least 20 ms apart (the lower
	// bound holds on a loaded machine; per-item retries take a few ms).
	from, began := inMsgs(), time.Now()
	natstest.CheckFor(t, 30*time.Second, 5*time.Millisecond, func() error {
		if d := inMsgs() - from; d < 20 {
			return fmt.Errorf("%d publishes since", d)
		}
		return nil
	})
	if took := time.Since(began); took < 400*time.Millisecond {
		t.Fatalf("20 publishes in %v while no stream answers: held items are retried each on its own", took)
	}
	if st := ob.Stats(); st.Pending != n || st.Stuck != 0 {
		t.Fatalf("stats %+v: held items must stay pending, never stuck", st)
	}
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "LATER", Subjects: []string{"later.>"}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ob.Flush(ctx); err != nil {
		t.Fatalf("flush: %v (stats %+v)", err, ob.Stats())
	}
	if c, err := streamCount(js, "LATER"); err != nil || c != n {
		t.Fatalf("delivered %d (%v), want %d", c, err, n)
	}
	if st := ob.Stats(); st.Pending != 0 || st.Stuck != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestSecondOpenLocked: a directory open in one Outbox is refused to a
// second one (same process here; the lock is per open file) until Close.
func TestSecondOpenLocked(t *testing.T) {
	dir := natstest.TempDir(t)
	ob := mustNew(t, testOptions(dir, nil))
	if _, err := New(testOptions(dir, nil)); !errors.Is(err, ErrLocked) {
		t.Fatalf("second New on an open directory: %v, want ErrLocked", err)
	}
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
	ob2, err := New(testOptions(dir, nil))
	if err != nil {
		t.Fatalf("New after Close: %v", err)
	}
	ob2.Close()
}
