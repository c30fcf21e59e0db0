package agent

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/signing"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
)

// TestDeadlineBoundary: as upstream, deadline_at is the last instant a
// command may start; only a later start is skipped.
func TestDeadlineBoundary(t *testing.T) {
	a := &Agent{kv: newKVState()}
	deadline := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := &wire.Command{ID: wire.AdhocID, RequestID: "r", DeadlineAt: &deadline,
		Staleness: &wire.Staleness{Mode: wire.StalenessUnchecked}}
	for _, tc := range []struct {
		now  time.Time
		code int32
	}{
		{deadline.Add(-time.Second), 0},
		{deadline, 0},
		{deadline.Add(time.Nanosecond), wire.ExitDeadline},
	} {
		if code, note := a.gates(context.Background(), c, tc.now); code != tc.code {
			t.Errorf("now %s: code %d (%s), want %d", tc.now.Sub(deadline), code, note, tc.code)
		}
	}
}

// TestRateLimit: a burst, then one token per interval, never more than the burst.
func TestRateLimit(t *testing.T) {
	r := newRateLimit(3, time.Second)
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if !r.allow(t0) {
			t.Fatalf("burst token %d refused", i)
		}
	}
	if r.allow(t0) {
		t.Fatal("a 4th token in the burst")
	}
	if r.allow(t0.Add(900 * time.Millisecond)) {
		t.Fatal("a token before the interval")
	}
	if !r.allow(t0.Add(1100 * time.Millisecond)) {
		t.Fatal("no token after the interval")
	}
	if r.allow(t0.Add(1200 * time.Millisecond)) {
		t.Fatal("two tokens in one interval")
	}
	n := 0
	for r.allow(t0.Add(time.Hour)) {
		n++
	}
	if n != 3 {
		t.Fatalf("%d tokens after an hour, want the burst of 3", n)
	}
}

// TestReplayNotAddressedDropped: a replayed command on a subject that is
// not (or no longer) the agent's is acked and dropped before its signature
// is looked at; live and addressed ones go on to the check.
func TestReplayNotAddressedDropped(t *testing.T) {
	a := &Agent{kv: newKVState(), opts: Options{PcID: "pc-1"}, log: slog.New(slog.DiscardHandler),
		verifier: &verifier{v: signing.NewVerifier(nil, false)}, side: newSideWorker()}
	a.kv.groups = []string{"g1"}
	acked := 0
	ack := func() { acked++ }
	if keep, _ := a.screenCommand(&nats.Msg{Subject: "commands.group.g2"}, ack); keep || acked != 1 {
		t.Fatalf("replay for another group: keep %v, acked %d", keep, acked)
	}
	for _, subj := range []string{"commands.group.g1", "commands.pc.pc-1", "commands.all"} {
		if keep, _ := a.screenCommand(&nats.Msg{Subject: subj}, ack); !keep || acked != 1 {
			t.Fatalf("replay on %s: keep %v, acked %d", subj, keep, acked)
		}
	}
}
