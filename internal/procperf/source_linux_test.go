package procperf

import (
	"context"
	"errors"
	"testing"
	"testing/fstest"
	"time"
)

const statLine = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 130 0 0 20 -5 1 0 98765 123456789 512 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 3 0 0 0 0 0\n"

func TestParseStat(t *testing.T) {
	p, err := parseStat([]byte(statLine), 4096)
	if err != nil {
		t.Fatal(err)
	}
	if p.name != "a) b (c)" || p.cpu != 3800*time.Millisecond || p.start != 98765 || p.rss != 512*4096 {
		t.Fatalf("%+v", p)
	}
	for _, bad := range []string{"", "12 noparen", "12 (x) S 1 2", "12 (x) S 1 2 3 4 5 6 7 8 9 10 X 12 13 14 15 16 17 18 19 20 21"} {
		if _, err := parseStat([]byte(bad), 4096); !errors.Is(err, ErrMalformed) {
			t.Errorf("parseStat(%q): %v, want ErrMalformed", bad, err)
		}
	}
}

func TestParseIO(t *testing.T) {
	r, w, err := parseIO([]byte("rchar: 10\nwchar: 20\nsyscr: 1\nsyscw: 2\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n"))
	if err != nil || r != 4096 || w != 8192 {
		t.Fatalf("%d %d %v", r, w, err)
	}
	if _, _, err := parseIO([]byte("read_bytes: x\nwrite_bytes: 1\n")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad number: %v", err)
	}
	if _, _, err := parseIO([]byte("rchar: 1\n")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("missing: %v", err)
	}
}

// TestProcFixture: a garbled or vanished entry costs that process only.
func TestProcFixture(t *testing.T) {
	fsys := fstest.MapFS{
		"proc/4242/stat": {Data: []byte(statLine)},
		"proc/4242/io":   {Data: []byte("read_bytes: 1\nwrite_bytes: 2\n")},
		"proc/7/stat":    {Data: []byte("7 (broken")},
		"proc/8/io":      {Data: []byte("read_bytes: 1\nwrite_bytes: 2\n")}, // no stat: exited
		"proc/self/stat": {Data: []byte(statLine)},
		"proc/meminfo":   {Data: []byte("x")},
	}
	s := &Sampler{src: &procSource{fsys: fsys, pageSize: 4096}}
	got, err := s.Sample(context.Background(), time.Now(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].PID != 4242 || got[0].Name != "a) b (c)" || got[0].RSSBytes != 512*4096 {
		t.Fatalf("%+v", got)
	}
}
