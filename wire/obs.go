package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Well-known ObsEvent kinds and sources emitted by the agent itself.
const (
	KindAgentOnline   = "agent_online"      // The agent started.
	KindAgentUpdate   = "agent_update"      // The agent started a new version.
	SourceStartup     = "agent:startup"     // Source of agent_online.
	SourceSelfUpdate  = "agent:self_update" // Source of agent_update.
	SourceCommandSign = "command_signature" // Source of command_signature_<outcome>.
)

// ObsEvent is an observation about the endpoint, published on obs.<pc_id>.
type ObsEvent struct {
	// PcID is the agent's pc id; the agent overwrites whatever a source set.
	PcID string `json:"pc_id"`
	// At is when the observed thing happened.
	At time.Time `json:"at"`
	// Kind names what happened, e.g. logon, boot, agent_online.
	Kind string `json:"kind"`
	// Source is scheme:detail, e.g. winlog:Security or agent:startup.
	Source string `json:"source"`
	// EventRecordID is the source's record id, a string such as "1234567"
	// (a Windows event record id) or "startup_<uuid>"; the backend dedups on
	// (pc_id, source, event_record_id). Empty means none: encoded as null,
	// as upstream's Option<String> is.
	EventRecordID string `json:"event_record_id,omitempty"`
	// Payload is any JSON describing the event; always sent (null when
	// unset), rewritten as upstream's serde_json::Value is written (keys
	// sorted; see MarshalJSON).
	Payload json.RawMessage `json:"payload"`
}

// obsEventWire is ObsEvent as upstream encodes it.
type obsEventWire struct {
	PcID          string          `json:"pc_id"`
	At            chronoTime      `json:"at"`
	Kind          string          `json:"kind"`
	Source        string          `json:"source"`
	EventRecordID *string         `json:"event_record_id"`
	Payload       json.RawMessage `json:"payload"`
}

// MarshalJSON encodes e as upstream does: every field present,
// event_record_id and payload null when unset, and the payload written as
// serde_json writes a serde_json::Value (upstream's payload type): object
// keys sorted, numbers and strings in serde_json's form (see serdeValue).
// A payload that cannot be rewritten so is sent as it is.
func (e ObsEvent) MarshalJSON() ([]byte, error) {
	payload := e.Payload
	if len(payload) > 0 {
		if v, err := serdeValue(payload); err == nil {
			payload = v
		}
	}
	w := obsEventWire{PcID: e.PcID, At: chronoTime(e.At), Kind: e.Kind, Source: e.Source, Payload: payload}
	if e.EventRecordID != "" {
		w.EventRecordID = &e.EventRecordID
	}
	return marshal(w)
}

// UnmarshalJSON decodes an ObsEvent. event_record_id is a string or null;
// for documents written by earlier versions of this agent (outbox items and
// state files on disk) a non-negative integer is also accepted and read as
// its decimal string. DecodeObsEvent, used for everything that comes from
// the network or a script, accepts only a string or null, as upstream does.
func (e *ObsEvent) UnmarshalJSON(b []byte) error {
	var aux struct {
		PcID          string          `json:"pc_id"`
		At            time.Time       `json:"at"`
		Kind          string          `json:"kind"`
		Source        string          `json:"source"`
		EventRecordID json.RawMessage `json:"event_record_id"`
		Payload       json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	id, _, err := recordID(aux.EventRecordID, true)
	if err != nil {
		return err
	}
	*e = ObsEvent{PcID: aux.PcID, At: aux.At, Kind: aux.Kind, Source: aux.Source, EventRecordID: id, Payload: aux.Payload}
	return nil
}

// recordID reads an event_record_id value: a string, null or absent, or,
// when legacy is set, a non-negative integer. number reports that it was one.
func recordID(raw json.RawMessage, legacy bool) (id string, number bool, err error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "", false, nil
	case raw[0] == '"':
		if err := json.Unmarshal(raw, &id); err != nil {
			return "", false, err
		}
		return id, false, nil
	case legacy && raw[0] >= '0' && raw[0] <= '9':
		n, err := strconv.ParseUint(string(raw), 10, 64)
		if err != nil {
			return "", false, fmt.Errorf("%w: obs event: event_record_id %s is not a string", ErrInvalid, truncateForError(string(raw)))
		}
		return strconv.FormatUint(n, 10), true, nil
	default:
		return "", false, fmt.Errorf("%w: obs event: event_record_id %s is not a string", ErrInvalid, truncateForError(string(raw)))
	}
}

// Validate reports whether e has the fields every ObsEvent needs.
func (e *ObsEvent) Validate() error {
	switch {
	case e.Kind == "":
		return fmt.Errorf("%w: obs event kind is empty", ErrInvalid)
	case e.Source == "":
		return fmt.Errorf("%w: obs event source is empty", ErrInvalid)
	case e.At.IsZero():
		return fmt.Errorf("%w: obs event at is missing", ErrInvalid)
	}
	return nil
}

// DecodeObsEvent decodes and validates an ObsEvent.
func DecodeObsEvent(b []byte) (*ObsEvent, error) {
	var e ObsEvent
	if err := decode(b, &e, "obs event"); err != nil {
		return nil, err
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return &e, nil
}
