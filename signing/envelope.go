package signing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
)

// Upstream kanade's versioned command envelope: the body is a JSON object
//
//	{"kind":"kanade.command.v2","target_pc_id":"PC-A",
//	 "expires_at":"2027-01-01T00:00:00Z","command":{...a Command...}}
//
// signed like any command (the signature headers over the exact body), so
// the recipient and an absolute start deadline are covered by the signature.
const (
	// EnvelopeKindV2 is the kind of upstream's v2 envelope, and its protocol name.
	EnvelopeKindV2 = "kanade.command.v2"
	// ProtocolLegacy is upstream's protocol name for a bare signed Command.
	ProtocolLegacy = "legacy"
	// MaxEnvelopeValidity is the longest expires_at - signing time accepted,
	// the 7-day retention of the command stream (upstream MAX_ENVELOPE_VALIDITY).
	MaxEnvelopeValidity = 7 * 24 * time.Hour
)

// ErrUnknownKind means a command payload has a "kind" that is not
// EnvelopeKindV2 (or is not a string). Upstream refuses such a payload
// without reporting it as a signature outcome: anyone who can publish can
// send one.
var ErrUnknownKind = errors.New("signing: unrecognised command kind")

// CommandProtocols returns the command protocols an agent that calls
// CheckEnvelope supports, for the heartbeat's command_protocols:
// ["legacy", "kanade.command.v2"], as upstream reports them.
func CommandProtocols() []string { return []string{ProtocolLegacy, EnvelopeKindV2} }

// IsEnvelope reports whether a command payload is a JSON object with a
// "kind" key, whatever its value: such a payload goes to CheckEnvelope and
// must never be decoded as a bare Command (upstream's rule, so a new-form
// payload cannot be smuggled in under the old rules). Malformed JSON is not
// an envelope.
func IsEnvelope(payload []byte) bool {
	var obj map[string]json.RawMessage
	if json.Unmarshal(payload, &obj) != nil || obj == nil {
		return false
	}
	_, ok := obj["kind"]
	return ok
}

// Envelope is a verified v2 envelope.
type Envelope struct {
	// TargetPcID is the recipient, equal (byte for byte) to the agent's pc id.
	TargetPcID string
	// ExpiresAt is the absolute deadline for starting the command.
	ExpiresAt time.Time
	// Command is the wrapped command, decoded but not validated.
	Command wire.Command
	// StartDeadline is the earlier of ExpiresAt and Command.DeadlineAt: the
	// command must not start after it.
	StartDeadline time.Time
}

// envelopeFields are the only fields of an envelope.
var envelopeFields = map[string]bool{"kind": true, "target_pc_id": true, "expires_at": true, "command": true}

// CheckEnvelope verifies an upstream v2 envelope (see IsEnvelope) that
// arrived on subject for the agent pcID at time now, as upstream's
// verify_envelope does: first the signature over the exact payload
// (reloading the keyring for an unknown kid, as Check does), then the body:
// kind, no unknown field, target_pc_id equal to pcID (else misaddressed),
// expires_at present and RFC 3339, the command; then time: signed more than
// MaxClockAhead ahead is clock_ahead; expires_at before the signing time or
// more than MaxEnvelopeValidity after it is envelope_rejected; now after
// the start deadline, or past a break-glass key's max_age_secs, is expired.
// The default max age of keys without max_age_secs does not apply (the
// envelope's own expiry bounds it), nor does require_bound.
//
// An envelope is refused unless it verifies, whether or not enforcement is
// requested: Decision.Allowed is set only for ok, and the Envelope is
// returned only then. The decision is to be reported like Check's (Tracker,
// AuditEvent). A payload whose kind is not EnvelopeKindV2 gives an error
// wrapping ErrUnknownKind and a decision that must not be reported.
func (v *Verifier) CheckEnvelope(pcID, subject string, hdr nats.Header, payload []byte, now time.Time) (Decision, *Envelope, error) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(payload, &obj) != nil || obj == nil {
		return Decision{Outcome: OutcomeEnvelopeRejected, Reason: "not a JSON object", Subject: shorten(subject)}, nil,
			fmt.Errorf("%w: not a JSON object", ErrUnknownKind)
	}
	var kind string
	if json.Unmarshal(obj["kind"], &kind) != nil || kind != EnvelopeKindV2 {
		return Decision{Outcome: OutcomeEnvelopeRejected, Reason: "unrecognised kind", Subject: shorten(subject)}, nil,
			fmt.Errorf("%w: %s", ErrUnknownKind, shorten(string(obj["kind"])))
	}
	var env *Envelope
	d, _ := v.withReload(now, func(k *Keyring) (Decision, bool) {
		d, key, _, st := authenticate(k, subject, hdr, payload, true)
		switch st {
		case authUnknown:
			return d, true
		case authDone:
			return d, false
		}
		env = checkEnvelopeBody(&d, key, obj, pcID, now)
		return d, false
	})
	d.Enforcing = v.enforcing.Load()
	d.Allowed = d.Outcome == OutcomeVerified
	if !d.Allowed {
		env = nil
	}
	return d, env, nil
}

