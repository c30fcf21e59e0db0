package runner

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestCaptureCap(t *testing.T) {
	for _, tc := range []struct {
		name   string
		max    int
		writes []string
		want   string
		total  int64
		trunc  bool
	}{
		{"empty", 10, nil, "", 0, false},
		{"under", 10, []string{"abc", "de"}, "abcde", 5, false},
		{"exact", 5, []string{"abc", "de"}, "abcde", 5, false},
		{"over in one write", 4, []string{"abcdef"}, "abcd", 6, true},
		{"over across writes", 4, []string{"abc", "def", "ghi"}, "abcd", 9, true},
		{"keep nothing", 0, []string{"abc"}, "", 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &capture{max: tc.max}
			for _, w := range tc.writes {
				c.add([]byte(w))
			}
			if string(c.buf) != tc.want || c.total != tc.total || c.truncated() != tc.trunc {
				t.Fatalf("got %q total %d truncated %v; want %q %d %v", c.buf, c.total, c.truncated(), tc.want, tc.total, tc.trunc)
			}
			if cap(c.buf) > tc.max {
				t.Fatalf("cap %d over max %d", cap(c.buf), tc.max)
			}
		})
	}
}

func TestCaptureDrainBounded(t *testing.T) {
	const max = 1<<20 + 7
	c := &capture{max: max}
	src := io.LimitReader(neverEnding('x'), 50<<20)
	c.drain(src)
	if c.total != 50<<20 || len(c.buf) != max || cap(c.buf) != max || !c.truncated() {
		t.Fatalf("total %d len %d cap %d", c.total, len(c.buf), cap(c.buf))
	}
	if !bytes.Equal(c.buf, bytes.Repeat([]byte("x"), max)) {
		t.Fatal("kept bytes differ")
	}
}

func TestNotes(t *testing.T) {
	for _, tc := range []struct {
		r    Result
		want string
	}{
		{Result{TimedOut: true, Timeout: 30e9}, "timeout after 30s"},
		{Result{TimedOut: true, Timeout: 1500e6}, "timeout after 2s"},
		{Result{TimedOut: true, Timeout: 1}, "timeout after 1s"},
		{Result{Killed: true}, "killed by remote signal (kill.e-1)"},
		{Result{Err: ErrSpawn}, "runner: cannot start process"},
		{Result{ExitCode: 3}, ""},
	} {
		if got := tc.r.Note("e-1"); got != tc.want {
			t.Errorf("%+v: got %q want %q", tc.r, got, tc.want)
		}
	}
	if !strings.Contains(KillNote("x"), "kill.x") {
		t.Fatal(KillNote("x"))
	}
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// sizeRecorder returns its bytes in reads and records the largest buffer
// it was given.
type sizeRecorder struct {
	left, largest int
}

func (r *sizeRecorder) Read(p []byte) (int, error) {
	r.largest = max(r.largest, len(p))
	if r.left == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.left)
	r.left -= n
	return n, nil
}

// A stream that writes nothing (most scripts' stderr, and `true`'s both)
// costs a small buffer, not 64 KiB; one that writes a lot soon reads
// 64 KiB at a time.
func TestCaptureReadBufferGrows(t *testing.T) {
	quiet := &sizeRecorder{}
	(&capture{max: 100}).drain(quiet)
	if quiet.largest > 4<<10 {
		t.Fatalf("a silent stream was read with a %d-byte buffer", quiet.largest)
	}
	loud := &sizeRecorder{left: 1 << 20}
	c := &capture{max: 100}
	c.drain(loud)
	if loud.largest != readChunk || c.total != 1<<20 {
		t.Fatalf("largest read %d (want %d), total %d", loud.largest, readChunk, c.total)
	}
}
