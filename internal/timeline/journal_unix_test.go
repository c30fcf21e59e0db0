//go:build unix

package timeline

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/wire"
)

// fakeJournalctl writes a journalctl stand-in into dir: it appends its
// arguments to dir/args, fails as journalctl does for the cursor "bad",
// and prints dir/out.
func fakeJournalctl(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "journalctl")
	script := fmt.Sprintf(`#!/bin/sh
printf '%%s\n' "$*" >> '%[1]s/args'
case "$*" in *--after-cursor=bad*) echo "Failed to seek to cursor: Invalid argument" >&2; exit 1;; esac
cat '%[1]s/out'
`, dir)
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// journalLine is one journalctl --output=json line, in its real shape.
func journalLine(cursor string, at time.Time, msgID, sleep string) string {
	m := map[string]any{
		"__CURSOR":              cursor,
		"__REALTIME_TIMESTAMP":  fmt.Sprint(at.UnixMicro()),
		"__MONOTONIC_TIMESTAMP": "81234567",
		"_BOOT_ID":              "0b6d3c2a8f1e4d5c9a7b6e5d4c3b2a19",
		"PRIORITY":              "6",
		"SYSLOG_IDENTIFIER":     "systemd-sleep",
		"_PID":                  "4321",
		"_COMM":                 "systemd-sleep",
		"CODE_FILE":             "src/sleep/sleep.c",
	}
	if msgID != "" {
		m["MESSAGE_ID"] = msgID
	}
	switch msgID {
	case MessageSleepStart:
		m["MESSAGE"] = "System is entering sleep state"
	case MessageSleepStop:
		m["MESSAGE"] = "System returned from sleep state."
	default:
		m["MESSAGE"] = "Something else"
	}
	if sleep != "" {
		m["SLEEP"] = sleep
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func cursor(i int) string {
	return fmt.Sprintf("s=4b1c0e0f8d2a4c3b9e8f7a6b5c4d3e2f;i=%x;b=0b6d3c2a8f1e4d5c9a7b6e5d4c3b2a19;m=4d7c6b5;t=6441f0a2b3c4d;x=%x", 0x1a00+i, 0xabcdef0+i)
}

// TestJournalSource reads sleep and resume through journalctl (a stand-in
// printing recorded lines), passes the cursor and the look-back to it,
// keeps an entry whose emit failed for the next poll, and drops a cursor
// journalctl refuses.
func TestJournalSource(t *testing.T) {
	dir := natstest.TempDir(t)
	bin := natstest.TempDir(t)
	jctl := fakeJournalctl(t, bin)
	out := func(lines ...string) {
		if err := os.WriteFile(filepath.Join(bin, "out"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(bin, "args"))
	}
	args := func() string {
		b, _ := os.ReadFile(filepath.Join(bin, "args"))
		return string(b)
	}
	newSrc := func(buf *natstest.Buffer) (*Source, chan struct{}) {
		s, err := New(Options{Dir: dir, NoEventLog: true, NoWtmp: true, Journalctl: jctl, Log: testLog(t, buf), Period: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		s.now = func() time.Time { return fixtureNow }
		polled := make(chan struct{}, 10)
		s.afterPoll = func() { polled <- struct{}{} }
		return s, polled
	}
	h := func(hh, mm int) time.Time { return time.Date(2026, 12, 2, hh, mm, 0, 0, time.UTC) }
	kinds := func(evs []wire.ObsEvent) []string {
		var k []string
		for _, e := range evs {
			if e.Source != SourceJournal || len(e.EventRecordID) != 16 {
				t.Errorf("event %+v", e)
			}
			k = append(k, e.Kind+" "+e.At.Format("15:04")+" "+string(e.Payload))
		}
		return k
	}

	out(journalLine(cursor(0), fixtureNow.Add(-25*time.Hour), MessageSleepStart, "suspend"), // before the look-back
		journalLine(cursor(1), h(10, 0), MessageSleepStart, "suspend"),
		journalLine(cursor(2), h(10, 20), MessageSleepStop, "suspend"),
		`{"__CURSOR":`, // cut short
		journalLine(cursor(3), h(10, 30), "", ""))
	s, polled := newSrc(nil)
	c := &collector{}
	runPolls(t, s, c.emit, 1, polled)
	want := []string{`sleep 10:00 {"sleep":"suspend"}`, `resume 10:20 {"sleep":"suspend"}`}
	if got := kinds(c.evs); !slices.Equal(got, want) {
		t.Fatalf("emitted %q, want %q", got, want)
	}
	wantArgs := fmt.Sprintf("--output=json --no-pager --quiet --utc --since=@%d MESSAGE_ID=%s MESSAGE_ID=%s\n", fixtureNow.Add(-DefaultLookBack).Unix(), MessageSleepStart, MessageSleepStop)
	if a := args(); a != wantArgs {
		t.Errorf("journalctl %q, want %q", a, wantArgs)
	}

	// A restart asks for the entries after the last one handled; the
	// emit fails: the cursor stays.
	out(journalLine(cursor(4), h(11, 0), MessageSleepStart, "hibernate"))
	s, polled = newSrc(nil)
	c = &collector{fail: func(wire.ObsEvent) bool { return true }}
	runPolls(t, s, c.emit, 1, polled)
	if a := args(); !strings.Contains(a, "--after-cursor="+cursor(3)+" ") {
		t.Errorf("journalctl %q, want --after-cursor=%s", a, cursor(3))
	}
	s, polled = newSrc(nil)
	c = &collector{}
	runPolls(t, s, c.emit, 1, polled)
	if got := kinds(c.evs); !slices.Equal(got, []string{`sleep 11:00 {"sleep":"hibernate"}`}) {
		t.Fatalf("after a failed emit emitted %q", got)
	}
	if a := args(); !strings.Contains(a, "--after-cursor="+cursor(3)+" ") {
		t.Errorf("journalctl %q, want --after-cursor=%s", a, cursor(3))
	}

	// A cursor journalctl refuses: read the look-back again.
	if err := os.WriteFile(filepath.Join(dir, journalWatermarkFile), []byte(`{"cursor":"bad"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out(journalLine(cursor(4), h(11, 0), MessageSleepStart, "hibernate"))
	var buf natstest.Buffer
	s, polled = newSrc(&buf)
	c = &collector{}
	runPolls(t, s, c.emit, 1, polled)
	if got := kinds(c.evs); len(got) != 1 || !strings.Contains(buf.String(), "journal cursor refused") {
		t.Fatalf("after a refused cursor emitted %q; log:\n%s", got, buf.String())
	}
	if a := args(); strings.Count(a, "\n") != 2 || !strings.Contains(a, "--after-cursor=bad") {
		t.Errorf("journalctl runs %q", a)
	}
}
