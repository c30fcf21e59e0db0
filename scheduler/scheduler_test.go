package scheduler

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/wire"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// harness is a Scheduler with a fake clock and a recording Submit.
type harness struct {
	*Scheduler
	clk  *clock
	mu   sync.Mutex
	cmds []*wire.Command
	fail error
}

func newHarness(t *testing.T, dir string, start time.Time, mut func(*Options)) *harness {
	t.Helper()
	h := &harness{clk: &clock{t: start}}
	opts := Options{
		Dir: dir, PcID: "pc-01", Now: h.clk.now, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Groups:     func() []string { return []string{"lab"} },
		BootTime:   func() (time.Time, error) { return start.Add(-time.Minute), nil },
		CPUPercent: func() (float64, bool) { return 0, false },
		Submit: func(_ context.Context, cmd *wire.Command) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.fail != nil {
				return h.fail
			}
			h.cmds = append(h.cmds, cmd)
			return nil
		},
	}
	if mut != nil {
		mut(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.Scheduler = s
	return h
}

func (h *harness) submitted() []*wire.Command {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*wire.Command(nil), h.cmds...)
}

func mustSchedule(t *testing.T, doc string) *wire.Schedule {
	t.Helper()
	s, err := wire.DecodeSchedule([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustJob(t *testing.T, doc string) *wire.Job {
	t.Helper()
	j, err := wire.DecodeJob([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return j
}

const testJob = `{"id":"j","version":"1.2.3","execute":{"shell":"sh","script":"echo hi","timeout":"30s"}}`

var t0 = time.Date(2026, 6, 10, 9, 0, 30, 0, time.UTC) // a Wednesday

// at runs one tick from the clock's time to t, moving the clock.
func (h *harness) at(t time.Time) {
	from := h.clk.now()
	h.clk.set(t)
	h.tick(from, t)
}

func TestPerPcOnceAndEvery(t *testing.T) {
	h := newHarness(t, natstest.TempDir(t), t0, nil)
	h.SetJob("j", mustJob(t, testJob), "")
	h.SetSchedule("once", mustSchedule(t, `{"id":"once","when":{"per_pc":"once"},"job_id":"j","target":{"all":true},"runs_on":"agent"}`))
	h.at(t0.Add(time.Minute)) // a poll boundary
	cmds := h.submitted()
	if len(cmds) != 1 {
		t.Fatalf("%d commands, want 1", len(cmds))
	}
	c := cmds[0]
	if c.ID != "j" || c.Version != "1.2.3" || c.Script != "echo hi" || c.TimeoutSecs != 30 || c.RequestID == "" || c.ExecID == "" || c.DeadlineAt != nil {
		t.Errorf("command %+v", c)
	}
	// A failed run is not a completion: the next poll fires again.
	h.Completed(c.RequestID, 1)
	h.at(t0.Add(2 * time.Minute))
	if n := len(h.submitted()); n != 2 {
		t.Fatalf("after exit 1: %d commands, want 2", n)
	}
	h.Completed(h.submitted()[1].RequestID, 0)
	h.at(t0.Add(3 * time.Minute))
	h.at(t0.Add(24 * time.Hour))
	if n := len(h.submitted()); n != 2 {
		t.Fatalf("per_pc once fired again after success: %d", n)
	}

	// every 1h: again only once an hour has passed since the success.
	h.SetSchedule("every", mustSchedule(t, `{"id":"every","when":{"per_pc":{"every":"1h"}},"job_id":"j","target":{"all":true},"runs_on":"agent"}`))
	base := t0.Add(25 * time.Hour)
	h.at(base)
	cmds = h.submitted()
	if len(cmds) != 3 {
		t.Fatalf("every: %d", len(cmds))
	}
	h.Completed(cmds[2].RequestID, 0)
	h.at(base.Add(30 * time.Minute))
	if n := len(h.submitted()); n != 3 {
		t.Fatalf("fired within the cooldown")
	}
	h.at(base.Add(61 * time.Minute))
	if n := len(h.submitted()); n != 4 {
		t.Fatalf("did not fire after the cooldown: %d", n)
	}
	// Between polls nothing fires.
	h.tick(base.Add(61*time.Minute+time.Second), base.Add(61*time.Minute+2*time.Second))
	if n := len(h.submitted()); n != 4 {
		t.Fatalf("fired between polls")
	}
}

func TestInFlightClaim(t *testing.T) {
	h := newHarness(t, natstest.TempDir(t), t0, nil)
	h.SetJob("j", mustJob(t, testJob), "")
	h.SetSchedule("s", mustSchedule(t, `{"id":"s","when":{"calendar":{"at":"09:05"}},"job_id":"j","target":{"all":true},"runs_on":"agent","tz":"utc"}`))
	sc := mustSchedule(t, `{"id":"s","when":{"calendar":{"at":"09:05"}},"job_id":"j","target":{"all":true},"runs_on":"agent","tz":"utc"}`)
	h.fire(sc, t0, "test")
	h.fire(sc, t0.Add(time.Second), "test") // the first has not completed
	if n := len(h.submitted()); n != 1 {
		t.Fatalf("%d commands while in flight, want 1", n)
	}
	// The claim lapses after timeout (30 s) + slack (60 s).
	h.fire(sc, t0.Add(91*time.Second), "test")
	if n := len(h.submitted()); n != 2 {
		t.Fatalf("stale claim not reclaimed: %d", n)
	}
	// The first run's late completion does not release the new claim.
	h.Completed(h.submitted()[0].RequestID, 0)
	h.fire(sc, t0.Add(92*time.Second), "test")
	if n := len(h.submitted()); n != 2 {
		t.Fatalf("late completion released the reclaimer's claim")
	}
	h.Completed(h.submitted()[1].RequestID, 0)
	h.fire(sc, t0.Add(93*time.Second), "test")
	if n := len(h.submitted()); n != 3 {
		t.Fatalf("completion did not release the claim")
	}
	// A refused submit releases the claim at once.
	h.Completed(h.submitted()[2].RequestID, 0)
	h.fail = errors.New("queue full")
	h.fire(sc, t0.Add(94*time.Second), "test")
	h.fail = nil
	h.fire(sc, t0.Add(95*time.Second), "test")
	if n := len(h.submitted()); n != 4 {
		t.Fatalf("refused submit kept the claim: %d", n)
	}
}

func TestCalendarFires(t *testing.T) {
	h := newHarness(t, natstest.TempDir(t), t0, nil)
	h.SetJob("j", mustJob(t, testJob), "")
	h.SetSchedule("cal", mustSchedule(t, `{"id":"cal","when":{"calendar":{"at":"09:05","days":["mon-fri"]}},"job_id":"j","target":{"all":true},"runs_on":"agent","tz":"utc"}`))
	if got := h.nextWake(t0); !got.Equal(t0.Add(maxWait)) { // the fire is 4.5 min away
		t.Errorf("nextWake %v", got)
	}
	h.at(t0.Add(4 * time.Minute))
	if n := len(h.submitted()); n != 0 {
		t.Fatalf("fired early")
	}
	h.at(time.Date(2026, 6, 10, 9, 5, 0, 0, time.UTC))
	if n := len(h.submitted()); n != 1 {
		t.Fatalf("did not fire at 09:05: %d", n)
	}
	h.Completed(h.submitted()[0].RequestID, 0)
	// Calendar fires again the next day (no dedup), not on Saturday.
	h.at(time.Date(2026, 6, 11, 9, 5, 1, 0, time.UTC))
	h.Completed(h.submitted()[1].RequestID, 0)
	h.at(time.Date(2026, 6, 13, 9, 5, 1, 0, time.UTC)) // Saturday: nothing due since Thursday's fire but Friday's
	if n := len(h.submitted()); n != 3 {
		t.Fatalf("%d fires, want 3 (Wed, Thu, Fri catch-up on wake)", n)
	}
	h.Completed(h.submitted()[2].RequestID, 0)
	h.at(time.Date(2026, 6, 14, 23, 0, 0, 0, time.UTC)) // Sunday
	if n := len(h.submitted()); n != 3 {
		t.Fatalf("fired on the weekend")
	}
	// A schedule for another agent never fires.
	h.SetSchedule("other", mustSchedule(t, `{"id":"other","when":{"calendar":{"at":"09:05"}},"job_id":"j","target":{"pcs":["pc-02"],"groups":["hq"]},"runs_on":"agent","tz":"utc"}`))
	h.SetSchedule("backend", mustSchedule(t, `{"id":"backend","when":{"calendar":{"at":"09:05"}},"job_id":"j","target":{"all":true},"tz":"utc"}`))
	h.SetSchedule("off", mustSchedule(t, `{"id":"off","when":{"calendar":{"at":"09:05"}},"job_id":"j","target":{"all":true},"runs_on":"agent","enabled":false,"tz":"utc"}`))
	h.SetSchedule("group", mustSchedule(t, `{"id":"group","when":{"calendar":{"at":"09:05"}},"job_id":"j","target":{"groups":["lab"]},"runs_on":"agent","tz":"utc"}`))
	h.SetSchedule("pc", mustSchedule(t, `{"id":"pc","when":{"calendar":{"at":"09:05"}},"job_id":"j","target":{"pcs":["pc-01"]},"runs_on":"agent","tz":"utc"}`))
	h.at(time.Date(2026, 6, 15, 9, 5, 0, 0, time.UTC)) // Monday
	ids := map[string]bool{}
	for _, c := range h.submitted()[3:] {
		ids[c.ExecID] = true
	}
	if n := len(h.submitted()); n != 6 { // cal, group, pc
		t.Fatalf("%d fires on Monday, want 6 total (cal, group, pc)", n)
	}
}

func TestNextCalendarFire(t *testing.T) {
	utc := func(y int, m time.Month, d, hh, mm int) time.Time { return time.Date(y, m, d, hh, mm, 0, 0, time.UTC) }
	from := utc(2026, 6, 1, 0, 0)
	for _, tc := range []struct {
		at   string
		days []string
		want []time.Time
	}{
		{"09:00", nil, []time.Time{utc(2026, 6, 1, 9, 0), utc(2026, 6, 2, 9, 0)}},
		{"09:00", []string{"mon-fri"}, []time.Time{utc(2026, 6, 1, 9, 0), utc(2026, 6, 2, 9, 0)}},
		{"00:00", []string{"sun"}, []time.Time{utc(2026, 6, 7, 0, 0), utc(2026, 6, 14, 0, 0)}},
		{"09:00", []string{"tue#2"}, []time.Time{utc(2026, 6, 9, 9, 0), utc(2026, 7, 14, 9, 0)}},
		{"22:00", []string{"friL"}, []time.Time{utc(2026, 6, 26, 22, 0), utc(2026, 7, 31, 22, 0)}},
		{"09:00", []string{"mon", "tue#2"}, []time.Time{utc(2026, 6, 1, 9, 0), utc(2026, 6, 8, 9, 0), utc(2026, 6, 9, 9, 0), utc(2026, 6, 15, 9, 0)}},
		{"2026-06-10 09:00", nil, []time.Time{utc(2026, 6, 10, 9, 0)}},
	} {
		c := &wire.CalendarSpec{At: tc.at, Days: tc.days}
		cur := from
		for i, want := range tc.want {
			got, ok := NextCalendarFire(c, wire.TzUTC, cur)
			if !ok || !got.Equal(want) {
				t.Errorf("%s %v #%d: %v %v, want %v", tc.at, tc.days, i, got, ok, want)
				break
			}
			cur = got // strictly after: the next one
		}
	}
	// A past one-shot never fires; an unparseable calendar never fires.
	if _, ok := NextCalendarFire(&wire.CalendarSpec{At: "2026-06-10 09:00"}, wire.TzUTC, utc(2026, 6, 10, 9, 0)); ok {
		t.Error("one-shot fired again")
	}
	if _, ok := NextCalendarFire(&wire.CalendarSpec{At: "25:00"}, wire.TzUTC, from); ok {
		t.Error("bad at fired")
	}
	// tz local: the wall clock of the host's zone.
	got, _ := NextCalendarFire(&wire.CalendarSpec{At: "09:00"}, wire.TzLocal, from)
	if l := got.In(time.Local); l.Hour() != 9 || l.Minute() != 0 {
		t.Errorf("local fire at %v", l)
	}
	if cr, err := LowerCalendar(&wire.CalendarSpec{At: "09:00", Days: []string{"mon-fri"}}); err != nil || cr != "0 0 9 * * 1,2,3,4,5" {
		t.Errorf("lowered %q %v", cr, err)
	}
	if cr, _ := LowerCalendar(&wire.CalendarSpec{At: "18:30"}); cr != "0 30 18 * * *" {
		t.Errorf("lowered %q", cr)
	}
}

func TestWindowSkipDatesActiveFreeze(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2026, 6, 9, h, m, 0, 0, time.UTC) }
	same := &wire.Constraints{Window: "09:00-17:00"}
	for _, tc := range []struct {
		t    time.Time
		want bool
	}{{at(8, 59), false}, {at(9, 0), true}, {at(16, 59), true}, {at(17, 0), false}} {
		if got := ConstraintsAllow(same, tc.t, time.UTC); got != tc.want {
			t.Errorf("09:00-17:00 at %v: %v", tc.t, got)
		}
	}
	cross := &wire.Constraints{Window: "22:00-05:00"}
	for _, tc := range []struct {
		t    time.Time
		want bool
	}{{at(22, 0), true}, {at(3, 0), true}, {at(5, 0), false}, {at(12, 0), false}, {at(21, 59), false}} {
		if got := ConstraintsAllow(cross, tc.t, time.UTC); got != tc.want {
			t.Errorf("22:00-05:00 at %v: %v", tc.t, got)
		}
	}
	if ConstraintsAllow(&wire.Constraints{Window: "22:00_05:00"}, at(23, 0), time.UTC) {
		t.Error("corrupt window allowed")
	}
	skip := &wire.Constraints{SkipDates: []string{"2026-06-09", "2026-12-25"}}
	if ConstraintsAllow(skip, at(12, 0), time.UTC) || !ConstraintsAllow(skip, at(12, 0).AddDate(0, 0, 1), time.UTC) {
		t.Error("skip_dates")
	}
	if ConstraintsAllow(&wire.Constraints{SkipDates: []string{"nope"}}, at(12, 0), time.UTC) {
		t.Error("corrupt skip date allowed")
	}
	// The wall date in tz decides: 2026-06-09 23:30 UTC is 06-10 in UTC+9.
	jst := time.FixedZone("JST", 9*3600)
	if !ConstraintsAllow(skip, at(23, 30), jst) {
		t.Error("skip date read in the wrong zone")
	}

	a := &wire.Active{From: "2026-07-01", Until: "2026-08-01"}
	for _, tc := range []struct {
		t    time.Time
		want bool
	}{
		{time.Date(2026, 6, 30, 23, 0, 0, 0, time.UTC), false},
		{time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), true},
		{time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC), false},
	} {
		if got := ActiveContains(a, tc.t, time.UTC); got != tc.want {
			t.Errorf("active at %v: %v", tc.t, got)
		}
	}
	if !ActiveContains(&wire.Active{From: "July 1st"}, at(0, 0), time.UTC) {
		t.Error("unparseable active bound must fail open")
	}

	now := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		f    wire.Freeze
		want bool
	}{
		{wire.Freeze{Tz: wire.TzUTC}, true},
		{wire.Freeze{From: "2026-12-20T00:00:00+00:00", Until: "2027-01-05", Tz: wire.TzUTC}, true},
		{wire.Freeze{Until: "2026-12-31", Tz: wire.TzUTC}, false},
		{wire.Freeze{From: "2027-01-01", Tz: wire.TzUTC}, false},
		{wire.Freeze{From: "not-a-date", Tz: wire.TzUTC}, true},
	} {
		if got := freezeActive(&tc.f, now); got != tc.want {
			t.Errorf("freeze %+v: %v", tc.f, got)
		}
	}
}

