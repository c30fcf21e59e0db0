package signing

import (
	"crypto/ed25519"
	"encoding/base64"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// FuzzCheck feeds arbitrary header values, subjects and bodies to the
// verifier: it must never panic, must give a known outcome, and may say ok
// only when the signature really verifies over the bytes of the form the
// headers name.
func FuzzCheck(f *testing.F) {
	pub, priv := testKey(1)
	ring := mustKeyring(f, entry("k", pub))
	now := time.UnixMilli(1_800_000_000_000)
	body := []byte(`{"id":"x"}`)
	for _, h := range []nats.Header{
		upstreamSign(priv, "k", now.UnixMilli(), body),
		boundSign(priv, "k", subjA, now.UnixMilli(), body),
	} {
		f.Add(h.Get(HeaderSig), h.Get(HeaderKid), h.Get(HeaderAlg), h.Get(HeaderAt), h.Get(HeaderSubject), subjA, body)
	}
	f.Add("", "", "", "", "", "", []byte(nil))
	f.Add("AAAA", "k", "ed25519", "-0", "x", "y", []byte("{}"))
	f.Add("", "k", "", "99999999999999999999", "", subjA, body)
	f.Fuzz(func(t *testing.T, sig, kid, alg, at, subjHint, subject string, body []byte) {
		hdr := nats.Header{}
		for name, v := range map[string]string{HeaderSig: sig, HeaderKid: kid, HeaderAlg: alg, HeaderAt: at, HeaderSubject: subjHint} {
			if v != "" {
				hdr[name] = []string{v}
			}
		}
		v := NewVerifier(ring, true)
		d := v.Check(subject, hdr, body, now)
		known := false
		for _, o := range Outcomes() {
			known = known || o == d.Outcome
		}
		if !known {
			t.Fatalf("unknown outcome %q", d.Outcome)
		}
		if d.Allowed != (d.Outcome == OutcomeVerified) {
			t.Fatalf("enforcing, allowed %v for %q", d.Allowed, d.Outcome)
		}
		if d.Outcome != OutcomeVerified {
			return
		}
		raw, err := base64.StdEncoding.DecodeString(sig)
		atMs, perr := strconv.ParseInt(at, 10, 64)
		if err != nil || perr != nil || kid != "k" {
			t.Fatalf("ok with sig %q kid %q at %q", sig, kid, at)
		}
		msg := UnboundBytes(atMs, body)
		if alg == AlgEd25519Subject {
			msg = BoundBytes(atMs, subject, body)
		}
		if !ed25519.Verify(pub, msg, raw) {
			t.Fatalf("ok for a signature that does not verify: %+v", d)
		}
	})
}

// FuzzParseKeyring: any document either parses into valid keys or fails
// with a *KeyringError, never panics.
func FuzzParseKeyring(f *testing.F) {
	pub, _ := testKey(1)
	f.Add(keyringJSON(f, entry("k", pub)))
	f.Add([]byte(`[{"kid":"a","public_key":"AAAA","max_age_secs":1e3}]`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		k, err := ParseKeyring(doc)
		if err != nil {
			if _, ok := err.(*KeyringError); !ok {
				t.Fatalf("%T %v", err, err)
			}
			return
		}
		for _, key := range k.Keys() {
			if ValidKid(key.Kid) != nil || len(key.PublicKey) != ed25519.PublicKeySize {
				t.Fatalf("bad key %+v", key)
			}
		}
	})
}

// FuzzCheckEnvelope: any payload signed by a keyring key is classified
// without panicking, and verifies only for this agent, within its expiry.
func FuzzCheckEnvelope(f *testing.F) {
	pub, priv := testKey(1)
	ring := mustKeyring(f, entry("backend-1", pub))
	f.Add([]byte(envelopeJSON("PC-A", at(3600), envCmd)), int64(10))
	f.Add([]byte(`{"kind":"kanade.command.v2","target_pc_id":"PC-A","expires_at":"2027-01-01T00:00:00+09:00","command":{"deadline_at":"x"}}`), int64(0))
	f.Add([]byte(`{"kind":null}`), int64(0))
	f.Fuzz(func(t *testing.T, payload []byte, nowSecs int64) {
		hdr := upstreamSign(priv, "backend-1", t0.UnixMilli(), payload)
		now := at(nowSecs % (1 << 32))
		d, env, err := NewVerifier(ring, false).CheckEnvelope("PC-A", subjA, hdr, payload, now)
		if err != nil {
			if env != nil || d.Allowed {
				t.Fatalf("unknown kind allowed: %+v", d)
			}
			return
		}
		if (env != nil) != (d.Outcome == OutcomeVerified) || d.Allowed != (env != nil) {
			t.Fatalf("%+v %+v", d, env)
		}
		if env != nil && (env.TargetPcID != "PC-A" || now.After(env.StartDeadline) || env.ExpiresAt.Sub(t0) > MaxEnvelopeValidity) {
			t.Fatalf("verified envelope breaks the rules: %+v", env)
		}
	})
}