// checkEnvelopeBody applies the body and time rules to an authentic
// envelope, setting d's outcome.
func checkEnvelopeBody(d *Decision, key Key, obj map[string]json.RawMessage, pcID string, now time.Time) *Envelope {
	reject := func(format string, args ...any) *Envelope {
		d.Outcome, d.Reason = OutcomeEnvelopeRejected, fmt.Sprintf(format, args...)
		return nil
	}
	for name := range obj {
		if !envelopeFields[name] {
			return reject("unknown field %q", shorten(name))
		}
	}
	var target string
	if raw, ok := obj["target_pc_id"]; !ok || json.Unmarshal(raw, &target) != nil || target == "" {
		return reject("envelope names no recipient")
	}
	if target != pcID {
		d.Outcome, d.Reason = OutcomeMisaddressed, fmt.Sprintf("envelope is addressed to %q, not this agent", shorten(target))
		return nil
	}
	raw, ok := obj["expires_at"]
	if !ok || string(bytes.TrimSpace(raw)) == "null" {
		return reject("envelope carries no expiry")
	}
	var expStr string
	if json.Unmarshal(raw, &expStr) != nil {
		return reject("expires_at is not a string")
	}
	expires, err := time.Parse(time.RFC3339Nano, expStr)
	if err != nil {
		return reject("expires_at is not RFC 3339: %s", shorten(expStr))
	}
	cmdRaw, ok := obj["command"]
	if !ok {
		return reject("missing command")
	}
	var cmd wire.Command
	if err := json.Unmarshal(cmdRaw, &cmd); err != nil || string(bytes.TrimSpace(cmdRaw)) == "null" {
		return reject("command is not a command object")
	}

	if ahead := d.At.Sub(now); ahead > MaxClockAhead {
		d.Outcome = OutcomeClockAhead
		d.Reason = fmt.Sprintf("signed %s ahead of the agent's clock, at most %s", ahead.Round(time.Second), MaxClockAhead)
		return nil
	}
	if expires.Before(d.At) {
		return reject("envelope expires before it was signed")
	}
	if validity := expires.Sub(d.At); validity > MaxEnvelopeValidity {
		return reject("envelope validity of %s exceeds %s", validity, MaxEnvelopeValidity)
	}
	deadline := expires
	if cmd.DeadlineAt != nil && cmd.DeadlineAt.Before(deadline) {
		deadline = *cmd.DeadlineAt
	}
	if now.After(deadline) {
		d.Outcome, d.Reason = OutcomeExpired, "start deadline "+deadline.UTC().Format(time.RFC3339Nano)+" has passed"
		return nil
	}
	if key.BreakGlass {
		if age := now.Sub(d.At); age > key.MaxAge {
			d.Outcome, d.Reason = OutcomeExpired, fmt.Sprintf("signed %s ago, key allows %s", age.Round(time.Millisecond), key.MaxAge)
			return nil
		}
	}
	d.Outcome, d.Reason = OutcomeVerified, ""
	return &Envelope{TargetPcID: target, ExpiresAt: expires, Command: cmd, StartDeadline: deadline}
}
