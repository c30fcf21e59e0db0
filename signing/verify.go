package signing

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// MaxClockAhead is how far in the future Kanade-Sig-At may be before a
// signature is clock_ahead. Exactly MaxClockAhead ahead is still accepted.
const MaxClockAhead = time.Hour

// Decision is the full result of Verifier.Check on one message.
type Decision struct {
	// Outcome is what the check found.
	Outcome Outcome
	// Kid is the Kanade-Sig-Kid header, made safe to log (valid UTF-8, at
	// most 64 bytes); empty when absent or unsigned.
	Kid string
	// Reason explains an outcome other than verified in a short phrase of
	// the package's own words; it never quotes header values.
	Reason string
	// At is the signing time when Kanade-Sig-At parsed, else zero.
	At time.Time
	// Enforcing is whether the verifier enforced at the time of the check:
	// the switch was on and the keyring non-empty.
	Enforcing bool
	// Allowed is whether the command may go on: not enforcing, or verified.
	// When false the agent refuses it with exit code 123.
	Allowed bool
}

// Verifier checks command signatures against a keyring and decides whether a
// command may run. The zero value has an empty keyring and does not enforce.
// All methods are safe for concurrent use and do not block; the keyring and
// the enforcing switch may be changed at any time, and a check sees either
// the old or the new value.
type Verifier struct {
	keyring   atomic.Pointer[Keyring]
	enforcing atomic.Bool
}

// NewVerifier returns a verifier with keyring k (nil means empty) and the
// enforcing switch set to enforcing.
func NewVerifier(k *Keyring, enforcing bool) *Verifier {
	v := &Verifier{}
	v.keyring.Store(k)
	v.enforcing.Store(enforcing)
	return v
}

// SetKeyring replaces the keyring; nil means empty.
func (v *Verifier) SetKeyring(k *Keyring) { v.keyring.Store(k) }

// Keyring returns the current keyring, never nil.
func (v *Verifier) Keyring() *Keyring {
	if k := v.keyring.Load(); k != nil {
		return k
	}
	return &Keyring{}
}

// SetEnforcing sets the enforcing config switch.
func (v *Verifier) SetEnforcing(on bool) { v.enforcing.Store(on) }

// EnforcingSwitch returns the enforcing config switch as last set.
func (v *Verifier) EnforcingSwitch() bool { return v.enforcing.Load() }

// Enforcing reports whether the verifier enforces now: the switch is on and
// the keyring is non-empty. This is the heartbeat's enforcing field.
func (v *Verifier) Enforcing() bool {
	return v.enforcing.Load() && v.keyring.Load().Len() > 0
}

// Allowed reports whether a command with outcome o may run now: always when
// not enforcing, else only when o is verified.
func (v *Verifier) Allowed(o Outcome) bool {
	return !v.Enforcing() || o == OutcomeVerified
}

// Verify returns the outcome of checking the signature headers hdr (nil
// means none) over body at time now. It is Check(hdr, body, now).Outcome.
func (v *Verifier) Verify(hdr nats.Header, body []byte, now time.Time) Outcome {
	return v.Check(hdr, body, now).Outcome
}

// Check verifies the signature headers hdr (nil means none) over body at
// time now and decides, against one snapshot of the keyring and the switch,
// whether the command may run. It never panics, whatever hdr holds.
func (v *Verifier) Check(hdr nats.Header, body []byte, now time.Time) Decision {
	k := v.keyring.Load()
	d := check(k, hdr, body, now)
	d.Enforcing = v.enforcing.Load() && k.Len() > 0
	d.Allowed = !d.Enforcing || d.Outcome == OutcomeVerified
	return d
}

// check does the work of Check, except the decision.
func check(k *Keyring, hdr nats.Header, body []byte, now time.Time) Decision {
	sigs := hdr[HeaderSig]
	if len(sigs) == 0 {
		return Decision{Outcome: OutcomeUnsigned, Reason: "no " + HeaderSig + " header"}
	}
	d := Decision{Outcome: OutcomeInvalid}
	kid, kidErr := single(hdr, HeaderKid)
	if kidErr == "" {
		d.Kid = shorten(kid)
	}
	invalid := func(reason string) Decision {
		d.Reason = reason
		return d
	}

	if len(sigs) > 1 {
		return invalid("repeated " + HeaderSig + " header")
	}
	sig := sigs[0]
	if len(sig) != sigB64Len {
		return invalid(fmt.Sprintf("%s is %d bytes, want %d", HeaderSig, len(sig), sigB64Len))
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(sig)
	if err != nil || len(raw) != ed25519.SignatureSize {
		return invalid(HeaderSig + " is not standard base64 of 64 bytes")
	}

	alg, why := single(hdr, HeaderAlg)
	if why != "" {
		return invalid(why)
	}
	if alg != AlgEd25519 {
		return invalid("unsupported " + HeaderAlg + ", want " + AlgEd25519)
	}

	atStr, why := single(hdr, HeaderAt)
	if why != "" {
		return invalid(why)
	}
	atMs, ok := parseAt(atStr)
	if !ok {
		return invalid(HeaderAt + " is not decimal milliseconds since the epoch")
	}
	d.At = time.UnixMilli(atMs)

	if kidErr != "" {
		return invalid(kidErr)
	}
	if len(kid) > MaxKidLen {
		return invalid(fmt.Sprintf("%s is %d bytes, at most %d", HeaderKid, len(kid), MaxKidLen))
	}
	key, ok := k.Lookup(kid)
	if !ok {
		d.Outcome = OutcomeUnknownKid
		d.Reason = "kid not in keyring"
		return d
	}
	if !ed25519.Verify(key.PublicKey, SignedBytes(atMs, body), raw) {
		return invalid("signature does not verify")
	}

	if d.At.After(now.Add(MaxClockAhead)) {
		d.Outcome = OutcomeClockAhead
		d.Reason = fmt.Sprintf("signed %s ahead of the agent's clock, at most %s", d.At.Sub(now).Round(time.Second), MaxClockAhead)
		return d
	}
	if key.MaxAge > 0 && now.Sub(d.At) > key.MaxAge {
		d.Outcome = OutcomeStale
		d.Reason = fmt.Sprintf("signed %s ago, key allows %s", now.Sub(d.At).Round(time.Second), key.MaxAge)
		return d
	}
	d.Outcome = OutcomeVerified
	return d
}

// single returns the one value of header name, or a reason why there is not
// exactly one non-empty value.
func single(hdr nats.Header, name string) (value, reason string) {
	vs := hdr[name]
	switch {
	case len(vs) == 0 || (len(vs) == 1 && vs[0] == ""):
		return "", "missing " + name + " header"
	case len(vs) > 1:
		return "", "repeated " + name + " header"
	}
	return vs[0], ""
}

// parseAt parses Kanade-Sig-At: 1 to 19 ASCII digits, no sign, fitting an int64.
func parseAt(s string) (int64, bool) {
	if len(s) == 0 || len(s) > maxAtDigits {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
