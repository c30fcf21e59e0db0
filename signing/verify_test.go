package signing

import (
	"crypto/ed25519"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

const (
	subjA = "commands.pc.PC-A"
	subjB = "commands.pc.PC-B"
)

// TestCheckOutcomes covers every outcome, with signatures made per
// upstream's byte layout (upstreamSign) and the bound layout (boundSign).
func TestCheckOutcomes(t *testing.T) {
	pub1, priv1 := testKey(1)
	_, priv2 := testKey(2)
	pubBG, privBG := testKey(3)
	pubZero, privZero := testKey(4)
	pubRB, privRB := testKey(5)
	pubHuge, privHuge := testKey(6)
	now := time.UnixMilli(1_800_000_000_000)
	nowMs := now.UnixMilli()
	body := []byte(`{"id":"adhoc-run","request_id":"r1","script":"echo hi"}`)

	bg := entry("break-glass", pubBG)
	bg.MaxAgeSecs = secs(300)
	zero := entry("zero", pubZero)
	zero.MaxAgeSecs = secs(0)
	rb := entry("bound-only", pubRB)
	rb.RequireBound = true
	huge := entry("huge", pubHuge)
	huge.MaxAgeSecs = secs(1 << 63)
	ring := mustKeyring(t, entry("backend-1", pub1), bg, zero, rb, huge)

	up := upstreamSign(priv1, "backend-1", nowMs, body)
	bound := boundSign(priv1, "backend-1", subjA, nowMs, body)
	day := int64(24 * time.Hour / time.Millisecond)
	with := func(h nats.Header, name string, vals ...string) nats.Header {
		h = clone(h)
		if vals == nil {
			delete(h, name)
		} else {
			h[name] = vals
		}
		return h
	}

	cases := []struct {
		name    string
		ring    *Keyring
		subject string
		hdr     nats.Header
		body    []byte
		want    Outcome
		reason  string // a substring of Decision.Reason
	}{
		{"nil header", ring, subjA, nil, body, OutcomeUnsigned, ""},
		{"unrelated headers", ring, subjA, nats.Header{"Other": {"x"}}, body, OutcomeUnsigned, ""},
		{"upstream form", ring, subjA, up, body, OutcomeVerified, ""},
		{"upstream form on another subject", ring, subjB, up, body, OutcomeVerified, ""},
		{"upstream form without alg", ring, subjA, with(up, HeaderAlg), body, OutcomeVerified, ""},
		{"bound form", ring, subjA, bound, body, OutcomeVerified, ""},
		{"bound form without subject hint", ring, subjA, with(bound, HeaderSubject), body, OutcomeVerified, ""},
		{"bound on kill subject", ring, "kill.e1", boundSign(priv1, "backend-1", "kill.e1", nowMs, nil), nil, OutcomeVerified, ""},
		{"bound on the wrong subject", ring, subjB, bound, body, OutcomeMisaddressed, "commands.pc.PC-A"},
		{"bound on the wrong subject, hint removed", ring, subjB, with(bound, HeaderSubject), body, OutcomeInvalid, "does not verify"},
		{"bound, forged hint", ring, subjB, with(bound, HeaderSubject, "commands.pc.PC-C"), body, OutcomeInvalid, "does not verify"},
		{"bound, tampered body", ring, subjA, bound, append([]byte(nil), append(body, ' ')...), OutcomeInvalid, "does not verify"},
		{"downgrade: bound relabelled ed25519", ring, subjA, with(bound, HeaderAlg, AlgEd25519), body, OutcomeInvalid, "does not verify"},
		{"downgrade: bound with alg removed", ring, subjA, with(bound, HeaderAlg), body, OutcomeInvalid, "does not verify"},
		{"upgrade: upstream relabelled bound", ring, subjA, with(up, HeaderAlg, AlgEd25519Subject), body, OutcomeInvalid, "does not verify"},
		{"no keys", &Keyring{}, subjA, up, body, OutcomeUnprovisioned, "no command keys"},
		{"no keys, bound", nil, subjA, bound, body, OutcomeUnprovisioned, ""},
		{"unknown kid", ring, subjA, upstreamSign(priv2, "backend-2", nowMs, body), body, OutcomeUnknownKid, "not in keyring"},
		{"empty kid", ring, subjA, upstreamSign(priv1, "", nowMs, body), body, OutcomeUnknownKid, ""},
		{"wrong key under a known kid", ring, subjA, upstreamSign(priv2, "backend-1", nowMs, body), body, OutcomeInvalid, "does not verify"},
		{"tampered body", ring, subjA, up, []byte(`{"id":"adhoc-run","request_id":"r1","script":"rm -rf /"}`), OutcomeInvalid, "does not verify"},
		{"tampered time", ring, subjA, with(up, HeaderAt, strconv.FormatInt(nowMs+1, 10)), body, OutcomeInvalid, "does not verify"},
		{"missing kid", ring, subjA, with(up, HeaderKid), body, OutcomeInvalid, "missing Kanade-Sig-Kid"},
		{"missing sig", ring, subjA, with(up, HeaderSig), body, OutcomeInvalid, "missing Kanade-Sig header"},
		{"missing at", ring, subjA, with(up, HeaderAt), body, OutcomeInvalid, "missing Kanade-Sig-At"},
		{"alg only", ring, subjA, nats.Header{HeaderAlg: {"ed25519"}}, body, OutcomeInvalid, "missing"},
		{"at only", ring, subjA, nats.Header{HeaderAt: {"1"}}, body, OutcomeInvalid, "missing"},
		{"subject hint only", ring, subjA, nats.Header{HeaderSubject: {subjA}}, body, OutcomeInvalid, "missing"},
		{"at not a number", ring, subjA, with(up, HeaderAt, "yesterday"), body, OutcomeInvalid, HeaderAt},
		{"at with space", ring, subjA, with(up, HeaderAt, " "+strconv.FormatInt(nowMs, 10)), body, OutcomeInvalid, HeaderAt},
		{"at past year 9999", ring, subjA, with(up, HeaderAt, "253402300800000"), body, OutcomeInvalid, HeaderAt},
		{"unsupported alg", ring, subjA, with(up, HeaderAlg, "hmac-sha256"), body, OutcomeInvalid, "unsupported"},
		{"repeated sig", ring, subjA, with(up, HeaderSig, up[HeaderSig][0], up[HeaderSig][0]), body, OutcomeInvalid, "repeated"},
		{"repeated kid", ring, subjA, with(up, HeaderKid, "backend-1", "backend-1"), body, OutcomeInvalid, "repeated"},
		{"repeated alg", ring, subjA, with(up, HeaderAlg, "ed25519", "ed25519"), body, OutcomeInvalid, "repeated"},
		{"sig not base64", ring, subjA, with(up, HeaderSig, strings.Repeat("!", sigB64Len)), body, OutcomeInvalid, "base64"},
		{"sig too short", ring, subjA, with(up, HeaderSig, "AAAA"), body, OutcomeInvalid, "bytes"},
		{"kid too long", ring, subjA, with(up, HeaderKid, strings.Repeat("k", MaxKidLen+1)), body, OutcomeInvalid, "at most"},
		{"require_bound refuses upstream form", ring, subjA, upstreamSign(privRB, "bound-only", nowMs, body), body, OutcomeInvalid, "subject-bound"},
		{"require_bound accepts bound form", ring, subjA, boundSign(privRB, "bound-only", subjA, nowMs, body), body, OutcomeVerified, ""},

		// Time: upstream's break-glass bound on both sides (unbound form).
		{"break-glass inside", ring, subjA, upstreamSign(privBG, "break-glass", nowMs-60_000, body), body, OutcomeVerified, ""},
		{"break-glass at the bound", ring, subjA, upstreamSign(privBG, "break-glass", nowMs-300_000, body), body, OutcomeVerified, ""},
		{"break-glass past", ring, subjA, upstreamSign(privBG, "break-glass", nowMs-300_001, body), body, OutcomeStale, "key allows 5m0s"},
		{"break-glass from the future", ring, subjA, upstreamSign(privBG, "break-glass", nowMs+3_600_000, body), body, OutcomeStale, ""},
		{"break-glass small skew", ring, subjA, upstreamSign(privBG, "break-glass", nowMs+5_000, body), body, OutcomeVerified, ""},
		{"forged old break-glass is invalid, not stale", ring, subjA, with(upstreamSign(privBG, "break-glass", nowMs-600_000, body), HeaderSig, strings.Repeat("A", sigB64Len-2)+"=="), body, OutcomeInvalid, "does not verify"},
		{"max_age_secs 0, same millisecond", ring, subjA, upstreamSign(privZero, "zero", nowMs, body), body, OutcomeVerified, ""},
		{"max_age_secs 0, 1 ms old", ring, subjA, upstreamSign(privZero, "zero", nowMs-1, body), body, OutcomeStale, ""},
		{"max_age_secs 0, 1 ms ahead", ring, subjA, upstreamSign(privZero, "zero", nowMs+1, body), body, OutcomeStale, ""},
		{"absurd max age is permissive", ring, subjA, upstreamSign(privHuge, "huge", nowMs-10_000, body), body, OutcomeVerified, ""},

		// Time: the default max age (6 days) of a key without max_age_secs.
		{"default, 6 days old", ring, subjA, upstreamSign(priv1, "backend-1", nowMs-6*day, body), body, OutcomeVerified, ""},
		{"default, 6 days and 1 ms old", ring, subjA, upstreamSign(priv1, "backend-1", nowMs-6*day-1, body), body, OutcomeStale, "key allows 144h0m0s"},
		{"default, a week old (upstream would run it)", ring, subjA, upstreamSign(priv1, "backend-1", nowMs-7*day, body), body, OutcomeStale, ""},
		{"default bound, 6 days and 1 ms old", ring, subjA, boundSign(priv1, "backend-1", subjA, nowMs-6*day-1, body), body, OutcomeStale, ""},
		{"default bound, 6 days old", ring, subjA, boundSign(priv1, "backend-1", subjA, nowMs-6*day, body), body, OutcomeVerified, ""},

		// Time: the clock allowance.
		{"unbound 1 h ahead", ring, subjA, upstreamSign(priv1, "backend-1", nowMs+3_600_000, body), body, OutcomeVerified, ""},
		{"unbound 1 h 1 ms ahead", ring, subjA, upstreamSign(priv1, "backend-1", nowMs+3_600_001, body), body, OutcomeClockAhead, "ahead"},
		{"bound 1 h ahead", ring, subjA, boundSign(priv1, "backend-1", subjA, nowMs+3_600_000, body), body, OutcomeVerified, ""},
		{"bound 1 h 1 ms ahead", ring, subjA, boundSign(priv1, "backend-1", subjA, nowMs+3_600_001, body), body, OutcomeClockAhead, "ahead"},
		{"bound max_age 0 in the future within allowance", ring, subjA, boundSign(privZero, "zero", subjA, nowMs+1000, body), body, OutcomeVerified, ""},
		{"negative time", ring, subjA, upstreamSign(priv1, "backend-1", -5, body), body, OutcomeStale, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := NewVerifier(c.ring, false)
			d := v.Check(c.subject, c.hdr, c.body, now)
			if d.Outcome != c.want {
				t.Fatalf("outcome %q (%s), want %q", d.Outcome, d.Reason, c.want)
			}
			if !strings.Contains(d.Reason, c.reason) {
				t.Errorf("reason %q does not mention %q", d.Reason, c.reason)
			}
			if !d.Allowed || d.Enforcing {
				t.Errorf("not enforcing, yet allowed %v enforcing %v", d.Allowed, d.Enforcing)
			}
			d = NewVerifier(c.ring, true).Check(c.subject, c.hdr, c.body, now)
			if d.Outcome != c.want || d.Allowed != (c.want == OutcomeVerified) || !d.Enforcing {
				t.Errorf("enforcing: %+v", d)
			}
		})
	}
}

