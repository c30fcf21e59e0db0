package timeline

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/wire"
)

// cUtmp is glibc's struct utmp on Linux amd64 and arm64, written here
// field by field (independently of the package's offsets) with
// encoding/binary, little-endian: 384 bytes.
type cUtmp struct {
	Type    int16
	_       [2]byte
	Pid     int32
	Line    [32]byte
	ID      [4]byte
	User    [32]byte
	Host    [256]byte
	Term    int16
	Exit    int16
	Session int32
	Sec     int32
	Usec    int32
	Addr    [4]int32
	Unused  [20]byte
}

func utmpRec(typ int16, pid int32, line, id, user, host string, at time.Time) []byte {
	var r cUtmp
	r.Type, r.Pid = typ, pid
	copy(r.Line[:], line)
	copy(r.ID[:], id)
	copy(r.User[:], user)
	copy(r.Host[:], host)
	r.Sec, r.Usec = int32(at.Unix()), int32(at.Nanosecond()/1000)
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, &r); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func TestUtmpLayout(t *testing.T) {
	if n := binary.Size(cUtmp{}); n != UtmpRecordSize {
		t.Fatalf("struct utmp is %d bytes, want %d", n, UtmpRecordSize)
	}
	at := time.Date(2026, 12, 2, 9, 0, 1, 234567000, time.UTC)
	b := utmpRec(UtUserProcess, 4242, "pts/3", "ts/3", "alice", "10.0.0.9", at)
	r, err := DecodeUtmp(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.Type != UtUserProcess || r.Pid != 4242 || r.Line != "pts/3" || r.User != "alice" || r.Host != "10.0.0.9" || !r.At.Equal(at) || len(r.ID) != 16 {
		t.Fatalf("decoded %+v", r)
	}
	if !bytes.Equal(EncodeUtmp(r), b[:]) {
		// EncodeUtmp leaves ut_id zero: compare without it.
		e := EncodeUtmp(r)
		copy(e[40:44], "ts/3")
		if !bytes.Equal(e, b) {
			t.Error("EncodeUtmp does not round-trip")
		}
	}
	if _, err := DecodeUtmp(b[:100]); err == nil {
		t.Error("a short record decoded")
	}
}

// TestUtmpLayoutAgainstLast: last(1) of util-linux reads a file written
// by this test as the logins it holds.
func TestUtmpLayoutAgainstLast(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("last(1) of util-linux is a Linux tool")
	}
	last, err := exec.LookPath("last")
	if err != nil {
		t.Skip("no last(1) on this machine")
	}
	f := filepath.Join(natstest.TempDir(t), "wtmp")
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	data := slices.Concat(
		utmpRec(UtBootTime, 0, "~", "~~", "reboot", "6.1.0-test", at),
		utmpRec(UtUserProcess, 900, "pts/7", "ts/7", "zelda", "192.0.2.7", at.Add(time.Minute)),
	)
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(last, "-f", f, "-w").CombinedOutput()
	if err != nil {
		t.Fatalf("last: %v\n%s", err, out)
	}
	for _, want := range []string{"zelda", "pts/7", "192.0.2.7", "reboot", "6.1.0-test"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("last(1) output lacks %q:\n%s", want, out)
		}
	}
	recs := decodeAll(t, data)
	if recs[1].User != "zelda" || recs[0].Host != "6.1.0-test" {
		t.Errorf("decoded %+v", recs)
	}
}

func decodeAll(t *testing.T, data []byte) []UtmpRecord {
	var out []UtmpRecord
	for len(data) >= UtmpRecordSize {
		r, err := DecodeUtmp(data[:UtmpRecordSize])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
		data = data[UtmpRecordSize:]
	}
	return out
}

func newWtmpSource(t *testing.T, dir, file string, buf *natstest.Buffer) (*Source, chan struct{}) {
	t.Helper()
	s, err := New(Options{Dir: dir, NoEventLog: true, NoJournal: true, Wtmp: file, Log: testLog(t, buf), Period: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return fixtureNow }
	polled := make(chan struct{}, 100)
	s.afterPoll = func() { polled <- struct{}{} }
	return s, polled
}

func appendFile(t *testing.T, file string, data ...[]byte) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(slices.Concat(data...)); err != nil {
		t.Fatal(err)
	}
}

// brief is kind user tty of each event, payload fields checked.
func brief(t *testing.T, evs []wire.ObsEvent) []string {
	t.Helper()
	var out []string
	for _, e := range evs {
		if e.Source != SourceWtmp || len(e.EventRecordID) != 16 {
			t.Errorf("event %+v: source or record id", e)
		}
		var p map[string]any
		_ = json.Unmarshal(e.Payload, &p)
		s := e.Kind
		if u, ok := p["user"]; ok {
			s += " " + u.(string) + " " + p["tty"].(string)
		}
		out = append(out, s+" "+e.At.Format("15:04:05"))
	}
	return out
}

