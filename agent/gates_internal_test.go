package agent

import (
	"context"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/wire"
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
