//go:build unix

package timeline

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
)

// TestWtmpRotation: when wtmp is rotated (renamed to wtmp.1, a new wtmp
// created), the records appended to the old file since the last poll are
// read from wtmp.1, then the new file from its start.
func TestWtmpRotation(t *testing.T) {
	dir := natstest.TempDir(t)
	logs := natstest.TempDir(t)
	file := filepath.Join(logs, "wtmp")
	h := func(hh, mm int) time.Time { return time.Date(2026, 12, 2, hh, mm, 0, 0, time.UTC) }
	appendFile(t, file, utmpRec(UtBootTime, 0, "~", "~~", "reboot", "6.1.0", h(1, 0)))
	s, polled := newWtmpSource(t, dir, file, nil)
	c := &collector{}
	runPolls(t, s, c.emit, 1, polled)

	appendFile(t, file, utmpRec(UtUserProcess, 7, "pts/0", "ts/0", "dan", "", h(2, 0)))
	if err := os.Rename(file, file+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, file, utmpRec(UtDeadProcess, 7, "pts/0", "ts/0", "", "", h(3, 0)))
	s.afterPoll = func() { polled <- struct{}{} }
	runPolls(t, s, c.emit, 1, polled)
	want := []string{"boot 01:00:00", "logon dan pts/0 02:00:00", "logoff dan pts/0 03:00:00"}
	if got := brief(t, c.evs); !slices.Equal(got, want) {
		t.Fatalf("emitted %q, want %q", got, want)
	}

	// Truncated in place (same inode): read again from the start.
	if err := os.Truncate(file, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, file, utmpRec(UtBootTime, 0, "~", "~~", "reboot", "6.1.1", h(4, 0)))
	c = &collector{}
	runPolls(t, s, c.emit, 1, polled)
	if got := brief(t, c.evs); !slices.Equal(got, []string{"boot 04:00:00"}) {
		t.Fatalf("after truncation emitted %q", got)
	}
}
