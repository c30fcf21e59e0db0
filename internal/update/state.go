package update

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kanade/kanade-agent/internal/fsutil"
	"github.com/kanade/kanade-agent/wire"
)

// File names in the state directory.
const (
	// StateFile is the one state file in the state directory (see doc.go).
	StateFile   = "update.json"
	stateTmpPfx = StateFile + ".tmp-"
	corruptPfx  = StateFile + ".corrupt-"
	stateFormat = 1
)

// MaxQuarantined is the number of quarantined versions kept; the oldest is
// dropped first.
const MaxQuarantined = 32

// maxEvents bounds the pending events kept in the state file.
const maxEvents = 16

// Sentinel phases.
const (
	phaseArmed    = "armed"    // counting boots of the new binary
	phaseRollback = "rollback" // restoring the fallback binary; redone at boot until done
)

// state is the content of the state file. Every change is written with
// fsutil.WriteFileAtomic, so the file is always one consistent version.
type state struct {
	// Format is the file format, stateFormat.
	Format int `json:"format"`
	// Attempt is the last update attempted (swapped in).
	Attempt *attempt `json:"attempt,omitempty"`
	// Quarantined lists versions that failed to boot, oldest first.
	Quarantined []string `json:"quarantined,omitempty"`
	// Sentinel is the boot sentinel, nil when disarmed.
	Sentinel *sentinel `json:"sentinel,omitempty"`
	// LastGood describes <exe>.last-good, nil when none was written.
	LastGood *lastGood `json:"last_good,omitempty"`
	// Events are ObsEvents waiting to be enqueued by the agent.
	Events []wire.ObsEvent `json:"events,omitempty"`
	// Refused is the last release refused for its signature, flags or
	// version; cleared by a swap.
	Refused *refusal `json:"refused,omitempty"`
}

// refusal records a refused release.
type refusal struct {
	Version string    `json:"version"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// attempt records one swap.
type attempt struct {
	Version string    `json:"version"`
	From    string    `json:"from"`
	Digest  string    `json:"digest"` // hex SHA-256 of the binary swapped in
	At      time.Time `json:"at"`
}

// sentinel is an armed boot sentinel.
type sentinel struct {
	Phase string `json:"phase"`
	// From is the version that ran before the update; To the version on trial.
	From string `json:"from"`
	To   string `json:"to"`
	// Digest is the hex SHA-256 of the binary on trial.
	Digest string `json:"digest"`
	// Boots counts the boots seen with the sentinel armed.
	Boots   int       `json:"boots"`
	ArmedAt time.Time `json:"armed_at"`
	// EventID is the EventRecordID of the agent_update event of this update.
	EventID uint64 `json:"event_id,omitempty"`
}

// lastGood describes the <exe>.last-good file.
type lastGood struct {
	Version string    `json:"version"`
	Digest  string    `json:"digest"` // hex SHA-256
	At      time.Time `json:"at"`
}

// clone returns a deep copy of s.
func (s *state) clone() *state {
	c := *s
	if s.Attempt != nil {
		a := *s.Attempt
		c.Attempt = &a
	}
	if s.Sentinel != nil {
		x := *s.Sentinel
		c.Sentinel = &x
	}
	if s.LastGood != nil {
		l := *s.LastGood
		c.LastGood = &l
	}
	if s.Refused != nil {
		r := *s.Refused
		c.Refused = &r
	}
	c.Quarantined = slices.Clone(s.Quarantined)
	c.Events = slices.Clone(s.Events)
	return &c
}

// quarantine adds v to the quarantine list (once), dropping the oldest
// entries beyond MaxQuarantined.
func (s *state) quarantine(v string) {
	s.Quarantined = slices.DeleteFunc(s.Quarantined, func(q string) bool { return q == v })
	s.Quarantined = append(s.Quarantined, v)
	if n := len(s.Quarantined) - MaxQuarantined; n > 0 {
		s.Quarantined = slices.Delete(s.Quarantined, 0, n)
	}
}

// addEvent queues e, dropping the oldest beyond maxEvents.
func (s *state) addEvent(e wire.ObsEvent) {
	s.Events = append(s.Events, e)
	if n := len(s.Events) - maxEvents; n > 0 {
		s.Events = slices.Delete(s.Events, 0, n)
	}
}

// dropEvent removes the pending events with record id id.
func (s *state) dropEvent(id uint64) {
	s.Events = slices.DeleteFunc(s.Events, func(e wire.ObsEvent) bool {
		return e.EventRecordID == strconv.FormatUint(id, 10)
	})
}

// loadState reads the state file of dir, creating dir if needed and
// removing stray temporary files of interrupted writes. A missing file is an
// empty state. An undecodable file is moved aside and reported as a
// *CorruptStateError together with an empty state; the caller logs it and
// goes on.
func loadState(dir string) (*state, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("update: state directory: %w", err)
	}
	if ents, err := os.ReadDir(dir); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), stateTmpPfx) {
				_ = os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	p := filepath.Join(dir, StateFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return &state{Format: stateFormat}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("update: read state: %w", err)
	}
	var st state
	derr := json.Unmarshal(b, &st)
	if derr == nil && st.Format != stateFormat {
		derr = fmt.Errorf("unknown format %d", st.Format)
	}
	if derr == nil && st.Sentinel != nil && st.Sentinel.Phase != phaseArmed && st.Sentinel.Phase != phaseRollback {
		derr = fmt.Errorf("unknown sentinel phase %q", st.Sentinel.Phase)
	}
	if derr == nil {
		return &st, nil
	}
	ce := &CorruptStateError{Path: p, Err: derr}
	aside := filepath.Join(dir, corruptPfx+strconv.FormatInt(time.Now().UnixNano(), 10))
	if err := fsutil.RenameDurable(p, aside); err == nil {
		ce.MovedTo = aside
	}
	return &state{Format: stateFormat}, ce
}

// saveState writes st as the state file of dir, durably and atomically.
func saveState(dir string, st *state) error {
	st.Format = stateFormat
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("update: encode state: %w", err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, StateFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("update: write state: %w", err)
	}
	return nil
}
