package signing

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// t0 is the signing time of the envelope tests.
var t0 = time.Unix(1_800_000_000, 0).UTC()

func at(secs int64) time.Time { return t0.Add(time.Duration(secs) * time.Second) }

const envCmd = `{"id":"echo","version":"1.0.0","request_id":"req-1","exec_id":"dep-1","shell":"sh","script":"echo hi","timeout_secs":30}`

// envelopeJSON builds an envelope body as upstream's serde writes it.
func envelopeJSON(target string, expires time.Time, cmd string) string {
	return fmt.Sprintf(`{"kind":"kanade.command.v2","target_pc_id":%q,"expires_at":%q,"command":%s}`,
		target, expires.Format(time.RFC3339Nano), cmd)
}

// TestCheckEnvelope follows upstream's envelope rules with signatures made
// per upstream's byte layout.
func TestCheckEnvelope(t *testing.T) {
	pub, priv := testKey(1)
	_, other := testKey(2)
	bgPub, bgPriv := testKey(3)
	bg := entry("bg", bgPub)
	bg.MaxAgeSecs = secs(300)
	rb := entry("rb", pub)
	rb.RequireBound = true
	ring := mustKeyring(t, entry("backend-1", pub), bg, rb)
	good := envelopeJSON("PC-A", at(3600), envCmd)
	withDeadline := envelopeJSON("PC-A", at(3600), strings.Replace(envCmd, `"timeout_secs":30`, `"timeout_secs":30,"deadline_at":"`+at(50).Format(time.RFC3339)+`"`, 1))

	cases := []struct {
		name  string
		body  string
		kid   string
		priv  []byte
		pc    string
		now   time.Time
		want  Outcome
		deadl time.Time
	}{
		{"verified", good, "backend-1", priv, "PC-A", at(10), OutcomeVerified, at(3600)},
		{"unbound form from a require_bound key", good, "rb", priv, "PC-A", at(10), OutcomeVerified, at(3600)},
		{"for another host", good, "backend-1", priv, "PC-B", at(10), OutcomeMisaddressed, time.Time{}},
		{"case is not folded", good, "backend-1", priv, "pc-a", at(10), OutcomeMisaddressed, time.Time{}},
		{"expiry boundary is inclusive", envelopeJSON("PC-A", at(100), envCmd), "backend-1", priv, "PC-A", at(100), OutcomeVerified, at(100)},
		{"expired", envelopeJSON("PC-A", at(100), envCmd), "backend-1", priv, "PC-A", at(101), OutcomeExpired, time.Time{}},
		{"the command's own deadline wins", withDeadline, "backend-1", priv, "PC-A", at(10), OutcomeVerified, at(50)},
		{"past the command's deadline", withDeadline, "backend-1", priv, "PC-A", at(60), OutcomeExpired, time.Time{}},
		{"exactly the ceiling", envelopeJSON("PC-A", at(7*24*3600), envCmd), "backend-1", priv, "PC-A", at(10), OutcomeVerified, at(7 * 24 * 3600)},
		{"over the ceiling", envelopeJSON("PC-A", at(7*24*3600+1), envCmd), "backend-1", priv, "PC-A", at(10), OutcomeEnvelopeRejected, time.Time{}},
		{"reversed", envelopeJSON("PC-A", at(-100), envCmd), "backend-1", priv, "PC-A", at(-200), OutcomeEnvelopeRejected, time.Time{}},
		{"clock allowance edge", envelopeJSON("PC-A", at(7200), envCmd), "backend-1", priv, "PC-A", at(-3600), OutcomeVerified, at(7200)},
		{"clock ahead", envelopeJSON("PC-A", at(7200), envCmd), "backend-1", priv, "PC-A", at(-3601), OutcomeClockAhead, time.Time{}},
		{"break-glass within its bound", good, "bg", bgPriv, "PC-A", at(299), OutcomeVerified, at(3600)},
		{"break-glass past its bound", good, "bg", bgPriv, "PC-A", at(301), OutcomeExpired, time.Time{}},
		{"default max age does not apply", envelopeJSON("PC-A", at(7*24*3600), envCmd), "backend-1", priv, "PC-A", at(6*24*3600 + 60), OutcomeVerified, at(7 * 24 * 3600)},
		{"forged", good, "backend-1", other, "PC-A", at(1_000_000), OutcomeInvalid, time.Time{}},
		{"no recipient", `{"kind":"kanade.command.v2","expires_at":"2027-01-01T00:00:00Z","command":` + envCmd + `}`, "backend-1", priv, "PC-A", at(1), OutcomeEnvelopeRejected, time.Time{}},
		{"null recipient", `{"kind":"kanade.command.v2","target_pc_id":null,"expires_at":"2027-01-01T00:00:00Z","command":` + envCmd + `}`, "backend-1", priv, "PC-A", at(1), OutcomeEnvelopeRejected, time.Time{}},
		{"no expiry", `{"kind":"kanade.command.v2","target_pc_id":"PC-A","command":` + envCmd + `}`, "backend-1", priv, "PC-A", at(1), OutcomeEnvelopeRejected, time.Time{}},
		{"expiry not a time", `{"kind":"kanade.command.v2","target_pc_id":"PC-A","expires_at":"soon","command":` + envCmd + `}`, "backend-1", priv, "PC-A", at(1), OutcomeEnvelopeRejected, time.Time{}},
		{"expiry a number", `{"kind":"kanade.command.v2","target_pc_id":"PC-A","expires_at":12345,"command":` + envCmd + `}`, "backend-1", priv, "PC-A", at(1), OutcomeEnvelopeRejected, time.Time{}},
		{"unknown field", `{"kind":"kanade.command.v2","target_pc_id":"PC-A","expires_at":"2027-01-01T00:00:00Z","extra":1,"command":` + envCmd + `}`, "backend-1", priv, "PC-A", at(1), OutcomeEnvelopeRejected, time.Time{}},
		{"no command", `{"kind":"kanade.command.v2","target_pc_id":"PC-A","expires_at":"2027-01-01T00:00:00Z"}`, "backend-1", priv, "PC-A", at(1), OutcomeEnvelopeRejected, time.Time{}},
		{"command not an object", `{"kind":"kanade.command.v2","target_pc_id":"PC-A","expires_at":"2027-01-01T00:00:00Z","command":"echo"}`, "backend-1", priv, "PC-A", at(1), OutcomeEnvelopeRejected, time.Time{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := upstreamSign(c.priv, c.kid, t0.UnixMilli(), []byte(c.body))
			for _, enforcing := range []bool{false, true} {
				d, env, err := NewVerifier(ring, enforcing).CheckEnvelope(c.pc, "commands.pc."+c.pc, hdr, []byte(c.body), c.now)
				if err != nil {
					t.Fatal(err)
				}
				if d.Outcome != c.want {
					t.Fatalf("outcome %q (%s), want %q", d.Outcome, d.Reason, c.want)
				}
				if d.Allowed != (c.want == OutcomeVerified) || (env != nil) != d.Allowed {
					t.Fatalf("envelopes are refused unless verified, enforcing or not: %+v %+v", d, env)
				}
				if env != nil && (!env.StartDeadline.Equal(c.deadl) || env.Command.RequestID != "req-1" || env.TargetPcID != c.pc) {
					t.Errorf("envelope %+v", env)
				}
			}
		})
	}

	// Tampering with any field fails the signature.
	hdr := upstreamSign(priv, "backend-1", t0.UnixMilli(), []byte(good))
	for _, r := range [][2]string{{"echo hi", "rm -rf x"}, {"PC-A", "PC-B"}, {at(3600).Format(time.RFC3339), "2099-01-01T00:00:00Z"}, {"req-1", "req-2"}} {
		tampered := strings.Replace(good, r[0], r[1], 1)
		if tampered == good {
			t.Fatalf("fixture lacks %s", r[0])
		}
		d, _, _ := NewVerifier(ring, false).CheckEnvelope("PC-B", subjB, hdr, []byte(tampered), at(10))
		if d.Outcome != OutcomeInvalid {
			t.Errorf("%s: %+v", r[0], d)
		}
	}
	// Unsigned, and an unknown kid with no keys.
	if d, _, _ := NewVerifier(ring, false).CheckEnvelope("PC-A", subjA, nil, []byte(good), at(10)); d.Outcome != OutcomeUnsigned || d.Allowed {
		t.Errorf("unsigned: %+v", d)
	}
	if d, _, _ := NewVerifier(nil, false).CheckEnvelope("PC-A", subjA, hdr, []byte(good), at(10)); d.Outcome != OutcomeUnprovisioned {
		t.Errorf("no keys: %+v", d)
	}
	// A subject-bound envelope is also accepted on its subject.
	bhdr := boundSign(priv, "backend-1", subjA, t0.UnixMilli(), []byte(good))
	if d, env, _ := NewVerifier(ring, false).CheckEnvelope("PC-A", subjA, bhdr, []byte(good), at(10)); d.Outcome != OutcomeVerified || env == nil {
		t.Errorf("bound envelope: %+v", d)
	}
}