func TestFreezeStopsFires(t *testing.T) {
	dir := natstest.TempDir(t)
	h := newHarness(t, dir, t0, nil)
	h.SetJob("j", mustJob(t, testJob), "")
	sc := mustSchedule(t, `{"id":"s","when":{"per_pc":"once"},"job_id":"j","target":{"all":true},"runs_on":"agent"}`)
	h.SetSchedule("s", sc)
	for _, v := range []string{`{}`, `{"reason":"INC-1"`, `garbage`, ``, `{"until":"2099-01-01","tz":"utc"}`} {
		h.SetFreeze([]byte(v), true)
		h.fire(sc, t0, "test")
		if n := len(h.submitted()); n != 0 {
			t.Fatalf("freeze %q: fired", v)
		}
	}
	// The freeze survives a restart (catalog.json).
	h2 := newHarness(t, dir, t0, nil)
	h2.fire(sc, t0, "test")
	if n := len(h2.submitted()); n != 0 {
		t.Fatal("freeze forgotten after a restart")
	}
	h2.SetFreeze([]byte(`{"until":"2026-01-01","tz":"utc"}`), true) // thawed
	h2.fire(sc, t0, "test")
	if n := len(h2.submitted()); n != 1 {
		t.Fatal("thawed freeze still blocks")
	}
	h2.SetFreeze(nil, false)
	if h2.Frozen(t0) {
		t.Error("absent key frozen")
	}
}

