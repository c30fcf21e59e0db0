package outbox

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestSegmentIndex checks the packed index against the plain values it
// stands for: lengths over 64 KiB, bytes skipped between records, enqueue
// times far apart or going backwards, across blocks.
func TestSegmentIndex(t *testing.T) {
	type want struct {
		off int64
		n   uint32
		at  int64
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var s segment
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
		case 2:
			at += int64(time.Hour) * int64(rng.IntN(100)) // idle
		case 3:
			at -= int64(time.Minute) // clock stepped back
		}
		at += int64(rng.IntN(5_000_000))
		s.add(off, n, at)
		ws = append(ws, want{off, n, at})
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
		if diff := s.at(i) - w.at; diff > atUnit || diff < -atUnit {
			t.Fatalf("record %d: at off by %v", i, time.Duration(diff))
		}
	}
	if s.end != off {
		t.Fatalf("end %d, want %d", s.end, off)
	}
}
