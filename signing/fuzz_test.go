package signing

import (
	"crypto/ed25519"
	"encoding/base64"
	"testing"

	"github.com/nats-io/nats.go"
)

// FuzzVerify feeds arbitrary header values and bodies to Check: it must not
// panic, must return a known outcome, must decide consistently, and must
// only verify what the keyring's key really signed.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	good := fx.signed(nil)
	f.Add(good.Get(HeaderSig), good.Get(HeaderKid), good.Get(HeaderAlg), good.Get(HeaderAt), fx.body, uint8(0))
	f.Add(good.Get(HeaderSig), "k2", "ed25519", "1", []byte{}, uint8(1))
	f.Add("", "", "", "", []byte(nil), uint8(2))
	f.Add("====", "\x00", "ed25519\x00", "-9223372036854775808", []byte("\xff"), uint8(3))
	f.Add(good.Get(HeaderSig), "k1", "ed25519", "99999999999999999999", fx.body, uint8(4))
	v := NewVerifier(fx.keyring, true)
	known := map[Outcome]bool{}
	for _, o := range Outcomes() {
		known[o] = true
	}
	f.Fuzz(func(t *testing.T, sig, kid, alg, at string, body []byte, shape uint8) {
		h := nats.Header{}
		for i, kv := range [][2]string{{HeaderSig, sig}, {HeaderKid, kid}, {HeaderAlg, alg}, {HeaderAt, at}} {
			switch (shape >> (2 * i)) & 3 {
			case 0:
				h.Set(kv[0], kv[1])
			case 1: // absent
			case 2:
				h.Add(kv[0], kv[1])
				h.Add(kv[0], kv[1])
			case 3:
				h[kv[0]] = []string{}
			}
		}
		d := v.Check(h, body, fx.now)
		if !known[d.Outcome] {
			t.Fatalf("unknown outcome %q", d.Outcome)
		}
		if d.Allowed != (d.Outcome == OutcomeVerified) {
			t.Fatalf("enforcing verifier: %+v", d)
		}
		if len(d.Kid) > 64 {
			t.Fatalf("Kid of %d bytes", len(d.Kid))
		}
		if d.Outcome == OutcomeVerified {
			key, _ := fx.keyring.Lookup(kid)
			atMs, ok := parseAt(at)
			if !ok || !verifies(key, atMs, body, sig) {
				t.Fatalf("verified a message the key did not sign: %+v", d)
			}
		}
		if o := v.Verify(nil, body, fx.now); o != OutcomeUnsigned {
			t.Fatalf("nil header: %s", o)
		}
	})
}

// verifies checks a signature with the standard library alone.
func verifies(key Key, atMs int64, body []byte, sig string) bool {
	raw, err := base64.StdEncoding.DecodeString(sig)
	return err == nil && len(key.PublicKey) == ed25519.PublicKeySize && ed25519.Verify(key.PublicKey, SignedBytes(atMs, body), raw)
}
