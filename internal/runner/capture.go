package runner

import (
	"errors"
	"io"
	"os"
)

// A reader's buffer starts at minReadChunk bytes and doubles, up to
// readChunk, each time a read fills it: most scripts write little, and a
// thousand agents of one process running one at once would otherwise hold
// 128 MiB of read buffers (two 64 KiB ones per run) that the process then
// keeps; a script that writes a lot reads 64 KiB at a time after a few
// reads. It is the only allocation a reader makes besides the kept bytes.
const (
	minReadChunk = 512
	readChunk    = 64 << 10
)

// capture keeps the first max bytes written to it and counts the rest.
// It is owned by one goroutine until that goroutine signals done.
type capture struct {
	max   int
	buf   []byte
	total int64
	// tap, when set, sees every chunk read, before the cap applies.
	tap func(p []byte)
}

// add keeps what fits of p and counts all of it.
func (c *capture) add(p []byte) {
	if c.tap != nil {
		c.tap(p)
	}
	c.total += int64(len(p))
	room := c.max - len(c.buf)
	if room <= 0 {
		return
	}
	if len(p) > room {
		p = p[:room]
	}
	if need := len(c.buf) + len(p); need > cap(c.buf) {
		// Grow by doubling but never past max, so the kept buffer costs at
		// most max bytes (append's own growth could reach about 2*max).
		n := max(2*cap(c.buf), need, 4<<10)
		n = min(n, c.max)
		nb := make([]byte, len(c.buf), n)
		copy(nb, c.buf)
		c.buf = nb
	}
	c.buf = append(c.buf, p...)
}

// truncated reports whether bytes were dropped.
func (c *capture) truncated() bool { return c.total > int64(len(c.buf)) }

// drain reads r until EOF or error (including r being closed under it),
// feeding c. It never stops reading because the cap was reached, so the
// writer never blocks on a full pipe.
func (c *capture) drain(r io.Reader) {
	chunk := make([]byte, minReadChunk)
	for {
		n, err := r.Read(chunk)
		if n > 0 {
			c.add(chunk[:n])
		}
		if n == len(chunk) && len(chunk) < readChunk {
			chunk = make([]byte, 2*len(chunk))
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) {
				return
			}
			// Any other read error (EPIPE-like conditions on Windows when the
			// writer goes away) also ends the stream.
			return
		}
	}
}
