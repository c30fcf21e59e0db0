package runner

import (
	"strings"
	"testing"
)

// TestCaptureTap: the tap sees every byte, also past the cap.
func TestCaptureTap(t *testing.T) {
	var seen strings.Builder
	c := &capture{max: 3, tap: func(p []byte) { seen.Write(p) }}
	c.drain(strings.NewReader(strings.Repeat("x", 3*readChunk+7)))
	if seen.Len() != 3*readChunk+7 || string(c.buf) != "xxx" || !c.truncated() {
		t.Fatalf("tap saw %d bytes, kept %q", seen.Len(), c.buf)
	}
}
