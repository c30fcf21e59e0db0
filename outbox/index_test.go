package outbox

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
)

// TestSegmentIndex checks the packed index against the plain values it
// stands for: lengths over 64 KiB, bytes skipped between records, across
// blocks.
func TestSegmentIndex(t *testing.T) {
	type want struct {
		off int64
		n   uint32
	}
	rng := rand.New(rand.NewPCG(1, 2))
	s := newSegment(1, "")
	var ws []want
	off := int64(segHeaderLen)
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano()
	for i := 0; i < 5000; i++ {
		n := uint32(20 + rng.IntN(2000))
		switch rng.IntN(50) {
		case 0:
			n = lenBig - 1 + uint32(rng.IntN(3)) // 65535.. : kept aside
		case 1:
			off += int64(1 + rng.IntN(100)) // corrupt bytes skipped
		}
		at += int64(rng.IntN(5_000_000))
		s.add(off, n, at)
		ws = append(ws, want{off, n})
		off += int64(n)
	}
	s.compact()
	if s.count() != len(ws) {
		t.Fatalf("count %d, want %d", s.count(), len(ws))
	}
	for i, w := range ws {
		if s.off(i) != w.off || s.n(i) != w.n {
			t.Fatalf("record %d: off %d n %d, want %d %d", i, s.off(i), s.n(i), w.off, w.n)
		}
	}
	if s.end != off {
		t.Fatalf("end %d, want %d", s.end, off)
	}
}

// TestOldestAge: Stats.OldestAge is the age of the oldest unfinished item,
// after Enqueue, after a reopen, once older items are acknowledged (the
// drain reads the next one's time from the file) and after a reopen again.
func TestOldestAge(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	dir := natstest.TempDir(t)
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(d time.Duration) {
		mu.Lock()
		now = time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.UTC).Add(d)
		mu.Unlock()
	}
	o := testOptions(dir, js)
	o.Now = clock
	o.BackoffBase, o.MaxBackoff, o.MaxAttempts = time.Hour, time.Hour, 100
	o.Prepare = func(_ context.Context, _ string, v item) (item, error) {
		if v.Seq >= 2 {
			return v, errors.New("not yet")
		}
		return v, nil
	}
	age := func(ob *Outbox[item], want time.Duration) {
		t.Helper()
		if got := ob.Stats().OldestAge; got != want {
			t.Fatalf("OldestAge %v, want %v", got, want)
		}
	}
	ob, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		set(time.Duration(i+1) * 10 * time.Second)
		enqueueN(t, ob, i, 1)
	}
	set(100 * time.Second)
	age(ob, 90*time.Second)
	ob.Close()

	ob = mustNew(t, o)
	age(ob, 90*time.Second)
	stop := startRun(t, ob)
	natstest.CheckFor(t, 30*time.Second, 5*time.Millisecond, func() error {
		// OldestAge may lag by one drain step behind Pending.
		st := ob.Stats()
		if n, err := streamCount(js, "OBS_EVENTS"); err != nil || n != 2 || st.Pending != 2 || st.OldestAge != 70*time.Second {
			return fmt.Errorf("stream has %d (%v), stats %+v", n, err, st)
		}
		return nil
	})
	stop()
	ob.Close()

	ob = mustNew(t, o)
	age(ob, 70*time.Second)
}