// TestDecisionDetails: the decision names the key, the form and the time,
// and flags audited keys whatever the outcome.
func TestDecisionDetails(t *testing.T) {
	pub, priv := testKey(1)
	e := entry("bg", pub)
	e.Label = "break glass"
	e.MaxAgeSecs = secs(60)
	plain := entry("plain", pub)
	plain.AuditEveryUse = true
	ring := mustKeyring(t, e, plain, entry("quiet", pub))
	now := time.UnixMilli(1_800_000_000_000)
	body := []byte("{}")

	d := NewVerifier(ring, false).Check(subjA, boundSign(priv, "bg", subjA, now.UnixMilli(), body), body, now)
	if d.Outcome != OutcomeVerified || !d.Audit || d.Label != "break glass" || d.Fingerprint != Fingerprint(pub) ||
		!d.Bound || d.Kid != "bg" || !d.At.Equal(now) || d.Subject != subjA {
		t.Errorf("bound: %+v", d)
	}
	d = NewVerifier(ring, false).Check(subjA, upstreamSign(priv, "bg", now.UnixMilli()-120_000, body), body, now)
	if d.Outcome != OutcomeStale || !d.Audit || d.Bound {
		t.Errorf("stale break-glass use must be audited: %+v", d)
	}
	d = NewVerifier(ring, false).Check(subjA, upstreamSign(priv, "plain", now.UnixMilli(), []byte("x")), body, now)
	if d.Outcome != OutcomeInvalid || !d.Audit || d.Label != "plain" {
		t.Errorf("failed use of an audit_every_use key must be audited: %+v", d)
	}
	d = NewVerifier(ring, false).Check(subjA, upstreamSign(priv, "quiet", now.UnixMilli(), body), body, now)
	if d.Outcome != OutcomeVerified || d.Audit {
		t.Errorf("quiet key: %+v", d)
	}
}

