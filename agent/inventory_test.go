package agent_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// fakeCollector returns data that a test can change, or hangs.
type fakeCollector struct {
	mu    sync.Mutex
	data  map[string]string // category → value
	hang  bool
	calls int
}

func (f *fakeCollector) Name() string { return "fake" }

func (f *fakeCollector) CollectCategory(ctx context.Context, cat string) (map[string]any, error) {
	f.mu.Lock()
	f.calls++
	hang, v := f.hang, f.data[cat]
	f.mu.Unlock()
	if hang {
		select {} // a hung provider ignores ctx
	}
	return map[string]any{"Fake": []any{map[string]any{"value": v}}}, nil
}

func (f *fakeCollector) set(cat, v string) {
	f.mu.Lock()
	f.data[cat] = v
	f.mu.Unlock()
}

// inventoryCounts returns the number of reports stored per category for pc.
func (e *env) inventoryCounts(pc string) map[string]uint64 {
	ctx := context.Background()
	s, err := e.js.Stream(ctx, subject.StreamInventory)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("inventory."+pc+".>"))
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]uint64{}
	for subj, n := range info.State.Subjects {
		out[subj[len("inventory."+pc+"."):]] = n
	}
	return out
}

func TestInventoryChangeOnly(t *testing.T) {
	e := newEnv(t)
	fc := &fakeCollector{data: map[string]string{"hw": "a", "os": "a", "sw": "a", "net": "a"}}
	e.start("pc-inv", "", func(o *agent.Options) {
		o.DisableInventory = false
		o.InventoryCollector = fc
		o.InventoryCheckInterval = 50 * time.Millisecond
		o.InventoryStartSplay = -1
	})
	want := func(w map[string]uint64) {
		t.Helper()
		natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
			got := e.inventoryCounts("pc-inv")
			for k, n := range w {
				if got[k] != n {
					return fmt.Errorf("reports %v, want %v", got, w)
				}
			}
			return nil
		})
	}
	// Published at start, all four.
	want(map[string]uint64{"hw": 1, "os": 1, "sw": 1, "net": 1})
	// Many change checks later, nothing unchanged is re-sent...
	fc.mu.Lock()
	calls := fc.calls
	fc.mu.Unlock()
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		if fc.calls < calls+20 {
			return fmt.Errorf("%d collections", fc.calls-calls)
		}
		return nil
	})
	want(map[string]uint64{"hw": 1, "os": 1, "sw": 1, "net": 1})
	// ...and a change is sent at the next check, alone.
	fc.set("sw", "b")
	want(map[string]uint64{"hw": 1, "os": 1, "sw": 2, "net": 1})
	s, _ := e.js.Stream(context.Background(), subject.StreamInventory)
	m, err := s.GetLastMsgForSubject(context.Background(), "inventory.pc-inv.sw")
	if err != nil {
		t.Fatal(err)
	}
	r, err := wire.DecodeInventoryReport(m.Data)
	if err != nil || r.Collector != "fake" || r.PcID != "pc-inv" || r.Hash == "" {
		t.Fatalf("report %+v (err %v)", r, err)
	}
	if h, _ := wire.HashData(r.Data); h != r.Hash {
		t.Fatalf("hash %s does not match data (%s)", r.Hash, h)
	}
}

func TestInventoryHungCollectorKeepsAgentResponsive(t *testing.T) {
	e := newEnv(t)
	fc := &fakeCollector{data: map[string]string{}, hang: true}
	e.start("pc-hang", "", func(o *agent.Options) {
		o.DisableInventory = false
		o.InventoryCollector = fc
		o.InventoryCheckInterval = 50 * time.Millisecond
		o.InventoryStartSplay = -1
	})
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		if fc.calls == 0 {
			return fmt.Errorf("collector not called yet")
		}
		return nil
	})
	ping, _ := subject.Ping("pc-hang")
	if _, err := e.nc.Request(ping, nil, 5*time.Second); err != nil {
		t.Fatalf("ping while the collector hangs: %v", err)
	}
	c := cmd("echo still-here")
	e.publish(pcSubject("pc-hang"), c)
	if r := e.waitResult(c.RequestID, 20*time.Second); r.Stdout != "still-here"+nl {
		t.Fatalf("%+v", r)
	}
}