func TestRequire(t *testing.T) {
	var ac, acKnown, net, netKnown, idleKnown, cpuKnown bool
	var idle time.Duration
	var cpu float64
	h := newHarness(t, natstest.TempDir(t), t0, func(o *Options) {
		o.ACPower = func() (bool, bool) { return ac, acKnown }
		o.NetworkUp = func() (bool, bool) { return net, netKnown }
		o.Idle = func() (time.Duration, bool) { return idle, idleKnown }
		o.CPUPercent = func() (float64, bool) { return cpu, cpuKnown }
	})
	twenty := 20.0
	all := &wire.Require{ACPower: true, Idle: "10m", CPUBelow: &twenty, Network: true}
	if !h.RequireMet(nil) || !h.RequireMet(&wire.Require{}) {
		t.Error("empty require not met")
	}
	if h.RequireMet(all) {
		t.Error("unknown state met")
	}
	ac, acKnown, net, netKnown, idleKnown, cpuKnown = true, true, true, true, true, true
	idle, cpu = 15*time.Minute, 5
	if !h.RequireMet(all) {
		t.Error("all met: false")
	}
	for name, mut := range map[string]func(){
		"battery":   func() { ac = false },
		"busy":      func() { cpu = 20 },
		"not idle":  func() { idle = 9 * time.Minute },
		"offline":   func() { net = false },
		"ac unread": func() { acKnown = false },
	} {
		ac, acKnown, net, idle, cpu = true, true, true, 15*time.Minute, 5
		mut()
		if h.RequireMet(all) {
			t.Errorf("%s: met", name)
		}
	}
	// An idle that does not parse is no requirement (upstream).
	idleKnown = false
	ac, acKnown = true, true
	if !h.RequireMet(&wire.Require{Idle: "garbage", ACPower: true}) {
		t.Error("garbage idle blocked")
	}
	// No Idle hook: an idle requirement is never met.
	h2 := newHarness(t, natstest.TempDir(t), t0, nil)
	if h2.RequireMet(&wire.Require{Idle: "1s"}) {
		t.Error("idle met without a hook")
	}
}