// TestEnforcingWithoutKeys: enforcement requested with no keys refuses
// every command (issue: it used to run them all) and says it is enforcing.
func TestEnforcingWithoutKeys(t *testing.T) {
	_, priv := testKey(1)
	now := time.Now()
	body := []byte("{}")
	for _, k := range []*Keyring{nil, {}, mustKeyring(t)} {
		v := NewVerifier(k, true)
		if !v.Enforcing() {
			t.Fatal("Enforcing() false with enforcement requested and no keys")
		}
		if d := v.Check(subjA, nil, body, now); d.Allowed || d.Outcome != OutcomeUnsigned || !d.Enforcing {
			t.Errorf("unsigned: %+v", d)
		}
		h, _ := Sign(priv, "k", subjA, now, body)
		if d := v.Check(subjA, h, body, now); d.Allowed || d.Outcome != OutcomeUnprovisioned {
			t.Errorf("signed: %+v", d)
		}
		if v.Allowed(OutcomeUnsigned) || !v.Allowed(OutcomeVerified) {
			t.Error("Allowed")
		}
	}
	v := NewVerifier(nil, false)
	if d := v.Check(subjA, nil, body, now); !d.Allowed || d.Enforcing {
		t.Errorf("not enforcing: %+v", d)
	}
	v.SetEnforcing(true)
	if d := v.Check(subjA, nil, body, now); d.Allowed {
		t.Errorf("after SetEnforcing: %+v", d)
	}
}

