package agent

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestTailRing(t *testing.T) {
	var r tailRing
	r.push(bytes.Repeat([]byte("a"), jobTailCap))
	if s, cut := r.snapshot(); cut || len(s) != jobTailCap {
		t.Fatalf("at the cap: %d bytes, cut %v", len(s), cut)
	}
	// Within the slack: nothing dropped yet, but the reply is the last
	// jobTailCap bytes and says so.
	r.push([]byte("bbbb"))
	if r.truncated {
		t.Fatal("dropped within the slack")
	}
	if s, cut := r.snapshot(); !cut || len(s) != jobTailCap || !strings.HasSuffix(s, "bbbb") {
		t.Fatalf("in the slack: %d bytes, cut %v", len(s), cut)
	}
	// Past the slack: the ring drops back to the cap.
	r.push(bytes.Repeat([]byte("c"), jobTailSlack))
	if !r.truncated || len(r.buf) != jobTailCap {
		t.Fatalf("past the slack: %d bytes kept, truncated %v", len(r.buf), r.truncated)
	}
	// Memory stays bounded whatever is written.
	for range 100 {
		r.push(bytes.Repeat([]byte("d"), 10000))
	}
	if cap(r.buf) > 2*(jobTailCap+jobTailSlack) {
		t.Fatalf("ring holds %d bytes of capacity", cap(r.buf))
	}
}

// TestTailRingCharBoundary: a cut in the middle of a UTF-8 character
// starts the reply at the next character, not with U+FFFD.
func TestTailRingCharBoundary(t *testing.T) {
	var r tailRing
	r.push([]byte("あ")) // 3 bytes
	r.push(bytes.Repeat([]byte("x"), jobTailCap-2))
	s, cut := r.snapshot()
	if !cut || strings.HasPrefix(s, "\uFFFD") || len(s) != jobTailCap-2 {
		t.Fatalf("cut %v, %d bytes, starts %q", cut, len(s), s[:3])
	}
}

func TestTailRegistryGraceAndBound(t *testing.T) {
	var reg tailRegistry
	live := reg.start("live")
	live.tap(false, []byte("out"))
	live.tap(true, []byte("err"))
	if r := reg.get("live").reply(); !r.Found || !r.Running || r.Stdout != "out" || r.Stderr != "err" {
		t.Fatalf("%+v", r)
	}
	reg.finish(live)
	if r := reg.get("live").reply(); r.Running || r.Stdout != "out" {
		t.Fatalf("finished: %+v", r)
	}
	// Past the grace it is gone.
	live.finished = time.Now().Add(-jobTailGrace)
	if reg.get("live") != nil {
		t.Fatal("kept past the grace")
	}
	// At most jobTailMaxFinished finished runs are kept, the newest; a
	// running one is never dropped.
	running := reg.start("running")
	for i := range jobTailMaxFinished + 5 {
		reg.finish(reg.start(string(rune('A' + i))))
	}
	if n := len(reg.m); n != jobTailMaxFinished+1 {
		t.Fatalf("%d tails kept, want %d", n, jobTailMaxFinished+1)
	}
	if reg.get("running") != running || reg.get("A") != nil || reg.get(string(rune('A'+jobTailMaxFinished+4))) == nil {
		t.Fatal("wrong tails kept")
	}
}
