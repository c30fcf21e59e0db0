package inventory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/fsutil"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/wire"
)

// fakeCollector serves settable data per category.
type fakeCollector struct {
	mu    sync.Mutex
	data  map[string]map[string]any
	calls map[string]int
	hang  map[string]*blocker
}

func newFakeCollector() *fakeCollector {
	f := &fakeCollector{data: map[string]map[string]any{}, calls: map[string]int{}, hang: map[string]*blocker{}}
	for _, c := range wire.Categories {
		f.set(c, "v1")
	}
	return f
}

func (f *fakeCollector) set(cat, v string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data[cat] = map[string]any{"thing": []map[string]any{{"value": v}}}
}

func (f *fakeCollector) Name() string { return "fake" }

func (f *fakeCollector) CollectCategory(ctx context.Context, cat string) (map[string]any, error) {
	f.mu.Lock()
	f.calls[cat]++
	b := f.hang[cat]
	d := f.data[cat]
	f.mu.Unlock()
	if b != nil {
		b.wait() // ignores ctx, like a hung provider
	}
	return d, nil
}

func (f *fakeCollector) callCount(cat string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[cat]
}

// sink is a fake outbox.
type sink struct {
	mu   sync.Mutex
	got  []wire.InventoryReport
	fail error
}

func (s *sink) Enqueue(_ context.Context, r wire.InventoryReport) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.got = append(s.got, r)
	return nil
}

