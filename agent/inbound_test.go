package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kanade/kanade-agent/internal/natstest"
)

// TestInboundOrderAndBound feeds a blocked handler more bytes than the
// bound: messages are handled in channel order, the ones past the bound are
// dropped and counted, and a dropped replayed message is never acked.
func TestInboundOrderAndBound(t *testing.T) {
	var dropMu sync.Mutex
	var drops []string
	in := newInbound(1000, func(m *nats.Msg, replayed bool, n int64) {
		dropMu.Lock()
		drops = append(drops, fmt.Sprintf("%s replayed=%v n=%d", m.Data, replayed, n))
		dropMu.Unlock()
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	release := make(chan struct{})
	handled := make(chan string, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		in.run(ctx, func(m *nats.Msg, ack func(), _ any) {
			if string(m.Data) == "block" {
				<-release
			}
			tag := string(m.Data[:min(len(m.Data), 8)])
			if ack != nil {
				ack()
				tag += "+ack"
			}
			handled <- tag
		})
	}()
	in.deliver(&nats.Msg{Subject: "s", Data: []byte("block")})
	waitFor(t, "the blocking message is handled", func() bool { return in.pending() == 0 })
	// 4 × 300 bytes against a 1000-byte bound: the 4th does not fit.
	for i := range 3 {
		in.deliver(&nats.Msg{Subject: "s", Data: []byte(fmt.Sprintf("live-%d%s", i, strings.Repeat(".", 294)))})
	}
	acked := false
	in.replay(ctx, "s", nil, []byte("replay-3"+strings.Repeat(".", 292)), func() { acked = true })
	waitFor(t, "one message is dropped", func() bool { return in.dropped.Load() == 1 })
	in.replay(ctx, "s", nil, []byte("replay-4"), func() {})
	close(release)
	var got []string
	for range 5 {
		select {
		case s := <-handled:
			got = append(got, s)
		case <-time.After(10 * time.Second):
			t.Fatalf("handled %v, want 5", got)
		}
	}
	want := []string{"block", "live-0..", "live-1..", "live-2..", "replay-4+ack"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("handled %v, want %v", got, want)
	}
	if acked {
		t.Fatal("a dropped replayed message was acked")
	}
	dropMu.Lock()
	if len(drops) != 1 || !strings.HasPrefix(drops[0], "replay-3") || !strings.HasSuffix(drops[0], "replayed=true n=1") {
		t.Fatalf("drops %q", drops)
	}
	dropMu.Unlock()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func (in *inbound) pending() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.raw) + len(in.queue)
}

// deliver hands m to in as a subscription's message would be.
func (in *inbound) deliver(m *nats.Msg) {
	m.Sub = in.key
	in.getLane().ch <- m
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	natstest.CheckFor(t, 10*time.Second, time.Millisecond, func() error {
		if !ok() {
			return errors.New("waiting until " + what)
		}
		return nil
	})
}

// TestInboundScreen: the screen sees every message in arrival order with
// its ack; what it keeps is queued with its tag, what it does not keep
// never takes room in the queue (and is the screen's to ack).
func TestInboundScreen(t *testing.T) {
	in := newInbound(1000, nil)
	var mu sync.Mutex
	var screened []string
	var unacked []func()
	in.screen = func(m *nats.Msg, ack func()) (bool, any) {
		mu.Lock()
		defer mu.Unlock()
		screened = append(screened, string(m.Data))
		if strings.HasPrefix(string(m.Data), "bad") {
			if ack != nil {
				unacked = append(unacked, ack)
			}
			return false, nil
		}
		return true, "tag-" + string(m.Data)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	handled := make(chan string, 100)
	go in.run(ctx, func(m *nats.Msg, ack func(), tag any) {
		if ack != nil {
			ack()
		}
		handled <- fmt.Sprintf("%s/%v/%v", m.Data, tag, ack != nil)
	})
	// Far more bad bytes than the bound: none of them is queued or dropped.
	for i := range 50 {
		in.deliver(&nats.Msg{Subject: "s", Data: []byte(fmt.Sprintf("bad-%d%s", i, strings.Repeat(".", 500)))})
	}
	in.deliver(&nats.Msg{Subject: "s", Data: []byte("good-1")})
	var acked atomic.Bool
	in.replay(ctx, "s", nil, []byte("good-2"), func() { acked.Store(true) })
	in.replay(ctx, "s", nil, []byte("bad-replay"), func() {})
	var got []string
	for range 2 {
		select {
		case s := <-handled:
			got = append(got, s)
		case <-time.After(10 * time.Second):
			t.Fatalf("handled %v", got)
		}
	}
	if want := []string{"good-1/tag-good-1/false", "good-2/tag-good-2/true"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("handled %v, want %v", got, want)
	}
	waitFor(t, "every message is screened", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(screened) == 53
	})
	mu.Lock()
	defer mu.Unlock()
	if !acked.Load() || in.dropped.Load() != 0 || len(unacked) != 1 {
		t.Fatalf("acked %v, dropped %d, screen kept %d acks", acked.Load(), in.dropped.Load(), len(unacked))
	}
}

// TestInboundLaneShared: inbounds share a lane (one channel and mover per
// laneAgents), each still handling its own messages in order, and one whose
// handler is stuck does not hold up the others: the mover never waits for a
// handler.
func TestInboundLaneShared(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stuck := newInbound(1<<20, nil)
	release := make(chan struct{})
	defer close(release)
	go stuck.run(ctx, func(*nats.Msg, func(), any) { <-release })
	in := newInbound(1<<20, nil)
	handled := make(chan string, 100)
	go in.run(ctx, func(m *nats.Msg, _ func(), _ any) { handled <- string(m.Data) })
	// Sixteen more inbounds take at most three lanes (the one in use may
	// have had room for fewer).
	lanesUsed := map[*inboundLane]bool{}
	for range 2 * laneAgents {
		o := newInbound(1<<20, nil)
		lanesUsed[o.getLane()] = true
		defer o.stop()
	}
	if len(lanesUsed) > 3 {
		t.Fatalf("%d inbounds took %d lanes", 2*laneAgents, len(lanesUsed))
	}
	if stuck.getLane() != in.getLane() {
		t.Log("the two inbounds are on different lanes (the first had one slot left)")
	}
	for i := range 50 {
		stuck.deliver(&nats.Msg{Subject: "s", Data: []byte(fmt.Sprint("stuck-", i))})
		in.deliver(&nats.Msg{Subject: "s", Data: []byte(fmt.Sprint("m-", i))})
	}
	for i := range 50 {
		select {
		case got := <-handled:
			if want := fmt.Sprint("m-", i); got != want {
				t.Fatalf("handled %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("handled %d of 50 while another inbound of the lane is stuck", i)
		}
	}
}