func TestStartupOncePerBoot(t *testing.T) {
	dir := natstest.TempDir(t)
	boot := t0.Add(-5 * time.Minute)
	mk := func(bootAt time.Time, now time.Time) *harness {
		return newHarness(t, dir, now, func(o *Options) {
			o.BootTime = func() (time.Time, error) { return bootAt, nil }
		})
	}
	h := mk(boot, t0)
	h.SetJob("j", mustJob(t, testJob), "")
	h.SetSchedule("boot", mustSchedule(t, `{"id":"boot","when":{"on":["startup"]},"job_id":"j","target":{"all":true},"runs_on":"agent"}`))
	h.SetSchedule("late", mustSchedule(t, `{"id":"late","when":{"on":["startup"]},"job_id":"j","target":{"all":true},"runs_on":"agent","starting_deadline":"2m"}`))
	if n := len(h.submitted()); n != 1 { // SetSchedule fires a new startup schedule; "late" is past its deadline
		t.Fatalf("%d startup fires, want 1", n)
	}
	h.Trigger(wire.TriggerStartup)
	if n := len(h.submitted()); n != 1 {
		t.Fatal("second trigger in the same boot fired")
	}
	// An agent restart in the same boot (boot time jittered by 30 s).
	h2 := mk(boot.Add(30*time.Second), t0.Add(time.Hour))
	h2.Trigger(wire.TriggerStartup)
	if n := len(h2.submitted()); n != 0 {
		t.Fatal("restart in the same boot fired again")
	}
	// A new boot, agent up within the deadline: both fire.
	nb := t0.Add(24 * time.Hour)
	h3 := mk(nb, nb.Add(time.Minute))
	h3.Trigger(wire.TriggerStartup)
	if n := len(h3.submitted()); n != 2 {
		t.Fatalf("new boot: %d fires, want 2", n)
	}
	for _, tc := range []struct {
		rec      int64
		has      bool
		uptime   time.Duration
		deadline time.Duration
		want     bool
	}{
		{0, false, time.Second, -1, true},
		{boot.Unix(), true, time.Second, -1, false},
		{boot.Unix() + 119, true, time.Second, -1, false},
		{boot.Unix() + 121, true, time.Second, -1, true},
		{0, false, 10 * time.Minute, 5 * time.Minute, false},
		{0, false, 5 * time.Minute, 5 * time.Minute, true},
	} {
		if got := ShouldFireStartup(tc.rec, tc.has, boot, tc.uptime, tc.deadline); got != tc.want {
			t.Errorf("%+v: %v", tc, got)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, markersFile)); err != nil {
		t.Error(err)
	}
}

