package wire

import (
	"encoding/json"
	"fmt"
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
	// EventRecordID is the source's record id; the backend dedups on (pc_id, source, event_record_id).
	EventRecordID *uint64 `json:"event_record_id,omitempty"`
	// Payload is any JSON describing the event; always sent (null when unset).
	Payload json.RawMessage `json:"payload"`
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
