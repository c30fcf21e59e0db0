package signing

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// Payload is the payload of a command_signature_<outcome> ObsEvent, sent as JSON.
type Payload struct {
	// Outcome is the new outcome, the kind's suffix.
	Outcome Outcome `json:"outcome"`
	// Previous is the outcome before the change; empty for the first
	// outcome since the agent started.
	Previous Outcome `json:"previous,omitempty"`
	// Kid is the Kanade-Sig-Kid of the command that caused the change, made
	// safe to log (valid UTF-8, at most 64 bytes).
	Kid string `json:"kid,omitempty"`
	// Reason is Decision.Reason: why the outcome is not verified.
	Reason string `json:"reason,omitempty"`
	// RequestID is the request_id of the command that caused the change, made safe to log.
	RequestID string `json:"request_id,omitempty"`
	// Enforcing is whether the agent enforced at the time.
	Enforcing bool `json:"enforcing"`
	// Refused is whether that command was refused (exit code 123).
	Refused bool `json:"refused"`
}

// Tracker remembers the last outcome so that only changes are reported. The
// first outcome after the agent starts counts as a change. The zero value is
// ready to use; it is safe for concurrent use and does not block beyond a
// short critical section.
type Tracker struct {
	mu   sync.Mutex
	last Outcome // "" until the first observation
}

// Observe records outcome o and returns its ObsEvent kind
// (command_signature_<o>) and whether it differs from the outcome observed
// before, i.e. whether the agent should emit the event.
func (t *Tracker) Observe(o Outcome) (kind string, changed bool) {
	_, changed = t.swap(o)
	return o.Kind(), changed
}

// Last returns the last outcome observed, or "" before any.
func (t *Tracker) Last() Outcome {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

func (t *Tracker) swap(o Outcome) (prev Outcome, changed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	prev, t.last = t.last, o
	return prev, prev != o
}

// Transition records d's outcome like Observe and, when it changed, returns
// the ObsEvent to emit: kind command_signature_<outcome>, source
// wire.SourceCommandSign, At at, and a Payload naming the previous outcome
// and the command (requestID, kid) that caused the change. PcID is left
// empty for the agent to fill.
func (t *Tracker) Transition(d Decision, requestID string, at time.Time) (ev wire.ObsEvent, changed bool) {
	prev, changed := t.swap(d.Outcome)
	if !changed {
		return wire.ObsEvent{}, false
	}
	p := Payload{
		Outcome:   d.Outcome,
		Previous:  prev,
		Kid:       shorten(d.Kid),
		Reason:    d.Reason,
		RequestID: shorten(requestID),
		Enforcing: d.Enforcing,
		Refused:   !d.Allowed,
	}
	b, err := json.Marshal(p)
	if err != nil { // cannot happen: only strings and bools
		b = nil
	}
	return wire.ObsEvent{
		At:      at,
		Kind:    d.Outcome.Kind(),
		Source:  wire.SourceCommandSign,
		Payload: b,
	}, true
}
