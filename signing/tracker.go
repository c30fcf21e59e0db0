package signing

import (
	"strconv"
	"sync"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// Payload is the payload of a command_signature_<outcome> ObsEvent, sent as
// JSON. From and To are upstream's payload, exactly; the other fields are
// this agent's additions.
type Payload struct {
	// From is the kind of the previous outcome; JSON null for the first
	// outcome since the agent started.
	From *string `json:"from"`
	// To is the kind of the new outcome, e.g. command_signature_ok.
	To string `json:"to"`
	// Kid is the Kanade-Sig-Kid of the command that caused the change, made
	// safe to log (valid UTF-8, at most 64 bytes).
	Kid string `json:"kid,omitempty"`
	// Reason is Decision.Reason: why the outcome is not verified.
	Reason string `json:"reason,omitempty"`
	// RequestID is the request_id of the command that caused the change, made safe to log.
	RequestID string `json:"request_id,omitempty"`
	// Subject is the subject the command arrived on, made safe to log.
	Subject string `json:"subject,omitempty"`
	// Enforcing is whether the agent enforced at the time.
	Enforcing bool `json:"enforcing"`
	// Refused is whether that command was refused (exit code 123).
	Refused bool `json:"refused"`
}

// AuditPayload is the payload of a KindAudit ObsEvent.
type AuditPayload struct {
	// Kid, Label and Fingerprint identify the audited key.
	Kid         string `json:"kid"`
	Label       string `json:"label,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	// Outcome is the kind of the check's outcome, e.g. command_signature_ok.
	Outcome string `json:"outcome"`
	// Reason is Decision.Reason.
	Reason string `json:"reason,omitempty"`
	// RequestID is the command's request_id, made safe to log.
	RequestID string `json:"request_id,omitempty"`
	// Subject is the subject the command arrived on.
	Subject string `json:"subject,omitempty"`
	// SignedAtMs is Kanade-Sig-At.
	SignedAtMs int64 `json:"signed_at_ms"`
	// Refused is whether the command was refused.
	Refused bool `json:"refused"`
}

// RecordID returns the event_record_id of a signature ObsEvent of the given
// kind at time at, as upstream builds it: "<kind>:<at in Unix ms>". The
// backend deduplicates on (pc_id, source, event_record_id), so a redelivered
// event is stored once.
func RecordID(kind string, at time.Time) string {
	return kind + ":" + strconv.FormatInt(at.UnixMilli(), 10)
}

// Tracker remembers the last reported outcome so that only changes are
// reported, as upstream does. The first outcome after the agent starts
// counts as a change. The zero value is ready to use; it is safe for
// concurrent use.
type Tracker struct {
	mu   sync.Mutex
	last Outcome // "" until the first report
}

// Last returns the last outcome reported, or "" before any.
func (t *Tracker) Last() Outcome {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// Report calls emit with the ObsEvent reporting d when d's outcome differs
// from the last one reported: kind d.Outcome.Kind(), source
// wire.SourceCommandSign, At at, payload a Payload. PcID and the event
// record id (RecordID(ev.Kind, ev.At)) are for emit to fill. The outcome
// counts as reported only when emit returns nil, so a failed emit is
// retried on the next command (upstream commits after the enqueue). Report
// returns emit's error, or nil when there was nothing to report. Calls are
// serialised, emit included.
func (t *Tracker) Report(d Decision, requestID string, at time.Time, emit func(wire.ObsEvent) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == d.Outcome {
		return nil
	}
	p := Payload{
		To:        d.Outcome.Kind(),
		Kid:       shorten(d.Kid),
		Reason:    d.Reason,
		RequestID: shorten(requestID),
		Subject:   d.Subject,
		Enforcing: d.Enforcing,
		Refused:   !d.Allowed,
	}
	if t.last != "" {
		from := t.last.Kind()
		p.From = &from
	}
	b, _ := wire.Marshal(p) // cannot fail: strings and bools; no \u003c escapes, as serde_json
	ev := wire.ObsEvent{At: at, Kind: d.Outcome.Kind(), Source: wire.SourceCommandSign, Payload: b}
	if err := emit(ev); err != nil {
		return err
	}
	t.last = d.Outcome
	return nil
}

// AuditEvent returns the ObsEvent reporting one use of an audited key
// (d.Audit): kind KindAudit, source wire.SourceCommandSign, At at, payload
// an AuditPayload. The agent emits one for every such decision, not only on
// changes, whatever the outcome. PcID and the event record id
// (RecordID(ev.Kind, ev.At) plus the request id, see AuditRecordID) are for
// the caller to fill.
func AuditEvent(d Decision, requestID string, at time.Time) wire.ObsEvent {
	p := AuditPayload{
		Kid: d.Kid, Label: d.Label, Fingerprint: d.Fingerprint,
		Outcome: d.Outcome.Kind(), Reason: d.Reason, RequestID: shorten(requestID),
		Subject: d.Subject, SignedAtMs: d.At.UnixMilli(), Refused: !d.Allowed,
	}
	b, _ := wire.Marshal(p) // cannot fail; no \u003c escapes, as serde_json
	return wire.ObsEvent{At: at, Kind: KindAudit, Source: wire.SourceCommandSign, Payload: b}
}

// AuditRecordID returns the event_record_id of an audit event:
// "command_signature_audit:<request_id>:<at in Unix ms>", distinct per use.
func AuditRecordID(requestID string, at time.Time) string {
	return KindAudit + ":" + shorten(requestID) + ":" + strconv.FormatInt(at.UnixMilli(), 10)
}