// TestEnvelopeKind: a payload is an envelope when it is an object with a
// kind; an unknown kind is refused with ErrUnknownKind, before any
// signature work.
func TestEnvelopeKind(t *testing.T) {
	for doc, want := range map[string]bool{
		`{"kind":"kanade.command.v2"}`: true, `{"kind":null}`: true, `{"kind":7}`: true,
		envCmd: false, `[{"kind":1}]`: false, `{"kind":`: false, `null`: false, ``: false,
	} {
		if IsEnvelope([]byte(doc)) != want {
			t.Errorf("IsEnvelope(%s) = %v", doc, !want)
		}
	}
	_, priv := testKey(1)
	for _, kind := range []string{`"kanade.command.v3"`, `null`, `7`} {
		body := `{"kind":` + kind + `,"target_pc_id":"PC-A","expires_at":"2027-01-01T00:00:00Z","command":` + envCmd + `}`
		hdr := upstreamSign(priv, "backend-1", t0.UnixMilli(), []byte(body))
		d, env, err := NewVerifier(nil, false).CheckEnvelope("PC-A", subjA, hdr, []byte(body), at(1))
		if !errors.Is(err, ErrUnknownKind) || env != nil || d.Allowed {
			t.Errorf("kind %s: %v %+v", kind, err, d)
		}
	}
	var c map[string]any
	if json.Unmarshal([]byte(envelopeJSON("PC-A", t0, envCmd)), &c) != nil || c["kind"] != EnvelopeKindV2 {
		t.Fatal("fixture")
	}
	if got := CommandProtocols(); len(got) != 2 || got[0] != "legacy" || got[1] != "kanade.command.v2" {
		t.Errorf("CommandProtocols %q", got)
	}
}