func TestEventTriggersAndDebounce(t *testing.T) {
	h := newHarness(t, natstest.TempDir(t), t0, func(o *Options) { o.NetworkDebounce = 8 * time.Second })
	h.SetJob("j", mustJob(t, testJob), "")
	h.SetSchedule("sess", mustSchedule(t, `{"id":"sess","when":{"on":["logon","unlock"]},"job_id":"j","target":{"all":true},"runs_on":"agent"}`))
	h.SetSchedule("net", mustSchedule(t, `{"id":"net","when":{"on":["network_change"]},"job_id":"j","target":{"all":true},"runs_on":"agent"}`))
	h.Trigger(wire.TriggerLock)
	if n := len(h.submitted()); n != 0 {
		t.Fatal("lock fired a logon/unlock schedule")
	}
	h.Trigger(wire.TriggerLogon)
	if n := len(h.submitted()); n != 1 {
		t.Fatalf("logon: %d", n)
	}
	h.Trigger("bogus")
	h.Trigger(wire.TriggerNetworkChange)
	h.at(t0.Add(5 * time.Second))
	h.Trigger(wire.TriggerNetworkChange) // another change: the debounce restarts
	h.at(t0.Add(10 * time.Second))
	if n := len(h.submitted()); n != 1 {
		t.Fatal("network_change fired before the network settled")
	}
	h.at(t0.Add(14 * time.Second))
	if n := len(h.submitted()); n != 2 {
		t.Fatalf("network_change: %d fires, want 2", len(h.submitted()))
	}
	h.at(t0.Add(30 * time.Second))
	if n := len(h.submitted()); n != 2 {
		t.Fatal("network_change fired twice")
	}
}

