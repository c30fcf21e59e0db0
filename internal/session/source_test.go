package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
)

const wait = 30 * time.Second

func wantKinds(t *testing.T, ev *events, want string) {
	t.Helper()
	natstest.CheckFor(t, wait, 20*time.Millisecond, func() error {
		if got := ev.kinds(); got != want {
			return fmt.Errorf("events %q, want %q", got, want)
		}
		return nil
	})
}

// A scripted helper gives exactly the transitions: the first reading
// anchors the timeline, then only changes; threshold inclusive; bad,
// null and over-long lines are skipped and counted.
func TestIdleTransitions(t *testing.T) {
	script := strings.Join([]string{
		`{"idle_ms":0}`,
		`{"idle_ms":1000}`,
		`not json`,
		`{"idle_ms":300000}`, // exactly the threshold: idle
		`{"idle_ms":400000}`,
		`LONG`,
		`{"idle_ms":-5}`,
		`{"idle_ms":null}`,
		`{"idle_ms":"7"}`,
		`{"other":1}`,
		`{"idle_ms":2000,"extra":true}`,
		`{"idle_ms":299999}`,
		`{"idle_ms":300000}`,
	}, "|")
	s, ev := startSource(t, script, Options{})
	wantKinds(t, ev, "active,idle,active,idle")
	natstest.CheckFor(t, wait, 20*time.Millisecond, func() error {
		if n := s.Stats().BadLines; n != 5 {
			return fmt.Errorf("bad lines %d, want 5", n)
		}
		return nil
	})
	for _, e := range ev.all() {
		if e.Source != SourceIdle || e.EventRecordID != fmt.Sprintf("%s:%d", e.Kind, e.At.UnixMilli()) || e.Payload != nil {
			t.Errorf("event %+v: want source %s, event_record_id <kind>:<unix ms>, null payload", e, SourceIdle)
		}
	}
	if n := s.Stats().HelperStarts; n != 1 {
		t.Errorf("helper started %d times, want 1", n)
	}
}

// The threshold is an option.
func TestIdleThresholdOption(t *testing.T) {
	_, ev := startSource(t, `{"idle_ms":100}|{"idle_ms":1500}|{"idle_ms":10}`, Options{Threshold: time.Second})
	wantKinds(t, ev, "active,idle,active")
}

// No reading for StaleAfter (the helper hangs) counts as idle, and a
// reading brings the user back.
func TestIdleWhenStale(t *testing.T) {
	_, ev := startSource(t, `{"idle_ms":0}`, Options{StaleAfter: 3 * time.Second})
	wantKinds(t, ev, "active,idle")
}

// A helper that crashes is restarted (with backoff) and the timeline does
// not repeat a presence it already has.
func TestHelperRestarted(t *testing.T) {
	count := filepath.Join(natstest.TempDir(t), "starts")
	t.Setenv(fakeCountEnv, count)
	s, ev := startSource(t, `{"idle_ms":5}|EXIT:7`, Options{backoffMin: 50 * time.Millisecond})
	natstest.CheckFor(t, wait, 20*time.Millisecond, func() error {
		b, _ := os.ReadFile(count)
		if n := bytes.Count(b, []byte("\n")); n < 3 {
			return fmt.Errorf("helper started %d times, want 3 or more", n)
		}
		return nil
	})
	if got := ev.kinds(); got != "active" {
		t.Errorf("events %q, want a single active", got)
	}
	if n := s.Stats().HelperStarts; n < 3 {
		t.Errorf("HelperStarts %d, want 3 or more", n)
	}
}

