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
// commands.pc.<pc_id>. Its encoding (MarshalJSON) is the one upstream's
// serde derive produces: fields in upstream's order, exec_id and jitter_secs
// always present (null when unset), run_as and staleness always present.
type Command struct {
	// BypassLocalLimit runs the command without waiting for the concurrency limiter.
	BypassLocalLimit bool `json:"bypass_local_limit,omitempty"`
	// ID is the job (manifest) id; AdhocID for ad hoc commands.
	ID string `json:"id"`
	// Version is the script version, checked against script_current[ID].
	Version string `json:"version"`
	// RequestID identifies one dispatch, the same on every target subject; it is the dedup key.
	RequestID string `json:"request_id"`
	// ExecID identifies the execution for kill.<exec_id> and events; also accepted as "job_id".
	// Encoded as null when empty.
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
	// JitterSecs is the upper bound of a random delay before the command is
	// queued; encoded as null when 0.
	JitterSecs int64 `json:"jitter_secs,omitempty"`
	// RunAs is system, user or system_gui; empty means system (encoded as "system").
	RunAs string `json:"run_as,omitempty"`
	// Cwd is the working directory of the script.
	Cwd string `json:"cwd,omitempty"`
	// DeadlineAt is the time after which the command must not start.
	DeadlineAt *time.Time `json:"deadline_at,omitempty"`
	// Staleness says how fresh the agent's cached gate state must be; nil
	// means {"mode":"cached"} (encoded so).
	Staleness *Staleness `json:"staleness,omitempty"`
	// Emit, when set, turns stdout lines into ObsEvents.
	Emit *Emit `json:"emit,omitempty"`
	// Check, when set, makes the run a health check: the agent caches the
	// Check it derives from the run (see CheckHint).
	Check *CheckHint `json:"check,omitempty"`
	// Collect, when set, makes the run a file collector: after a clean run
	// the agent zips the files the script lists into the collections
	// object store (see CollectHint).
	Collect *CollectHint `json:"collect,omitempty"`
	// Retry, when set, reruns the script on a non-zero exit or timeout.
	Retry *Retry `json:"retry,omitempty"`
	// Finalize, when set, is a hook run after a clean run (see FinalizeCommand).
	Finalize *FinalizeCommand `json:"finalize,omitempty"`
}

// Staleness is the freshness requirement of a command's gate state.
// Upstream it is a serde enum tagged by "mode": decoding rejects a missing
// or unknown mode and a strict mode without max_cache_age.
type Staleness struct {
	// Mode is cached (default), unchecked or strict.
	Mode string `json:"mode"`
	// MaxCacheAge is the largest accepted age of cached state in strict
	// mode, a humantime duration such as "0s", "5m" or "1h 30m" (see
	// ParseDuration). Encoded only in strict mode, and always then.
	MaxCacheAge string `json:"max_cache_age,omitempty"`
}