// TestWtmpSource reads boot, shutdown, logon and logoff from a wtmp file
// written record by record, keeps to the look-back, and emits each record
// once across restarts, a partial record once it is complete, and one
// whose emit failed at the next poll.
func TestWtmpSource(t *testing.T) {
	dir := natstest.TempDir(t)
	file := filepath.Join(natstest.TempDir(t), "wtmp")
	day := fixtureNow.Add(-2 * 24 * time.Hour)
	h := func(hh, mm int) time.Time { return time.Date(2026, 12, 2, hh, mm, 0, 0, time.UTC) }
	appendFile(t, file,
		utmpRec(UtBootTime, 0, "~", "~~", "reboot", "6.1.0-old", day),                        // too old
		utmpRec(UtUserProcess, 100, "pts/0", "ts/0", "bob", "192.0.2.1", day.Add(time.Hour)), // too old, but its logoff is not
		utmpRec(UtRunLvl, 53, "~", "~~", "runlevel", "6.1.0", h(1, 0)),                       // runlevel change: nothing
		utmpRec(UtDeadProcess, 100, "pts/0", "", "", "", h(1, 5)),                            // bob's logoff
		utmpRec(UtRunLvl, 0, "~", "~~", "shutdown", "6.1.0", h(1, 10)),                       // shutdown
		utmpRec(UtBootTime, 0, "~", "~~", "reboot", "6.1.0", h(1, 11)),                       // boot
		utmpRec(6, 500, "tty1", "tty1", "LOGIN", "", h(1, 12)),                               // LOGIN_PROCESS: nothing
		utmpRec(UtDeadProcess, 500, "tty2", "tty2", "", "", h(1, 13)),                        // a getty ending: nothing
		utmpRec(UtUserProcess, 500, "tty1", "tty1", "alice", "", h(1, 14)),                   // logon
		utmpRec(UtDeadProcess, 500, "tty1", "tty1", "", "", h(2, 0)),                         // logoff alice
	)
	s, polled := newWtmpSource(t, dir, file, nil)
	c := &collector{}
	runPolls(t, s, c.emit, 1, polled)
	want := []string{"logoff bob pts/0 01:05:00", "shutdown 01:10:00", "boot 01:11:00", "logon alice tty1 01:14:00", "logoff alice tty1 02:00:00"}
	if got := brief(t, c.evs); !slices.Equal(got, want) {
		t.Fatalf("emitted\n%q\nwant\n%q", got, want)
	}
	if p := string(c.evs[3].Payload); p != `{"host":null,"pid":500,"tty":"tty1","user":"alice"}` {
		t.Errorf("logon payload %s", p)
	}
	if p := string(c.evs[2].Payload); p != `{"kernel":"6.1.0"}` {
		t.Errorf("boot payload %s", p)
	}

	// A restart reads only what was appended; a partial record waits.
	carol := utmpRec(UtUserProcess, 600, "pts/1", "ts/1", "carol", "198.51.100.2", h(3, 0))
	appendFile(t, file, carol[:100])
	s, polled = newWtmpSource(t, dir, file, nil)
	c = &collector{}
	runPolls(t, s, c.emit, 1, polled)
	if len(c.evs) != 0 {
		t.Fatalf("after a restart emitted %q", brief(t, c.evs))
	}
	appendFile(t, file, carol[100:], utmpRec(UtDeadProcess, 600, "pts/1", "ts/1", "", "", h(3, 30)))
	// The logoff's emit fails: the logon is stored, the logoff is not passed.
	c.fail = func(e wire.ObsEvent) bool { return e.Kind == KindLogoff }
	s.afterPoll = func() { polled <- struct{}{} }
	runPolls(t, s, c.emit, 1, polled)
	if got := brief(t, c.evs); !slices.Equal(got, []string{"logon carol pts/1 03:00:00"}) {
		t.Fatalf("emitted %q", got)
	}
	s, polled = newWtmpSource(t, dir, file, nil)
	c = &collector{}
	runPolls(t, s, c.emit, 1, polled)
	if got := brief(t, c.evs); !slices.Equal(got, []string{"logoff carol pts/1 03:30:00"}) {
		t.Fatalf("after the failed emit, a restart emitted %q", got)
	}

	// A corrupt watermark: the look-back is read again, with the same
	// record ids (the backend drops them).
	ids := map[string]bool{}
	for _, e := range c.evs {
		ids[e.EventRecordID] = true
	}
	if err := os.WriteFile(filepath.Join(dir, wtmpWatermarkFile), []byte("{\"offset\":"), 0o600); err != nil {
		t.Fatal(err)
	}
	var buf natstest.Buffer
	s, polled = newWtmpSource(t, dir, file, &buf)
	c = &collector{}
	runPolls(t, s, c.emit, 1, polled)
	if len(c.evs) != 7 || !ids[c.evs[6].EventRecordID] {
		t.Fatalf("after a corrupt watermark emitted %q", brief(t, c.evs))
	}
	if !strings.Contains(buf.String(), "timeline watermark unreadable") {
		t.Errorf("not logged:\n%s", buf.String())
	}

	// A session recorded as null: no crash, the logoff is not one.
	wm := fmt.Sprintf(`{"ino":0,"offset":%d,"sessions":{"pts/9":null}}`, 12*UtmpRecordSize)
	if err := os.WriteFile(filepath.Join(dir, wtmpWatermarkFile), []byte(wm), 0o600); err != nil {
		t.Fatal(err)
	}
	appendFile(t, file, utmpRec(UtDeadProcess, 9, "pts/9", "ts/9", "", "", h(4, 0)))
	s, polled = newWtmpSource(t, dir, file, nil)
	c = &collector{}
	runPolls(t, s, c.emit, 1, polled)
	if len(c.evs) != 0 {
		t.Fatalf("emitted %q", brief(t, c.evs))
	}
}

// TestWtmpMissing: no wtmp file is logged once and is no error.
func TestWtmpMissing(t *testing.T) {
	var buf natstest.Buffer
	s, polled := newWtmpSource(t, natstest.TempDir(t), filepath.Join(natstest.TempDir(t), "none"), &buf)
	s.opts.Period = time.Millisecond
	runPolls(t, s, (&collector{}).emit, 3, polled)
	if n := strings.Count(buf.String(), "no wtmp file"); n != 1 {
		t.Errorf("logged %d times:\n%s", n, buf.String())
	}
}