// A helper that exits with ExitUnsupported is not restarted and no event
// is emitted.
func TestHelperUnsupported(t *testing.T) {
	count := filepath.Join(natstest.TempDir(t), "starts")
	t.Setenv(fakeCountEnv, count)
	s, ev := startSource(t, fmt.Sprintf("EXIT:%d", ExitUnsupported), Options{backoffMin: 10 * time.Millisecond, StaleAfter: 1500 * time.Millisecond})
	natstest.CheckFor(t, wait, 20*time.Millisecond, func() error {
		if _, err := os.Stat(count); err != nil {
			return err
		}
		return nil
	})
	// Long enough for several restarts and a stale timer, had they happened.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if n := s.Stats().HelperStarts; n != 1 {
			t.Fatalf("helper started %d times, want 1", n)
		}
		if got := ev.kinds(); got != "" {
			t.Fatalf("events %q, want none", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Run's end kills the helper.
func TestHelperKilledOnStop(t *testing.T) {
	count := filepath.Join(natstest.TempDir(t), "starts")
	t.Setenv(fakeCountEnv, count)
	t.Setenv(fakeHelperEnv, `{"idle_ms":0}`)
	exe, _ := os.Executable()
	s, err := New(Options{HelperPath: exe, Sample: 20 * time.Millisecond, StaleAfter: time.Hour, launch: childLauncher{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ev := &events{}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ev.emit) }()
	wantKinds(t, ev, "active")
	b, _ := os.ReadFile(count)
	var pid int
	fmt.Sscan(string(b), &pid)
	cancel()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("Run did not return")
	}
	natstest.CheckFor(t, wait, 20*time.Millisecond, func() error {
		if processAlive(pid) {
			return fmt.Errorf("helper %d still runs", pid)
		}
		return nil
	})
}

// Session changes reach OnTrigger (logon, lock, unlock; not logoff) and,
// with SessionEvents, the timeline.
func TestSessionChanges(t *testing.T) {
	trig := make(chan string, 8)
	s, ev := startSource(t, `{"idle_ms":0}`, Options{SessionEvents: true, OnTrigger: func(k string) { trig <- k }})
	wantKinds(t, ev, "active")
	at := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	for _, k := range []string{KindLogon, KindLock, "", KindUnlock, KindLogoff} {
		s.Notify(Change{Kind: k, Session: 2, At: at})
	}
	wantKinds(t, ev, "active,logon,lock,unlock,logoff")
	var got []string
	for range 3 {
		select {
		case k := <-trig:
			got = append(got, k)
		case <-time.After(wait):
			t.Fatal("trigger missing")
		}
	}
	if strings.Join(got, ",") != "logon,lock,unlock" {
		t.Errorf("triggers %v", got)
	}
	e := ev.all()[1]
	if e.Source != SourceSessionChange || e.EventRecordID != "logon:2:1767323045006" || string(e.Payload) != `{"session_id":2}` || !e.At.Equal(at) {
		t.Errorf("logon event %+v", e)
	}
}

// Without SessionEvents, session changes only trigger.
func TestSessionChangesNoEvents(t *testing.T) {
	trig := make(chan string, 8)
	s, ev := startSource(t, `{"idle_ms":0}`, Options{OnTrigger: func(k string) { trig <- k }})
	wantKinds(t, ev, "active")
	s.Notify(Change{Kind: KindLock})
	select {
	case k := <-trig:
		if k != KindLock {
			t.Errorf("trigger %q", k)
		}
	case <-time.After(wait):
		t.Fatal("no trigger")
	}
	if got := ev.kinds(); got != "active" {
		t.Errorf("events %q, want only active", got)
	}
}

// The helper exits when its stdin closes (the supervisor went away),
// running the real helper loop.
func TestHelperExitsOnStdinClose(t *testing.T) {
	exe, _ := os.Executable()
	o := &Options{HelperPath: exe, Sample: 20 * time.Millisecond}
	t.Setenv(fakeHelperEnv, "LOOP:1234")
	p, err := childLauncher{}.start(o, 0)
	if err != nil {
		t.Fatal(err)
	}
	cp := p.(*cmdProc)
	first := make(chan string, 1)
	readErr := make(chan error, 1)
	go func() {
		readErr <- readLines(cp.out, MaxLine, func(l []byte, err error) {
			select {
			case first <- string(l):
			default:
			}
		})
	}()
	// A line shows the loop runs; then close stdin: the helper must end.
	select {
	case l := <-first:
		if l != `{"idle_ms":1234}` {
			t.Errorf("helper printed %q", l)
		}
	case <-time.After(wait):
		cp.kill()
		t.Fatalf("no line from the helper; stderr %q", cp.tail.String())
	}
	if err := cp.in.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-readErr:
	case <-time.After(wait):
		cp.kill()
		t.Fatal("helper still running after its stdin closed")
	}
	if err := cp.cmd.Wait(); err != nil {
		t.Fatalf("helper exit: %v (stderr %q)", err, cp.tail.String())
	}
}

// With NoHelper no helper runs and nothing but session changes comes out.
func TestNoHelper(t *testing.T) {
	count := filepath.Join(natstest.TempDir(t), "starts")
	t.Setenv(fakeCountEnv, count)
	trig := make(chan string, 1)
	s, ev := startSource(t, `{"idle_ms":0}`, Options{NoHelper: true, StaleAfter: 10 * time.Millisecond, OnTrigger: func(k string) { trig <- k }})
	s.Notify(FromWTS(8, 1))
	select {
	case k := <-trig:
		if k != KindUnlock {
			t.Errorf("trigger %q", k)
		}
	case <-time.After(wait):
		t.Fatal("no trigger")
	}
	if _, err := os.Stat(count); err == nil || ev.kinds() != "" || s.Stats().HelperStarts != 0 {
		t.Errorf("a helper ran (%v) or events came out (%q)", err, ev.kinds())
	}
}

// A helper that flips the presence at every line is held to the burst,
// then one change per Threshold/2; the skipped readings are counted.
func TestTransitionsLimited(t *testing.T) {
	items := make([]string, 0, 40)
	for i := range 40 {
		items = append(items, fmt.Sprintf(`{"idle_ms":%d}`, i%2*300000))
	}
	s, ev := startSource(t, strings.Join(items, "|"), Options{Threshold: 5 * time.Minute})
	natstest.CheckFor(t, wait, 20*time.Millisecond, func() error {
		// 40 readings: 10 changes, 15 readings repeat the state, 15 are limited.
		if n := s.Stats().Limited; n != 15 {
			return fmt.Errorf("limited %d, want 15", n)
		}
		return nil
	})
	if got := ev.kinds(); got != strings.TrimSuffix(strings.Repeat("active,idle,", 5), ",") {
		t.Errorf("events %q, want the first 10 changes only", got)
	}
}

func TestBucket(t *testing.T) {
	b := newBucket(2, time.Second)
	t0 := time.Unix(1000, 0)
	if !b.take(t0) || !b.take(t0) || b.take(t0.Add(999*time.Millisecond)) {
		t.Fatal("burst of 2, then empty")
	}
	if !b.take(t0.Add(1000*time.Millisecond)) || b.take(t0.Add(1500*time.Millisecond)) {
		t.Fatal("one token per second")
	}
	if !b.take(t0.Add(time.Hour)) || !b.take(t0.Add(time.Hour)) || b.take(t0.Add(time.Hour)) {
		t.Fatal("refilled to the burst, not beyond")
	}
}

// A helper that floods its pipe is read at most one line per Sample/4: it
// blocks on the pipe instead of costing the agent CPU.
func TestHelperFloodPaced(t *testing.T) {
	const sample = 400 * time.Millisecond
	s, _ := startSource(t, "FLOOD:100000:x", Options{Sample: sample})
	natstest.CheckFor(t, wait, 10*time.Millisecond, func() error {
		if s.Stats().BadLines == 0 {
			return errors.New("no line read yet")
		}
		return nil
	})
	start := time.Now()
	natstest.CheckFor(t, wait, 50*time.Millisecond, func() error {
		if time.Since(start) < 2*time.Second {
			return errors.New("watching")
		}
		return nil
	})
	elapsed := time.Since(start)
	if n, most := s.Stats().BadLines, uint64(elapsed/(sample/4))+2; n > most {
		t.Errorf("%d lines read in %v, want at most %d (one per %v)", n, elapsed, most, sample/4)
	}
}

// A helper that keeps exiting without a reading goes stale: its restarts
// do not push the deadline.
func TestStaleAcrossRestarts(t *testing.T) {
	// The first start reports active; every later one (the count file
	// exists) exits at once.
	count := filepath.Join(natstest.TempDir(t), "starts")
	t.Setenv(fakeCountEnv, count)
	s, ev := startSource(t, `FIRST:{"idle_ms":0}|EXIT:1`, Options{StaleAfter: 2 * time.Second, backoffMin: 100 * time.Millisecond, backoffMax: 100 * time.Millisecond})
	wantKinds(t, ev, "active,idle")
	if n := s.Stats().HelperStarts; n < 2 {
		t.Errorf("helper started %d times, want 2 or more", n)
	}
}

// Idle reports the latest reading (plus the time since it), and nothing
// once the readings have stopped for StaleAfter: what the scheduler's
// idle requirement reads.
func TestIdleReading(t *testing.T) {
	s, ev := startSource(t, `{"idle_ms":400000}`, Options{StaleAfter: 2 * time.Second})
	if _, known := s.Idle(); known && len(ev.all()) == 0 {
		t.Error("Idle known before any reading")
	}
	wantKinds(t, ev, "idle")
	d, known := s.Idle()
	if !known || d < 400*time.Second || d > 430*time.Second {
		t.Errorf("Idle() = %v, %v; want about 400s, true", d, known)
	}
	natstest.CheckFor(t, wait, 50*time.Millisecond, func() error {
		if d, known := s.Idle(); known {
			return fmt.Errorf("Idle() = %v, true after the readings stopped", d)
		}
		return nil
	})
}