// Emit selects how a command's stdout is interpreted (upstream's manifest
// EmitConfig).
type Emit struct {
	// Type is "events": each stdout line is an ObsEvent.
	Type string `json:"type"`
	// WatermarkPath is upstream's operator hint naming where the script
	// keeps its own watermark; documentation only, the agent does not read
	// it (its own watermark is kept in the data dir).
	WatermarkPath string `json:"watermark_path,omitempty"`
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

// UnmarshalJSON decodes a Command, accepting "job_id" as an alias of
// "exec_id" (both at once is a duplicate field, as in serde).
func (c *Command) UnmarshalJSON(b []byte) error {
	var aux struct {
		commandAlias
		JobID *string `json:"job_id"`
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
	if aux.JobID != nil {
		if c.ExecID != "" {
			return fmt.Errorf("%w: command: duplicate field \"exec_id\" (also sent as \"job_id\")", ErrInvalid)
		}
		c.ExecID = *aux.JobID
	}
	return nil
}

// MarshalJSON encodes c as upstream's serde derive does (see Command).
func (c Command) MarshalJSON() ([]byte, error) {
	type wireCommand struct {
		BypassLocalLimit   bool             `json:"bypass_local_limit,omitempty"`
		ID                 string           `json:"id"`
		Version            string           `json:"version"`
		RequestID          string           `json:"request_id"`
		ExecID             *string          `json:"exec_id"`
		Shell              string           `json:"shell"`
		Script             string           `json:"script"`
		ScriptObject       string           `json:"script_object,omitempty"`
		ScriptObjectSHA256 string           `json:"script_object_sha256,omitempty"`
		TimeoutSecs        int64            `json:"timeout_secs"`
		JitterSecs         *int64           `json:"jitter_secs"`
		RunAs              string           `json:"run_as"`
		Cwd                string           `json:"cwd,omitempty"`
		DeadlineAt         *chronoTime      `json:"deadline_at,omitempty"`
		Staleness          Staleness        `json:"staleness"`
		Emit               *Emit            `json:"emit,omitempty"`
		Check              *CheckHint       `json:"check,omitempty"`
		Collect            *CollectHint     `json:"collect,omitempty"`
		Retry              *Retry           `json:"retry,omitempty"`
		Finalize           *FinalizeCommand `json:"finalize,omitempty"`
	}
	w := wireCommand{
		BypassLocalLimit: c.BypassLocalLimit, ID: c.ID, Version: c.Version, RequestID: c.RequestID,
		Shell: c.Shell, Script: c.Script, ScriptObject: c.ScriptObject, ScriptObjectSHA256: c.ScriptObjectSHA256,
		TimeoutSecs: c.TimeoutSecs, RunAs: c.EffectiveRunAs(), Cwd: c.Cwd, DeadlineAt: chronoTimePtr(c.DeadlineAt),
		Staleness: Staleness{Mode: StalenessCached}, Emit: c.Emit, Check: c.Check, Collect: c.Collect,
		Retry: c.Retry, Finalize: c.Finalize,
	}
	if c.ExecID != "" {
		w.ExecID = &c.ExecID
	}
	if c.JitterSecs != 0 {
		w.JitterSecs = &c.JitterSecs
	}
	if c.Staleness != nil {
		w.Staleness = *c.Staleness
	}
	return marshal(w)
}

// UnmarshalJSON decodes a Staleness as upstream's tagged enum: mode is
// required and must be cached, unchecked or strict; strict requires
// max_cache_age (a string; its value is checked when used, see MaxAge).
func (s *Staleness) UnmarshalJSON(b []byte) error {
	var aux struct {
		Mode        *string `json:"mode"`
		MaxCacheAge *string `json:"max_cache_age"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	switch {
	case aux.Mode == nil:
		return fmt.Errorf("%w: staleness: missing field \"mode\"", ErrInvalid)
	case *aux.Mode != StalenessCached && *aux.Mode != StalenessUnchecked && *aux.Mode != StalenessStrict:
		return fmt.Errorf("%w: staleness mode %q is not cached, unchecked or strict", ErrInvalid, *aux.Mode)
	case *aux.Mode == StalenessStrict && aux.MaxCacheAge == nil:
		return fmt.Errorf("%w: staleness: strict mode without max_cache_age", ErrInvalid)
	}
	*s = Staleness{Mode: *aux.Mode}
	if aux.MaxCacheAge != nil && *aux.Mode == StalenessStrict {
		s.MaxCacheAge = *aux.MaxCacheAge
	}
	return nil
}

// MarshalJSON encodes s as upstream does: {"mode":"cached"},
// {"mode":"unchecked"} or {"mode":"strict","max_cache_age":"..."}; an
// empty mode is written as cached.
func (s Staleness) MarshalJSON() ([]byte, error) {
	mode := s.Mode
	if mode == "" {
		mode = StalenessCached
	}
	if mode == StalenessStrict {
		return marshal(struct {
			Mode        string `json:"mode"`
			MaxCacheAge string `json:"max_cache_age"`
		}{mode, s.MaxCacheAge})
	}
	return marshal(struct {
		Mode string `json:"mode"`
	}{mode})
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

// Validate reports the first way c breaks the protocol's rules. When both
// script and script_object are set, script wins (as upstream's resolver
// does) and script_object is not checked beyond its digest's form. It does not
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
	case c.TimeoutSecs < 0:
		return fmt.Errorf("%w: timeout_secs %d is negative", ErrInvalid, c.TimeoutSecs)
	case c.JitterSecs < 0:
		return fmt.Errorf("%w: jitter_secs %d is negative", ErrInvalid, c.JitterSecs)
	}
	if c.ScriptObjectSHA256 != "" && !isLowerHex(c.ScriptObjectSHA256, 64) {
		return fmt.Errorf("%w: script_object_sha256 is not 64 lower-case hex digits", ErrInvalid)
	}
	if c.Script == "" && c.ScriptObject != "" && c.ScriptObjectSHA256 == "" {
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
		// A malformed max_cache_age is not an error: MaxAge reads it as 0
		// (fail closed), as upstream does.
	default:
		return fmt.Errorf("%w: staleness mode %q is not cached, unchecked or strict", ErrInvalid, c.Staleness.Mode)
	}
	if c.Emit != nil && c.Emit.Type != EmitEvents {
		return fmt.Errorf("%w: emit type %q is not %q", ErrInvalid, c.Emit.Type, EmitEvents)
	}
	if c.Finalize != nil {
		if err := c.Finalize.validate(); err != nil {
			return err
		}
	}
	if c.Retry != nil && (c.Retry.Max < 0 || c.Retry.BackoffSecs < 0) {
		return fmt.Errorf("%w: retry max and backoff_secs must not be negative", ErrInvalid)
	}
	return nil
}

// MaxAge is the strict-mode age limit: MaxCacheAge parsed with
// ParseDuration. "0s" is 0 (the agent must be connected right now). A
// malformed or missing value yields 0 together with the parse error: as
// upstream, a bad max_cache_age fails closed (the strictest reading), so
// callers use the returned duration either way and may log the error.
func (s *Staleness) MaxAge() (time.Duration, error) {
	if s == nil {
		return 0, fmt.Errorf("%w: staleness is not set", ErrInvalid)
	}
	d, err := ParseDuration(s.MaxCacheAge)
	if err != nil {
		return 0, fmt.Errorf("staleness max_cache_age: %w", err)
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
