package signing

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// TestTrackerReport: only changes are reported, with upstream's kind,
// source and {"from","to"} payload; a failed emit is retried.
func TestTrackerReport(t *testing.T) {
	var tr Tracker
	var got []wire.ObsEvent
	emit := func(ev wire.ObsEvent) error { got = append(got, ev); return nil }
	at := time.UnixMilli(1_800_000_000_000).UTC()

	steps := []struct {
		d        Decision
		reported bool
	}{
		{Decision{Outcome: OutcomeUnsigned, Allowed: true}, true},
		{Decision{Outcome: OutcomeUnsigned, Allowed: true}, false},
		{Decision{Outcome: OutcomeVerified, Kid: "k1", Allowed: true, Subject: subjA}, true},
		{Decision{Outcome: OutcomeUnknownKid, Kid: "k9", Reason: "kid not in keyring", Enforcing: true}, true},
		{Decision{Outcome: OutcomeUnknownKid, Kid: "k9", Enforcing: true}, false},
	}
	for i, s := range steps {
		n := len(got)
		if err := tr.Report(s.d, "req-1", at, emit); err != nil {
			t.Fatal(err)
		}
		if (len(got) > n) != s.reported {
			t.Fatalf("step %d: reported %v, want %v", i, len(got) > n, s.reported)
		}
	}
	if len(got) != 3 {
		t.Fatalf("%d events", len(got))
	}
	var p0 map[string]any
	if err := json.Unmarshal(got[0].Payload, &p0); err != nil {
		t.Fatal(err)
	}
	if from, ok := p0["from"]; !ok || from != nil || p0["to"] != "command_signature_absent" {
		t.Errorf("first payload %s: want from null", got[0].Payload)
	}
	ev := got[2]
	if ev.Kind != "command_signature_unknown_key" || ev.Source != "command_signature" || !ev.At.Equal(at) {
		t.Errorf("event %+v", ev)
	}
	var p Payload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		t.Fatal(err)
	}
	if p.From == nil || *p.From != "command_signature_ok" || p.To != "command_signature_unknown_key" ||
		p.Kid != "k9" || p.RequestID != "req-1" || !p.Enforcing || !p.Refused || p.Reason != "kid not in keyring" {
		t.Errorf("payload %s", ev.Payload)
	}
	if got := RecordID(ev.Kind, ev.At); got != "command_signature_unknown_key:1800000000000" {
		t.Errorf("RecordID %q", got)
	}

	// A failed emit does not count: the next command reports again.
	fail := errors.New("outbox full")
	d := Decision{Outcome: OutcomeInvalid}
	if err := tr.Report(d, "r", at, func(wire.ObsEvent) error { return fail }); !errors.Is(err, fail) {
		t.Fatalf("err %v", err)
	}
	if tr.Last() != OutcomeUnknownKid {
		t.Fatalf("last %q after a failed emit", tr.Last())
	}
	n := len(got)
	if err := tr.Report(d, "r", at, emit); err != nil || len(got) != n+1 {
		t.Fatalf("retry: %v, %d events", err, len(got)-n)
	}
}

func TestAuditEvent(t *testing.T) {
	at := time.UnixMilli(1_800_000_000_000).UTC()
	d := Decision{Outcome: OutcomeStale, Kid: "bg", Label: "break glass", Fingerprint: "0123456789abcdef",
		Reason: "old", Subject: subjA, At: at.Add(-time.Hour), Audit: true, Enforcing: true}
	ev := AuditEvent(d, "req-9", at)
	if ev.Kind != "command_signature_audit" || ev.Source != "command_signature" || !ev.At.Equal(at) {
		t.Errorf("event %+v", ev)
	}
	var p AuditPayload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		t.Fatal(err)
	}
	want := AuditPayload{Kid: "bg", Label: "break glass", Fingerprint: "0123456789abcdef", Outcome: "command_signature_stale",
		Reason: "old", RequestID: "req-9", Subject: subjA, SignedAtMs: at.Add(-time.Hour).UnixMilli(), Refused: true}
	if p != want {
		t.Errorf("payload %+v\nwant    %+v", p, want)
	}
	if id := AuditRecordID("req-9", at); id != "command_signature_audit:req-9:1800000000000" {
		t.Errorf("AuditRecordID %q", id)
	}
}

func TestOutcomeKinds(t *testing.T) {
	want := []string{"command_signature_ok", "command_signature_absent", "command_signature_unprovisioned",
		"command_signature_unknown_key", "command_signature_invalid", "command_signature_stale",
		"command_signature_clock_ahead", "command_signature_misaddressed", "command_signature_expired",
		"command_signature_envelope_rejected"}
	os := Outcomes()
	if len(os) != len(want) {
		t.Fatalf("%d outcomes", len(os))
	}
	for i, o := range os {
		if o.Kind() != want[i] {
			t.Errorf("%q.Kind() = %q, want %q", o, o.Kind(), want[i])
		}
	}
}

func TestOutcomeAdvice(t *testing.T) {
	for _, o := range Outcomes() {
		if a := o.Advice(); (a == "") != (o == OutcomeVerified) {
			t.Errorf("%s: advice %q", o, a)
		}
	}
	if a := OutcomeUnprovisioned.Advice(); !strings.Contains(a, keyringLocation()) {
		t.Errorf("unprovisioned advice %q does not name %s", a, keyringLocation())
	}
}

// TestTrackerPayloadUnescaped checks that the payload is written as
// serde_json writes strings: '<', '>' and '&' as themselves, not \u003c.
func TestTrackerPayloadUnescaped(t *testing.T) {
	var tr Tracker
	var got wire.ObsEvent
	d := Decision{Outcome: OutcomeUnknownKid, Kid: "k<1>&", Reason: "kid <k1> & co not in keyring", Enforcing: true}
	if err := tr.Report(d, "req-1", time.UnixMilli(1_800_000_000_000).UTC(), func(ev wire.ObsEvent) error { got = ev; return nil }); err != nil {
		t.Fatal(err)
	}
	want := `{"from":null,"to":"command_signature_unknown_key","kid":"k<1>&","reason":"kid <k1> & co not in keyring",` +
		`"request_id":"req-1","enforcing":true,"refused":true}`
	if string(got.Payload) != want {
		t.Errorf("payload %s\nwant    %s", got.Payload, want)
	}
}
