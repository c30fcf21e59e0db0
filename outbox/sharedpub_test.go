package outbox

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
)

// The outboxes draining over one connection share one publisher: one
// reply subscription for all of them, each ack reaching the outbox whose
// item it is, and the subscription gone with the last of them.
func TestOutboxesShareConnectionPublisher(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s.URL())
	js := natstest.JetStream(t, nc)
	base := nc.NumSubscriptions()

	var mu sync.Mutex
	acked := map[string]map[string]bool{"ob0": {}, "ob1": {}, "ob2": {}} // outbox name -> ids
	obs := make([]*Outbox[item], 3)
	stops := make([]func(), 3)
	ids := make([][]string, 3)
	for i := range obs {
		o := testOptions(natstest.TempDir(t), js)
		o.Name = fmt.Sprintf("ob%d", i)
		o.OnAck = func(id string, _ item) {
			mu.Lock()
			acked[o.Name][id] = true
			mu.Unlock()
		}
		obs[i] = mustNew(t, o)
		stops[i] = startRun(t, obs[i])
		ids[i] = enqueueN(t, obs[i], 100*i, 20)
	}
	for _, ob := range obs {
		natstest.CheckFor(t, 30*time.Second, 10*time.Millisecond, func() error {
			if p := ob.Stats().Pending; p != 0 {
				return fmt.Errorf("%d pending", p)
			}
			return nil
		})
	}
	mu.Lock()
	for i, ob := range obs {
		got := acked[ob.opts.Name]
		if len(got) != len(ids[i]) {
			t.Errorf("%s: %d acks, want %d", ob.opts.Name, len(got), len(ids[i]))
		}
		for _, id := range ids[i] {
			if !got[id] {
				t.Errorf("%s: item %s not acked to it", ob.opts.Name, id)
			}
		}
	}
	mu.Unlock()
	if n := nc.NumSubscriptions() - base; n != 1 {
		t.Fatalf("three outboxes on one connection hold %d subscriptions, want 1", n)
	}

	// One stops: the others still publish over the shared publisher.
	stops[0]()
	more := enqueueN(t, obs[1], 1000, 5)
	natstest.CheckFor(t, 30*time.Second, 10*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range more {
			if !acked["ob1"][id] {
				return fmt.Errorf("item %s not acked", id)
			}
		}
		return nil
	})
	stops[1]()
	stops[2]()
	if n := nc.NumSubscriptions() - base; n != 0 {
		t.Fatalf("%d subscriptions left after every outbox stopped", n)
	}
}
