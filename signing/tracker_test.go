package signing

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/kanade/kanade-agent/wire"
)

func TestTrackerObserve(t *testing.T) {
	var tr Tracker
	if tr.Last() != "" {
		t.Fatal("Last before any observation")
	}
	steps := []struct {
		o       Outcome
		changed bool
	}{
		{OutcomeVerified, true}, // the first outcome after start is reported
		{OutcomeVerified, false},
		{OutcomeVerified, false},
		{OutcomeUnsigned, true},
		{OutcomeUnsigned, false},
		{OutcomeInvalid, true},
		{OutcomeVerified, true},
		{OutcomeClockAhead, true},
		{OutcomeStale, true},
		{OutcomeUnknownKid, true},
		{OutcomeUnknownKid, false},
	}
	for i, s := range steps {
		kind, changed := tr.Observe(s.o)
		if kind != "command_signature_"+string(s.o) || changed != s.changed {
			t.Errorf("step %d Observe(%s) = %q, %v; want changed %v", i, s.o, kind, changed, s.changed)
		}
		if tr.Last() != s.o {
			t.Errorf("step %d: Last = %s", i, tr.Last())
		}
	}
}

func TestOutcomeKinds(t *testing.T) {
	want := []string{
		"command_signature_verified", "command_signature_unsigned", "command_signature_unknown_kid",
		"command_signature_invalid", "command_signature_stale", "command_signature_clock_ahead",
	}
	for i, o := range Outcomes() {
		if o.Kind() != want[i] || o.String() != strings.TrimPrefix(want[i], KindPrefix) {
			t.Errorf("%s: Kind %q", o, o.Kind())
		}
	}
}

// TestTrackerConcurrent checks that, however observations interleave, each
// reported change differs from the one before; run with -race.
func TestTrackerConcurrent(t *testing.T) {
	var tr Tracker
	var mu sync.Mutex
	var wg sync.WaitGroup
	changes := 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				o := OutcomeVerified
				if (i+g)%7 == 0 {
					o = OutcomeUnsigned
				}
				if _, changed := tr.Observe(o); changed {
					mu.Lock()
					changes++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if changes < 1 {
		t.Fatal("no change reported")
	}
}

func TestTrackerTransition(t *testing.T) {
	f := newFixture(t)
	v := NewVerifier(f.keyring, true)
	var tr Tracker
	at := f.now

	ev, changed := tr.Transition(v.Check(f.signed(nil), f.body, f.now), "r1", at)
	if !changed || ev.Kind != "command_signature_verified" || ev.Source != wire.SourceCommandSign || !ev.At.Equal(at) || ev.PcID != "" {
		t.Fatalf("first: %+v %v", ev, changed)
	}
	if err := ev.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, changed := tr.Transition(v.Check(f.signed(nil), f.body, f.now), "r2", at); changed {
		t.Fatal("verified twice reported as a change")
	}

	hostileKid := strings.Repeat("\xff", 500)
	d := v.Check(Sign(f.other, hostileKid, f.now, f.body), f.body, f.now)
	ev, changed = tr.Transition(d, strings.Repeat("r", 1000), at)
	if !changed || ev.Kind != "command_signature_invalid" {
		t.Fatalf("hostile kid: %+v %v", ev, changed)
	}
	var p Payload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		t.Fatal(err)
	}
	if p.Outcome != OutcomeInvalid || p.Previous != OutcomeVerified || !p.Refused || !p.Enforcing || p.Reason == "" {
		t.Errorf("payload %+v", p)
	}
	if len(p.RequestID) > 64 || strings.Contains(string(ev.Payload), strings.Repeat("r", 100)) {
		t.Errorf("payload echoes the whole request id: %s", ev.Payload)
	}

	v.SetEnforcing(false)
	ev, _ = tr.Transition(v.Check(nil, f.body, f.now), "r4", at)
	p = Payload{}
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		t.Fatal(err)
	}
	want := Payload{Outcome: OutcomeUnsigned, Previous: OutcomeInvalid, Reason: "no Kanade-Sig header", RequestID: "r4"}
	if p != want {
		t.Errorf("payload %+v, want %+v", p, want)
	}
	if got := string(ev.Payload); got != `{"outcome":"unsigned","previous":"invalid","reason":"no Kanade-Sig header","request_id":"r4","enforcing":false,"refused":false}` {
		t.Errorf("payload JSON %s", got)
	}
	if tr.Last() != OutcomeUnsigned {
		t.Errorf("Last = %s", tr.Last())
	}
}