func (s *sink) setFail(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

// take returns and forgets what was enqueued, as "category" strings.
func (s *sink) take() ([]string, []wire.InventoryReport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cats []string
	for _, r := range s.got {
		cats = append(cats, r.Category)
	}
	reps := s.got
	s.got = nil
	return cats, reps
}

func (s *sink) count(cat string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.got {
		if r.Category == cat {
			n++
		}
	}
	return n
}

func quietLogger() *slogLogger {
	if os.Getenv("INVENTORY_TEST_LOG") != "" {
		return slog.Default()
	}
	return discardLogger()
}

func newTestReporter(t *testing.T, f Collector, s *sink, mod func(*Options)) *Reporter {
	t.Helper()
	o := Options{PcID: "pc-1", Collector: f, Enqueue: s.Enqueue, Interval: time.Hour, CheckInterval: time.Hour,
		Splay: -1, StartSplay: -1, CollectTimeout: 5 * time.Second, Logger: quietLogger()}
	if mod != nil {
		mod(&o)
	}
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReporterChangeOnly(t *testing.T) {
	f, s := newFakeCollector(), &sink{}
	r := newTestReporter(t, f, s, nil)

	r.runOnce(bg, true, true)
	cats, reps := s.take()
	if strings.Join(cats, ",") != "hw,os,sw,net" {
		t.Fatalf("start run sent %v", cats)
	}
	for _, rep := range reps {
		if rep.PcID != "pc-1" || rep.Collector != "fake" || rep.Hash == "" {
			t.Fatalf("bad report %+v", rep)
		}
	}
	r.runOnce(bg, false, false)
	if cats, _ := s.take(); len(cats) != 0 {
		t.Fatalf("check with nothing changed sent %v", cats)
	}
	f.set("sw", "v2")
	r.runOnce(bg, false, false)
	if cats, _ := s.take(); strings.Join(cats, ",") != "sw" {
		t.Fatalf("check after a change sent %v", cats)
	}
	r.runOnce(bg, false, false)
	if cats, _ := s.take(); len(cats) != 0 {
		t.Fatalf("the change was sent twice: %v", cats)
	}
	// Acks arriving change nothing about what is sent.
	for _, rep := range reps {
		r.Acked(rep)
	}
	r.runOnce(bg, false, false)
	if cats, _ := s.take(); len(cats) != 0 {
		t.Fatalf("after acks, check sent %v", cats)
	}
	// A change and back again: both states are sent.
	f.set("net", "v2")
	r.runOnce(bg, false, false)
	f.set("net", "v1")
	r.runOnce(bg, false, false)
	if cats, _ := s.take(); strings.Join(cats, ",") != "net,net" {
		t.Fatalf("flip and back sent %v", cats)
	}
	// A full run sends everything, changed or not.
	r.runOnce(bg, true, false)
	if cats, _ := s.take(); strings.Join(cats, ",") != "hw,os,sw,net" {
		t.Fatalf("full run sent %v", cats)
	}
}

func TestReporterEnqueueFailureRetried(t *testing.T) {
	f, s := newFakeCollector(), &sink{}
	r := newTestReporter(t, f, s, nil)
	s.setFail(errors.New("outbox: disk full"))
	r.runOnce(bg, true, true)
	s.setFail(nil)
	r.runOnce(bg, false, false)
	if cats, _ := s.take(); strings.Join(cats, ",") != "hw,os,sw,net" {
		t.Fatalf("after a failed enqueue the check sent %v", cats)
	}
}

func TestReporterStateFile(t *testing.T) {
	dir := natstest.TempDir(t)
	state := filepath.Join(dir, "inventory-state.json")
	f, s := newFakeCollector(), &sink{}
	r := newTestReporter(t, f, s, func(o *Options) { o.StateFile = state })
	r.runOnce(bg, true, true)
	_, reps := s.take()
	for _, rep := range reps {
		r.Acked(rep)
	}
	// An older ack (out of order) and one for another pc are ignored.
	old := reps[0]
	old.At = old.At.Add(-time.Hour)
	old.Hash = "0000"
	r.Acked(old)
	other := reps[1]
	other.PcID = "someone-else"
	other.Hash = "1111"
	r.Acked(other)
	got := r.AckedHashes()
	for _, rep := range reps {
		if got[rep.Category] != rep.Hash {
			t.Fatalf("acked %v, want the hashes of %v", got, reps)
		}
	}
	if _, err := os.Stat(state); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("stray files: %v", ents)
	}

	// Restart: the protocol default publishes everything on start.
	s2 := &sink{}
	r2 := newTestReporter(t, f, s2, func(o *Options) { o.StateFile = state })
	runUntil(t, r2, func() error {
		if n := s2.len(); n < 4 {
			return fmt.Errorf("%d sent", n)
		}
		return nil
	})
	if cats, _ := s2.take(); strings.Join(cats, ",") != "hw,os,sw,net" {
		t.Fatalf("restart sent %v", cats)
	}
	if got := r2.AckedHashes(); got["hw"] != reps[0].Hash {
		t.Fatalf("state not loaded: %v", got)
	}

	// With SkipAckedAtStart only what changed since the ack is sent.
	f.set("os", "v9")
	s3 := &sink{}
	r3 := newTestReporter(t, f, s3, func(o *Options) { o.StateFile = state; o.SkipAckedAtStart = true })
	runUntil(t, r3, func() error {
		if f.callCount("net") < 3 { // the start run has finished
			return errors.New("start run not done")
		}
		return nil
	})
	if cats, _ := s3.take(); strings.Join(cats, ",") != "os" {
		t.Fatalf("SkipAckedAtStart sent %v", cats)
	}

	// A corrupt state file is not fatal.
	if err := os.WriteFile(state, []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(state+".123"+fsutil.TempSuffix, []byte("crash leftover"), 0o600)
	s4 := &sink{}
	r4 := newTestReporter(t, f, s4, func(o *Options) { o.StateFile = state; o.SkipAckedAtStart = true })
	runUntil(t, r4, func() error {
		if n := s4.len(); n < 4 {
			return fmt.Errorf("%d sent", n)
		}
		return nil
	})
	if _, err := os.Stat(state + ".123" + fsutil.TempSuffix); !os.IsNotExist(err) {
		t.Error("stray tmp file not swept")
	}
}

// runUntil runs r until cond holds (polled), then stops it and checks Run
// returns promptly.
func runUntil(t *testing.T, r *Reporter, cond func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	natstest.CheckFor(t, 10*time.Second, 2*time.Millisecond, cond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func (s *sink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func TestReporterRunLoop(t *testing.T) {
	f, s := newFakeCollector(), &sink{}
	r := newTestReporter(t, f, s, func(o *Options) { o.CheckInterval = 5 * time.Millisecond })
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	natstest.CheckFor(t, 10*time.Second, time.Millisecond, func() error {
		if n := s.len(); n != 4 {
			return fmt.Errorf("%d sent at start", n)
		}
		return nil
	})
	if err := r.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Run = %v", err)
	}
	// Several checks pass with nothing changed: nothing more is sent.
	base := f.callCount("hw")
	natstest.CheckFor(t, 10*time.Second, time.Millisecond, func() error {
		if f.callCount("net") < base+5 {
			return errors.New("checks not yet run")
		}
		return nil
	})
	if n := s.len(); n != 4 {
		t.Fatalf("unchanged categories re-sent between full runs: %d reports", n)
	}
	// A change goes out at the next check.
	f.set("hw", "v2")
	natstest.CheckFor(t, 10*time.Second, time.Millisecond, func() error {
		if s.count("hw") != 2 {
			return fmt.Errorf("hw sent %d times", s.count("hw"))
		}
		return nil
	})
	if s.count("os") != 1 {
		t.Fatal("os re-sent")
	}
	// The interval changes live: a shorter one makes full runs happen.
	r.SetInterval(30 * time.Millisecond)
	if r.Interval() != 30*time.Millisecond {
		t.Fatal("Interval not updated")
	}
	natstest.CheckFor(t, 10*time.Second, time.Millisecond, func() error {
		if s.count("os") < 3 {
			return fmt.Errorf("os sent %d times", s.count("os"))
		}
		return nil
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestReporterHungCollector(t *testing.T) {
	f, s := newFakeCollector(), &sink{}
	b := newBlocker()
	defer close(b.release)
	f.hang["sw"] = b
	r := newTestReporter(t, f, s, func(o *Options) {
		o.CheckInterval = 5 * time.Millisecond
		o.CollectTimeout = 30 * time.Millisecond
	})
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	// The other categories are sent; sw never (its collector hangs).
	natstest.CheckFor(t, 10*time.Second, time.Millisecond, func() error {
		if s.count("net") != 1 || s.count("hw") != 1 || s.count("os") != 1 {
			return errors.New("other categories not sent")
		}
		return nil
	})
	// The reporter stays responsive while a collection hangs.
	start := time.Now()
	r.SetInterval(2 * time.Hour)
	r.Acked(wire.InventoryReport{PcID: "pc-1", Category: "hw", Hash: "x", At: time.Now()})
	if el := time.Since(start); el > time.Second {
		t.Fatalf("SetInterval/Acked blocked %v", el)
	}
	// Many checks later, the hung collector was entered once only.
	natstest.CheckFor(t, 10*time.Second, time.Millisecond, func() error {
		if f.callCount("net") < 5 {
			return errors.New("checks not yet run")
		}
		return nil
	})
	if n := f.callCount("sw"); n != 1 {
		t.Fatalf("hung collector called %d times, want 1", n)
	}
	if s.count("sw") != 0 {
		t.Fatal("sw sent")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return while a collector hangs")
	}
}

func TestReporterValidate(t *testing.T) {
	s := &sink{}
	if _, err := New(Options{PcID: "bad.id", Enqueue: s.Enqueue, Collector: newFakeCollector()}); err == nil {
		t.Error("invalid pc id accepted")
	}
	if _, err := New(Options{PcID: "pc", Collector: newFakeCollector()}); err == nil {
		t.Error("nil Enqueue accepted")
	}
	r, err := New(Options{PcID: "pc", Enqueue: s.Enqueue, Collector: newFakeCollector()})
	if err != nil {
		t.Fatal(err)
	}
	if r.Interval() != DefaultInterval || r.opts.CheckInterval != DefaultCheckInterval || r.opts.StartSplay != time.Minute {
		t.Errorf("defaults: %+v", r.opts)
	}
	r.mu.Lock()
	for range 100 {
		if sp := r.drawSplay(); sp < 0 || sp > 30*time.Minute {
			t.Fatalf("splay %v", sp)
		}
	}
	r.mu.Unlock()
	r.SetInterval(10 * time.Minute)
	r.mu.Lock()
	if sp := r.drawSplay(); sp > time.Minute {
		t.Errorf("default splay does not follow the interval: %v", sp)
	}
	r.mu.Unlock()
	r.SetInterval(0)
	if r.Interval() != DefaultInterval {
		t.Error("SetInterval(0) did not restore the default")
	}
}
