package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Shells accepted in [Command.Shell].
const (
	ShellPowerShell = "powershell" // Windows PowerShell, staged as a .ps1 file.
	ShellPwsh       = "pwsh"       // PowerShell 7+, staged as a .ps1 file.
	ShellCmd        = "cmd"        // cmd.exe /C.
	ShellSh         = "sh"         // sh -c.
)

// Accounts accepted in [Command.RunAs].
const (
	RunAsSystem    = "system"     // The agent's own account (default).
	RunAsUser      = "user"       // The interactive user's session.
	RunAsSystemGUI = "system_gui" // System account on the interactive desktop.
)

// Staleness modes accepted in [Staleness.Mode].
const (
	StalenessCached    = "cached"    // Run with cached gate state (default).
	StalenessUnchecked = "unchecked" // Skip the staleness check.
	StalenessStrict    = "strict"    // Refuse when cached state is older than MaxCacheAge.
)

// EmitEvents is the only [Emit.Type]: stdout is NDJSON ObsEvents.
const EmitEvents = "events"

// AdhocID is the [Command.ID] of an ad hoc (unnamed) command.
const AdhocID = "adhoc-run"

// Command is a script sent to agents on commands.all, commands.group.<g> or
// commands.pc.<pc_id>.
type Command struct {
	// ID is the job (script) id; AdhocID for ad hoc commands.
	ID string `json:"id"`
	// Version is the script version, checked against script_current[ID].
	Version string `json:"version"`
	// RequestID identifies one dispatch, the same on every target subject; it is the dedup key.
	RequestID string `json:"request_id"`
	// ExecID identifies the execution for kill.<exec_id> and events; also accepted as "job_id".
	ExecID string `json:"exec_id,omitempty"`
	// Shell is one of powershell, pwsh, cmd or sh.
	Shell string `json:"shell"`
	// Script is the script text; empty when ScriptObject names it.
	Script string `json:"script"`
	// ScriptObject names a large script in the scripts object store as <name>/<version>.
	ScriptObject string `json:"script_object,omitempty"`
	// ScriptObjectSHA256 is the lower-case hex SHA-256 the fetched ScriptObject must have.
	ScriptObjectSHA256 string `json:"script_object_sha256,omitempty"`
	// TimeoutSecs is the run timeout in seconds; the effective timeout is max(1, n).
	TimeoutSecs int64 `json:"timeout_secs"`
	// JitterSecs is the upper bound of a random delay before the command is queued.
	JitterSecs int64 `json:"jitter_secs,omitempty"`
	// RunAs is system, user or system_gui; empty means system.
	RunAs string `json:"run_as,omitempty"`
	// Cwd is the working directory of the script.
	Cwd string `json:"cwd,omitempty"`
	// DeadlineAt is the time after which the command must not start.
	DeadlineAt *time.Time `json:"deadline_at,omitempty"`
	// Staleness says how fresh the agent's cached gate state must be.
	Staleness *Staleness `json:"staleness,omitempty"`
	// Emit, when set, turns stdout lines into ObsEvents.
	Emit *Emit `json:"emit,omitempty"`
	// Retry, when set, reruns the script on a non-zero exit or timeout.
	Retry *Retry `json:"retry,omitempty"`
	// BypassLocalLimit runs the command without waiting for the concurrency limiter.
	BypassLocalLimit bool `json:"bypass_local_limit,omitempty"`
}

// Staleness is the freshness requirement of a command's gate state.
type Staleness struct {
	// Mode is cached (default), unchecked or strict.
	Mode string `json:"mode"`
	// MaxCacheAge is the largest accepted age of cached state in strict mode, a Go duration such as "10m".
	MaxCacheAge string `json:"max_cache_age,omitempty"`
}

// Emit selects how a command's stdout is interpreted.
type Emit struct {
	// Type is "events": each stdout line is an ObsEvent.
	Type string `json:"type"`
}

// Retry is a command's retry policy.
type Retry struct {
	// Max is the number of extra attempts after the first.
	Max int `json:"max"`
	// BackoffSecs is the pause between attempts in seconds.
	BackoffSecs int64 `json:"backoff_secs"`
}

// commandAlias has Command's fields without its methods, for decoding.
type commandAlias Command