func TestPersistedCatalogAndCompletions(t *testing.T) {
	dir := natstest.TempDir(t)
	h := newHarness(t, dir, t0, nil)
	h.ReplaceJobs(map[string]JobEntry{"j": {Job: mustJob(t, testJob)},
		"obj": {Job: mustJob(t, `{"id":"obj","version":"1","execute":{"shell":"sh","script_object":"obj/1","timeout":"5s"}}`), ScriptSHA256: "ab"}})
	h.ReplaceSchedules(map[string]*wire.Schedule{"s": mustSchedule(t, `{"id":"s","when":{"per_pc":"once"},"job_id":"j","target":{"all":true},"runs_on":"agent"}`)})
	h.at(t0.Add(time.Minute))
	h.Completed(h.submitted()[0].RequestID, 0)

	// A restart without a broker: the catalog and the completion are there.
	h2 := newHarness(t, dir, t0.Add(2*time.Minute), nil)
	if ids := h2.Schedules(); len(ids) != 1 || ids[0] != "s" {
		t.Fatalf("schedules after restart: %v", ids)
	}
	if je, ok := h2.Job("obj"); !ok || je.ScriptSHA256 != "ab" {
		t.Fatalf("job after restart: %+v", je)
	}
	h2.at(t0.Add(3 * time.Minute))
	if n := len(h2.submitted()); n != 0 {
		t.Fatal("per_pc once ran again after a restart")
	}
	// A schedule dropped from a full snapshot is gone.
	h2.ReplaceSchedules(map[string]*wire.Schedule{})
	if len(h2.Schedules()) != 0 {
		t.Error("snapshot did not drop the schedule")
	}
	// A corrupt state file starts empty, not fails.
	if err := os.WriteFile(filepath.Join(dir, catalogFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	h3 := newHarness(t, dir, t0, nil)
	if len(h3.Schedules()) != 0 {
		t.Error("corrupt catalog read")
	}
}

func TestBuildCommand(t *testing.T) {
	sc := mustSchedule(t, `{"id":"s","when":{"per_pc":"once"},"job_id":"j","target":{"all":true},"runs_on":"agent","jitter":"30s","on_failure":{"retry":{"max":2,"backoff":"1m"}}}`)
	j := mustJob(t, `{"id":"j","version":"2","execute":{"shell":"powershell","script_object":"j/2","timeout":"soon","run_as":"user","cwd":"C:\\x","bypass_local_limit":true},`+
		`"emit":{"type":"events"},"staleness":{"mode":"unchecked"},"check":{"name":"c"},"finalize":{"shell":"powershell","script":"x"}}`)
	if _, err := BuildCommand(sc, JobEntry{Job: j}, t0); !errors.Is(err, ErrJob) {
		t.Errorf("script_object without digest: %v", err)
	}
	sha := "deadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef"
	c, err := BuildCommand(sc, JobEntry{Job: j, ScriptSHA256: sha}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if c.ScriptObject != "j/2" || c.ScriptObjectSHA256 != sha || c.TimeoutSecs != 60 || c.JitterSecs != 30 || c.RunAs != "user" ||
		c.Cwd != `C:\x` || !c.BypassLocalLimit || c.Emit == nil || c.Staleness.Mode != "unchecked" || c.Check == nil || c.Check.Name != "c" ||
		c.Retry == nil || c.Retry.Max != 2 || c.Retry.BackoffSecs != 60 || c.Finalize == nil || c.Finalize.Script != "x" {
		t.Errorf("%+v", c)
	}
	if c.DeadlineAt != nil {
		t.Errorf("deadline_at %v without starting_deadline", c.DeadlineAt)
	}
	sc.StartingDeadline = "5m"
	if c, err := BuildCommand(sc, JobEntry{Job: j, ScriptSHA256: sha}, t0); err != nil || c.DeadlineAt == nil || !c.DeadlineAt.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("starting_deadline 5m: %v %v", c, err)
	}
	sc.StartingDeadline = "soon"
	if _, err := BuildCommand(sc, JobEntry{Job: j, ScriptSHA256: sha}, t0); !errors.Is(err, ErrJob) {
		t.Errorf("bad starting_deadline: %v", err)
	}
	if got := claimTTL(c); got != 30*time.Second+60*time.Second+60*time.Second+2*(60*time.Second+60*time.Second) {
		t.Errorf("claim TTL %v", got)
	}
}

// skips records Options.Skip calls.
type skips struct {
	mu    sync.Mutex
	cmds  []*wire.Command
	notes []string
	fail  error
}

func (k *skips) skip(_ context.Context, cmd *wire.Command, note string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		return k.fail
	}
	k.cmds = append(k.cmds, cmd)
	k.notes = append(k.notes, note)
	return nil
}

func (k *skips) n() int { k.mu.Lock(); defer k.mu.Unlock(); return len(k.cmds) }

// A requirement this agent cannot sense is reported once per schedule
// (a skipped result, exit 122), not run and not recorded; the schedule
// runs once the requirement can be sensed.
func TestRequireUnsupportedReportedOnce(t *testing.T) {
	var k skips
	var idleKnown, acKnown, acOn bool
	acKnown, acOn = true, true
	h := newHarness(t, natstest.TempDir(t), t0, func(o *Options) {
		o.Skip = k.skip
		o.ACPower = func() (bool, bool) { return acOn, acKnown }
		o.Idle = func() (time.Duration, bool) { return time.Hour, idleKnown }
	})
	h.SetJob("j", mustJob(t, testJob), "")
	h.SetSchedule("s", mustSchedule(t, `{"id":"s","when":{"per_pc":"once"},"job_id":"j","target":{"all":true},"runs_on":"agent","constraints":{"require":{"idle":"10m","ac_power":true}}}`))
	h.at(t0.Add(time.Minute))
	if k.n() != 1 || len(h.submitted()) != 0 {
		t.Fatalf("%d skips, %d commands; want 1, 0", k.n(), len(h.submitted()))
	}
	c := k.cmds[0]
	if c.ID != "j" || c.Version != "1.2.3" || c.RequestID == "" || c.ExecID == "" || c.RequestID == c.ExecID {
		t.Errorf("skip command %+v", c)
	}
	if want := UnsupportedNote("constraints.require idle cannot be sensed on this agent"); k.notes[0] != want {
		t.Errorf("note %q, want %q", k.notes[0], want)
	}
	if !strings.HasPrefix(k.notes[0], "kanade-agent: skipped: constraints.require idle cannot be sensed on this agent (") {
		t.Errorf("note %q", k.notes[0])
	}
	// Still unsupported: skipped silently, the next polls too.
	h.at(t0.Add(2 * time.Minute))
	h.at(t0.Add(3 * time.Minute))
	if k.n() != 1 || len(h.submitted()) != 0 {
		t.Fatalf("%d skips, %d commands after more polls; want 1, 0", k.n(), len(h.submitted()))
	}
	if _, ok := h.LastCompletion("s", "j"); ok {
		t.Fatal("an unsupported fire recorded a completion")
	}
	// Another reason is reported again.
	acKnown = false
	h.at(t0.Add(4 * time.Minute))
	if k.n() != 2 || !strings.Contains(k.notes[1], "constraints.require ac_power, idle cannot") {
		t.Fatalf("%d skips %q; want a second naming ac_power, idle", k.n(), k.notes)
	}
	// Readable but unmet: a silent skip.
	acKnown, acOn, idleKnown = true, false, true
	h.at(t0.Add(5 * time.Minute))
	if n := len(h.submitted()); n != 0 || k.n() != 2 {
		t.Fatalf("%d commands, %d skips on battery; want 0, 2", n, k.n())
	}
	// Supported and met: it runs.
	acOn = true
	h.at(t0.Add(6 * time.Minute))
	if n := len(h.submitted()); n != 1 || k.n() != 2 {
		t.Fatalf("%d commands, %d skips once supported; want 1, 2", n, k.n())
	}
	h.Completed(h.submitted()[0].RequestID, 0)
	if _, ok := h.LastCompletion("s", "j"); !ok {
		t.Fatal("no completion after the run")
	}
}

// A skipped result that was not stored is reported again at the next fire;
// a deleted schedule forgets its report.
func TestRequireUnsupportedRetriedWhenNotStored(t *testing.T) {
	k := skips{fail: errors.New("outbox full")}
	h := newHarness(t, natstest.TempDir(t), t0, func(o *Options) { o.Skip = k.skip })
	h.SetJob("j", mustJob(t, testJob), "")
	doc := `{"id":"s","when":{"per_pc":"once"},"job_id":"j","target":{"all":true},"runs_on":"agent","constraints":{"require":{"cpu_below":50}}}`
	h.SetSchedule("s", mustSchedule(t, doc)) // the harness's CPU is never known
	h.at(t0.Add(time.Minute))
	k.mu.Lock()
	k.fail = nil
	k.mu.Unlock()
	h.at(t0.Add(2 * time.Minute))
	h.at(t0.Add(3 * time.Minute))
	if k.n() != 1 || !strings.Contains(k.notes[0], "cpu_below") {
		t.Fatalf("%d skips stored, want 1: %q", k.n(), k.notes)
	}
	h.SetSchedule("s", nil)
	h.SetSchedule("s", mustSchedule(t, doc))
	h.at(t0.Add(4 * time.Minute))
	if k.n() != 2 {
		t.Fatalf("%d skips after the schedule was recreated, want 2", k.n())
	}
	if len(h.submitted()) != 0 {
		t.Fatal("an unsupported schedule ran")
	}
}

// A when.on kind this host never emits is reported once per schedule; once
// the host program triggers it, it is emitted and fires.
func TestEventUnsupportedReportedOnce(t *testing.T) {
	var k skips
	h := newHarness(t, natstest.TempDir(t), t0, func(o *Options) {
		o.Skip = k.skip
		o.Events = []string{wire.TriggerStartup}
	})
	h.SetJob("j", mustJob(t, testJob), "")
	h.SetSchedule("sess", mustSchedule(t, `{"id":"sess","when":{"on":["logon","startup","lock"]},"job_id":"j","target":{"all":true},"runs_on":"agent"}`))
	startups := len(h.submitted()) // a new startup schedule fires in this boot
	h.at(t0.Add(time.Minute))
	h.at(t0.Add(2 * time.Minute))
	if k.n() != 1 {
		t.Fatalf("%d skips, want 1", k.n())
	}
	if want := UnsupportedNote("when.on logon, lock is never emitted on this agent"); k.notes[0] != want {
		t.Errorf("note %q, want %q", k.notes[0], want)
	}
	if k.cmds[0].ID != "j" || len(h.submitted()) != startups {
		t.Errorf("skip %+v, %d commands", k.cmds[0], len(h.submitted()))
	}
	h.Trigger(wire.TriggerLogon)
	if n := len(h.submitted()); n != startups+1 {
		t.Fatalf("logon: %d commands, want %d", n, startups+1)
	}
	if got := h.Unsourced([]string{wire.TriggerLogon, wire.TriggerLock}); len(got) != 1 || got[0] != wire.TriggerLock {
		t.Errorf("unsourced %q, want [lock]", got)
	}
	// Frozen: not reported.
	h.SetSchedule("other", mustSchedule(t, `{"id":"other","when":{"on":["unlock"]},"job_id":"j","target":{"all":true},"runs_on":"agent"}`))
	h.SetFreeze([]byte(`{}`), true)
	h.at(t0.Add(3 * time.Minute))
	if k.n() != 1 {
		t.Fatalf("%d skips while frozen, want 1", k.n())
	}
}

// The default events: Windows emits the session kinds, Linux does not.
func TestDefaultEvents(t *testing.T) {
	has := func(k string) bool { return slices.Contains(DefaultEvents, k) }
	if !has(wire.TriggerStartup) {
		t.Error("startup not emitted")
	}
	switch runtime.GOOS {
	case "windows":
		for _, k := range wire.Triggers {
			if !has(k) {
				t.Errorf("%s not emitted on windows", k)
			}
		}
	case "linux":
		if has(wire.TriggerLogon) || has(wire.TriggerLock) || has(wire.TriggerUnlock) || !has(wire.TriggerNetworkChange) {
			t.Errorf("linux events %q", DefaultEvents)
		}
	}
}

// A per_pc every that does not parse skips every fire, the first too, as
// upstream.
func TestInvalidEverySkipsFirstFire(t *testing.T) {
	h := newHarness(t, natstest.TempDir(t), t0, nil)
	h.SetJob("j", mustJob(t, testJob), "")
	h.SetSchedule("bad", mustSchedule(t, `{"id":"bad","when":{"per_pc":{"every":"6x"}},"job_id":"j","target":{"all":true},"runs_on":"agent"}`))
	h.at(t0.Add(time.Minute))
	h.at(t0.Add(2 * time.Minute))
	if n := len(h.submitted()); n != 0 {
		t.Fatalf("%d commands from an every that does not parse, want 0", n)
	}
}

// A schedule's starting_deadline becomes the command's deadline_at, from
// the fire's instant (upstream's local_starting_deadline); one that does
// not parse skips the fire.
func TestStartingDeadlineIsDeadlineAt(t *testing.T) {
	h := newHarness(t, natstest.TempDir(t), t0, nil)
	h.SetJob("j", mustJob(t, testJob), "")
	h.SetSchedule("s", mustSchedule(t, `{"id":"s","when":{"per_pc":"once"},"job_id":"j","target":{"all":true},"runs_on":"agent","starting_deadline":"10m"}`))
	h.SetSchedule("bad", mustSchedule(t, `{"id":"bad","when":{"per_pc":"once"},"job_id":"j","target":{"all":true},"runs_on":"agent","starting_deadline":"soon"}`))
	h.at(t0.Add(time.Minute))
	cmds := h.submitted()
	if len(cmds) != 1 {
		t.Fatalf("%d commands, want 1 (the bad starting_deadline skips)", len(cmds))
	}
	if d := cmds[0].DeadlineAt; d == nil || !d.Equal(t0.Add(11*time.Minute)) {
		t.Fatalf("deadline_at %v, want %v", d, t0.Add(11*time.Minute))
	}
}

// A claim past its lifetime whose command is still queued or running
// (Options.Live) is kept, as upstream's live-fire guard; once the command
// is gone it is reclaimed.
func TestInFlightClaimKeptWhileLive(t *testing.T) {
	var mu sync.Mutex
	live := map[string]bool{}
	h := newHarness(t, natstest.TempDir(t), t0, func(o *Options) {
		o.Live = func(id string) bool { mu.Lock(); defer mu.Unlock(); return live[id] }
	})
	h.SetJob("j", mustJob(t, testJob), "")
	sc := mustSchedule(t, `{"id":"s","when":{"on":["logon"]},"job_id":"j","target":{"all":true},"runs_on":"agent"}`)
	h.fire(sc, t0, "test")
	first := h.submitted()[0].RequestID
	mu.Lock()
	live[first] = true
	mu.Unlock()
	h.fire(sc, t0.Add(10*time.Minute), "test") // past 30 s + 60 s, still queued
	if n := len(h.submitted()); n != 1 {
		t.Fatalf("%d commands while the first is live, want 1", n)
	}
	mu.Lock()
	live[first] = false
	mu.Unlock()
	h.fire(sc, t0.Add(11*time.Minute), "test")
	if n := len(h.submitted()); n != 2 {
		t.Fatalf("%d commands once the first is gone, want 2", n)
	}
}

// The claim is the schedule's, as upstream's in_flight (by schedule id): a
// schedule edited to another job while its run is in flight does not fire
// the new job alongside it.
func TestInFlightClaimIsPerSchedule(t *testing.T) {
	h := newHarness(t, natstest.TempDir(t), t0, nil)
	h.SetJob("j", mustJob(t, testJob), "")
	h.SetJob("j2", mustJob(t, `{"id":"j2","version":"1","execute":{"shell":"sh","script":"echo 2","timeout":"30s"}}`), "")
	h.fire(mustSchedule(t, `{"id":"s","when":{"on":["logon"]},"job_id":"j","target":{"all":true},"runs_on":"agent"}`), t0, "test")
	edited := mustSchedule(t, `{"id":"s","when":{"on":["logon"]},"job_id":"j2","target":{"all":true},"runs_on":"agent"}`)
	h.SetSchedule("s", edited)
	h.fire(edited, t0.Add(time.Second), "test")
	if n := len(h.submitted()); n != 1 {
		t.Fatalf("%d commands while the schedule's run is in flight, want 1", n)
	}
	h.Completed(h.submitted()[0].RequestID, 0)
	if _, ok := h.LastCompletion("s", "j"); !ok {
		t.Fatal("completion not recorded under s::j")
	}
	h.fire(edited, t0.Add(2*time.Second), "test")
	if c := h.submitted(); len(c) != 2 || c[1].ID != "j2" {
		t.Fatalf("after completion: %d commands", len(c))
	}
}