// TestSignRoundTrip: Sign and SignUnbound produce what the independent
// layouts of the tests produce, and the verifier accepts them.
func TestSignRoundTrip(t *testing.T) {
	pub, priv := testKey(7)
	ring := mustKeyring(t, entry("k", pub))
	at := time.UnixMilli(1_800_000_000_123)
	body := []byte(`{"id":"x"}`)
	h, err := Sign(priv, "k", subjA, at, body)
	if err != nil {
		t.Fatal(err)
	}
	want := boundSign(priv, "k", subjA, at.UnixMilli(), body)
	for name, v := range want {
		if h.Get(name) != v[0] {
			t.Errorf("Sign header %s = %q, want %q", name, h.Get(name), v[0])
		}
	}
	u, err := SignUnbound(priv, "k", at, body)
	if err != nil {
		t.Fatal(err)
	}
	want = upstreamSign(priv, "k", at.UnixMilli(), body)
	for name, v := range want {
		if u.Get(name) != v[0] {
			t.Errorf("SignUnbound header %s = %q, want %q", name, u.Get(name), v[0])
		}
	}
	if len(u[HeaderSubject]) != 0 {
		t.Error("unbound form carries a subject")
	}
	// SignHeader replaces earlier signature headers and keeps others.
	h2 := nats.Header{"Other": {"x"}, HeaderSig: {"old"}, HeaderSubject: {"old"}}
	if err := SignHeader(h2, priv, "k", subjB, at, body); err != nil {
		t.Fatal(err)
	}
	if h2.Get("Other") != "x" || len(h2[HeaderSig]) != 1 || h2.Get(HeaderSubject) != subjB {
		t.Errorf("SignHeader: %v", h2)
	}
	if d := NewVerifier(ring, true).Check(subjB, h2, body, at); d.Outcome != OutcomeVerified {
		t.Errorf("SignHeader result: %+v", d)
	}

	for _, bad := range []struct {
		kid, subject string
		at           time.Time
	}{
		{"", subjA, at}, {"k", "", at}, {"k", "a b", at}, {"k", "a\x00b", at},
		{"k", strings.Repeat("s", MaxSubjectLen+1), at}, {"k", subjA, time.UnixMilli(-1)},
		{"k", subjA, time.UnixMilli(MaxAtMillis + 1)},
	} {
		if _, err := Sign(priv, bad.kid, bad.subject, bad.at, body); err == nil {
			t.Errorf("Sign(%q, %q, %v) succeeded", bad.kid, bad.subject, bad.at)
		}
	}
	if _, err := SignUnbound(priv, "", at, body); err == nil {
		t.Error("SignUnbound with an empty kid succeeded")
	}
}

// TestFormsAreDisjoint: the first byte of the two signed forms never
// coincides for an accepted time, which is what makes relabelling useless.
func TestFormsAreDisjoint(t *testing.T) {
	for _, at := range []int64{0, 1, MaxAtMillis, -1, -MaxAtMillis} {
		if b := UnboundBytes(at, nil)[0]; b == BoundDomain[0] {
			t.Errorf("at %d: unbound form starts with %q", at, b)
		}
	}
	if got := BoundBytes(1, "ab", []byte("c")); string(got) != "kanade-command-sig-v2\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x02abc" {
		t.Errorf("BoundBytes = %q", got)
	}
	if ed25519.SignatureSize != 64 || sigB64Len != 88 {
		t.Fatal("sizes")
	}
}