// UnmarshalJSON decodes a Command, accepting "job_id" as an alias of "exec_id".
func (c *Command) UnmarshalJSON(b []byte) error {
	var aux struct {
		commandAlias
		JobID string `json:"job_id"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			// Name the field as on the wire, not by the decoding helper's path.
			te.Field = strings.TrimPrefix(te.Field, "commandAlias.")
		}
		return err
	}
	*c = Command(aux.commandAlias)
	if c.ExecID == "" {
		c.ExecID = aux.JobID
	}
	return nil
}

// EffectiveTimeout is the run timeout: TimeoutSecs, at least one second.
func (c *Command) EffectiveTimeout() time.Duration {
	n := c.TimeoutSecs
	if n < 1 {
		n = 1
	}
	const maxSecs = int64(1<<63-1) / int64(time.Second)
	if n > maxSecs {
		n = maxSecs
	}
	return time.Duration(n) * time.Second
}

// StalenessMode is the effective staleness mode: cached when unset.
func (c *Command) StalenessMode() string {
	if c.Staleness == nil || c.Staleness.Mode == "" {
		return StalenessCached
	}
	return c.Staleness.Mode
}

// EffectiveRunAs is RunAs, or system when unset.
func (c *Command) EffectiveRunAs() string {
	if c.RunAs == "" {
		return RunAsSystem
	}
	return c.RunAs
}

// Validate reports the first way c breaks the protocol's rules. It does not
// check subject tokens (see package subject) or whether the shell is
// supported on this OS (exit 122 is the agent's decision).
func (c *Command) Validate() error {
	switch {
	case c.RequestID == "":
		return fmt.Errorf("%w: request_id is empty", ErrInvalid)
	case c.Shell == "":
		return fmt.Errorf("%w: shell is empty", ErrInvalid)
	case c.Script == "" && c.ScriptObject == "":
		return fmt.Errorf("%w: neither script nor script_object is set", ErrInvalid)
	case c.Script != "" && c.ScriptObject != "":
		return fmt.Errorf("%w: both script and script_object are set", ErrInvalid)
	case c.TimeoutSecs < 0:
		return fmt.Errorf("%w: timeout_secs %d is negative", ErrInvalid, c.TimeoutSecs)
	case c.JitterSecs < 0:
		return fmt.Errorf("%w: jitter_secs %d is negative", ErrInvalid, c.JitterSecs)
	}
	if c.ScriptObjectSHA256 != "" && !isLowerHex(c.ScriptObjectSHA256, 64) {
		return fmt.Errorf("%w: script_object_sha256 is not 64 lower-case hex digits", ErrInvalid)
	}
	if c.ScriptObject != "" && c.ScriptObjectSHA256 == "" {
		return fmt.Errorf("%w: script_object without script_object_sha256", ErrInvalid)
	}
	switch c.EffectiveRunAs() {
	case RunAsSystem, RunAsUser, RunAsSystemGUI:
	default:
		return fmt.Errorf("%w: run_as %q is not system, user or system_gui", ErrInvalid, c.RunAs)
	}
	switch c.StalenessMode() {
	case StalenessCached, StalenessUnchecked:
	case StalenessStrict:
		if _, err := c.Staleness.MaxAge(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: staleness mode %q is not cached, unchecked or strict", ErrInvalid, c.Staleness.Mode)
	}
	if c.Emit != nil && c.Emit.Type != EmitEvents {
		return fmt.Errorf("%w: emit type %q is not %q", ErrInvalid, c.Emit.Type, EmitEvents)
	}
	if c.Retry != nil && (c.Retry.Max < 0 || c.Retry.BackoffSecs < 0) {
		return fmt.Errorf("%w: retry max and backoff_secs must not be negative", ErrInvalid)
	}
	return nil
}

// MaxAge parses MaxCacheAge; strict mode requires a positive duration.
func (s *Staleness) MaxAge() (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s.MaxCacheAge))
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%w: staleness max_cache_age %q is not a positive duration", ErrInvalid, s.MaxCacheAge)
	}
	return d, nil
}

// DecodeCommand decodes and validates a Command.
func DecodeCommand(b []byte) (*Command, error) {
	var c Command
	if err := decode(b, &c, "command"); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
