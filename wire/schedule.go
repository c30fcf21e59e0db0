package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule run locations ([Schedule.RunsOn]).
const (
	RunsOnBackend = "backend" // The backend's scheduler fires (default).
	RunsOnAgent   = "agent"   // Each targeted agent fires locally, also offline.
)

// Schedule time zones ([Schedule.Tz], [Freeze.Tz]).
const (
	TzLocal = "local" // The running host's time zone (default).
	TzUTC   = "utc"   // UTC.
)

// Event triggers of a `when: {on: [...]}` schedule ([When.On]).
const (
	TriggerStartup       = "startup"        // Once per OS boot.
	TriggerLogon         = "logon"          // An interactive session logon.
	TriggerLock          = "lock"           // The workstation was locked.
	TriggerUnlock        = "unlock"         // The workstation was unlocked.
	TriggerNetworkChange = "network_change" // The network changed (debounced).
)

// Triggers lists every event trigger, in upstream's order.
var Triggers = []string{TriggerStartup, TriggerLogon, TriggerLock, TriggerUnlock, TriggerNetworkChange}

// Schedule is a document of KV bucket schedules, keyed by its ID
// (upstream's manifest::Schedule): which job to run ([Schedule.JobID], a key
// of bucket jobs), on whom ([Schedule.Target]) and when ([Schedule.When]).
// Upstream flattens its fan-out plan (target, rollout, jitter, deadline_at)
// into the top level; so does this type.
//
// Decoding follows serde: unknown fields are ignored; an unknown `when`
// variant, `tz`, `runs_on` or trigger name is an error (those enums are
// closed upstream); enabled defaults to true, tz to local, runs_on to
// backend. [Schedule.MarshalJSON] writes upstream's field order and
// omissions.
type Schedule struct {
	// ID is the schedule id, also its KV key.
	ID string `json:"id"`
	// When says when the schedule fires.
	When When `json:"when"`
	// JobID is the key of the job (manifest) in bucket jobs.
	JobID string `json:"job_id"`
	// Target is who runs it; an empty target matches nobody.
	Target Target `json:"target"`
	// Rollout is upstream's wave rollout, carried verbatim (backend only).
	Rollout json.RawMessage `json:"rollout,omitempty"`
	// Jitter is a humantime upper bound of a random start delay.
	Jitter string `json:"jitter,omitempty"`
	// DeadlineAt is stamped by upstream's backend scheduler on emitted
	// commands; carried verbatim.
	DeadlineAt *time.Time `json:"deadline_at,omitempty"`
	// Active is the optional validity window [from, until).
	Active *Active `json:"active,omitempty"`
	// Constraints gate when, within Active, a fire may happen.
	Constraints *Constraints `json:"constraints,omitempty"`
	// OnFailure says what to do after a failed run.
	OnFailure *OnFailure `json:"on_failure,omitempty"`
	// Tz is the time zone of the wall-clock fields: local (default) or utc.
	Tz string `json:"tz"`
	// StartingDeadline is a humantime window after a fire during which the
	// run may still start; for `on: [startup]`, how long after boot the
	// agent may still fire.
	StartingDeadline string `json:"starting_deadline,omitempty"`
	// RunsOn is backend (default) or agent.
	RunsOn string `json:"runs_on"`
	// Enabled is false for a disabled schedule (default true).
	Enabled bool `json:"enabled"`
	// Tags are free-form operator labels.
	Tags []string `json:"tags,omitempty"`
	// Origin is upstream's GitOps provenance, carried verbatim.
	Origin json.RawMessage `json:"origin,omitempty"`
}

// Target selects agents: all, or by pc id, or by group. Upstream always
// writes all three fields.
type Target struct {
	// Groups lists group names; a member of any of them matches.
	Groups []string `json:"groups"`
	// Pcs lists pc ids.
	Pcs []string `json:"pcs"`
	// All matches every agent.
	All bool `json:"all"`
}

// Matches reports whether an agent with this pc id and these groups is
// targeted: all, or its pc id is listed, or one of its groups is.
func (t Target) Matches(pcID string, groups []string) bool {
	if t.All {
		return true
	}
	for _, p := range t.Pcs {
		if p == pcID {
			return true
		}
	}
	for _, g := range t.Groups {
		for _, m := range groups {
			if g == m {
				return true
			}
		}
	}
	return false
}

// MarshalJSON writes nil lists as [] as serde does.
func (t Target) MarshalJSON() ([]byte, error) {
	type plain Target
	p := plain(t)
	if p.Groups == nil {
		p.Groups = []string{}
	}
	if p.Pcs == nil {
		p.Pcs = []string{}
	}
	return marshal(p)
}

// When is upstream's externally tagged `when` enum: exactly one of its
// fields is set. On the wire it is a one-key object:
//
//	{"per_pc":"once"}  {"per_pc":{"every":"6h"}}
//	{"per_target":"once"}  {"per_target":{"every":"24h"}}
//	{"calendar":{"at":"09:00","days":["mon-fri"]}}
//	{"calendar":{"at":"2026-06-10 09:00"}}
//	{"on":["startup","logon"]}
type When struct {
	// PerPc fires at each targeted pc until it succeeds (once) or again
	// after every.
	PerPc *PerPolicy `json:"per_pc,omitempty"`
	// PerTarget is backend-only (needs fleet-wide completion data).
	PerTarget *PerPolicy `json:"per_target,omitempty"`
	// Calendar is a wall-clock trigger.
	Calendar *CalendarSpec `json:"calendar,omitempty"`
	// On lists OS event triggers (agent only); nil when not an event schedule.
	On []string `json:"on,omitempty"`
}

// PerPolicy is upstream's untagged `once` | `once_per_version` |
// `{"every": "<humantime>"}` (manifest.rs PerPolicy).
type PerPolicy struct {
	// Every is the re-arm interval; empty means once (or once per version,
	// see OncePerVersion). (The tag is for the strict decoder's key
	// matching; encoding is MarshalJSON's.)
	Every string `json:"every"`
	// OncePerVersion is upstream's `once_per_version`: succeed once per
	// job version, then skip until the job's version changes. Upstream
	// allows it only on per_pc with runs_on backend (see Validate); an
	// agent reads it so that such a schedule decodes, and does not run it.
	OncePerVersion bool `json:"-"`
}

// Once reports whether the policy is `once` (succeed once, skip forever).
func (p PerPolicy) Once() bool { return p.Every == "" && !p.OncePerVersion }

// MarshalJSON writes "once", "once_per_version" or {"every":"..."}.
func (p PerPolicy) MarshalJSON() ([]byte, error) {
	if p.OncePerVersion {
		return []byte(`"once_per_version"`), nil
	}
	if p.Every == "" {
		return []byte(`"once"`), nil
	}
	return marshal(struct {
		Every string `json:"every"`
	}{p.Every})
}

// UnmarshalJSON accepts "once", "once_per_version" or an object with a
// string "every" (other keys ignored); anything else is an error, as
// serde's untagged enum.
func (p *PerPolicy) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		switch s {
		case "once":
			*p = PerPolicy{}
		case "once_per_version":
			*p = PerPolicy{OncePerVersion: true}
		default:
			return fmt.Errorf("%w: per-policy %q is not \"once\", \"once_per_version\" or {\"every\": ...}", ErrInvalid, s)
		}
		return nil
	}
	var aux struct {
		Every *string `json:"every"`
	}
	if err := json.Unmarshal(b, &aux); err != nil || aux.Every == nil {
		return fmt.Errorf("%w: per-policy is not \"once\" or {\"every\": \"<duration>\"}", ErrInvalid)
	}
	if *aux.Every == "" {
		// Keep Once() unambiguous: an empty every can never be valid.
		return fmt.Errorf("%w: per-policy every is empty", ErrInvalid)
	}
	*p = PerPolicy{Every: *aux.Every}
	return nil
}

// CalendarSpec is a wall-clock trigger: At is "HH:MM" (repeating, on Days)
// or "YYYY-MM-DD HH:MM" (also with "T" or "/" separators: a one-shot).
type CalendarSpec struct {
	// At is the time of day, or a date and time for a one-shot.
	At string `json:"at"`
	// Days filters the weekdays of a repeating At: "mon".."sun", 0-7,
	// ranges ("mon-fri"), "*", nth weekday ("tue#2"), last weekday ("friL").
	// Empty means every day.
	Days []string `json:"days,omitempty"`
}

// kind reports which variant is set, and how many are.
func (w *When) kind() (string, int) {
	name, n := "", 0
	if w.PerPc != nil {
		name, n = "per_pc", n+1
	}
	if w.PerTarget != nil {
		name, n = "per_target", n+1
	}
	if w.Calendar != nil {
		name, n = "calendar", n+1
	}
	if w.On != nil {
		name, n = "on", n+1
	}
	return name, n
}

// IsEvent reports whether the schedule fires on OS events (`on`).
func (w When) IsEvent() bool { return w.On != nil }

// String is upstream's operator summary: "per_pc once", "per_pc every 6h",
// "at 09:00 [mon-fri]", "on [startup,logon]".
func (w When) String() string {
	policy := func(p *PerPolicy) string {
		switch {
		case p.OncePerVersion:
			return "once_per_version"
		case p.Once():
			return "once"
		}
		return "every " + p.Every
	}
	switch {
	case w.PerPc != nil:
		return "per_pc " + policy(w.PerPc)
	case w.PerTarget != nil:
		return "per_target " + policy(w.PerTarget)
	case w.Calendar != nil && len(w.Calendar.Days) == 0:
		return "at " + w.Calendar.At
	case w.Calendar != nil:
		return "at " + w.Calendar.At + " [" + strings.Join(w.Calendar.Days, ",") + "]"
	case w.On != nil:
		return "on [" + strings.Join(w.On, ",") + "]"
	}
	return "none"
}

// MarshalJSON writes the one-key object; an empty When is an error.
func (w When) MarshalJSON() ([]byte, error) {
	switch _, n := w.kind(); {
	case n != 1:
		return nil, fmt.Errorf("%w: when must have exactly one of per_pc, per_target, calendar, on (has %d)", ErrInvalid, n)
	case w.PerPc != nil:
		return marshal(struct {
			V *PerPolicy `json:"per_pc"`
		}{w.PerPc})
	case w.PerTarget != nil:
		return marshal(struct {
			V *PerPolicy `json:"per_target"`
		}{w.PerTarget})
	case w.Calendar != nil:
		return marshal(struct {
			V *CalendarSpec `json:"calendar"`
		}{w.Calendar})
	default:
		return marshal(struct {
			V []string `json:"on"`
		}{w.On})
	}
}

// UnmarshalJSON decodes the externally tagged enum: an object with exactly
// one known key. A trigger name other than the five is an error (upstream's
// enum is closed).
func (w *When) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("%w: when: want an object such as {\"per_pc\":\"once\"}", ErrInvalid)
	}
	if len(m) != 1 {
		return fmt.Errorf("%w: when: want exactly one of per_pc, per_target, calendar, on (got %d keys)", ErrInvalid, len(m))
	}
	*w = When{}
	for k, v := range m {
		switch k {
		case "per_pc", "per_target":
			var p PerPolicy
			if err := p.UnmarshalJSON(v); err != nil {
				return fmt.Errorf("when.%s: %w", k, err)
			}
			if k == "per_pc" {
				w.PerPc = &p
			} else {
				w.PerTarget = &p
			}
		case "calendar":
			var c CalendarSpec
			if err := decode(v, &c, "when.calendar"); err != nil {
				return err
			}
			w.Calendar = &c
		case "on":
			var on []string
			if err := json.Unmarshal(v, &on); err != nil || on == nil {
				return fmt.Errorf("%w: when.on: want a list of trigger names", ErrInvalid)
			}
			for _, t := range on {
				if !knownTrigger(t) {
					return fmt.Errorf("%w: when.on: unknown trigger %q (want startup, logon, lock, unlock, network_change)", ErrInvalid, t)
				}
			}
			w.On = on
		default:
			return fmt.Errorf("%w: when: unknown variant %q (want per_pc, per_target, calendar, on)", ErrInvalid, k)
		}
	}
	return nil
}

func knownTrigger(t string) bool {
	for _, k := range Triggers {
		if t == k {
			return true
		}
	}
	return false
}

// Active is a schedule's validity window [From, Until). A bound is
// RFC 3339 (its offset honoured) or "YYYY-MM-DD" (midnight in the
// schedule's tz).
type Active struct {
	// From: dormant before this instant.
	From string `json:"from,omitempty"`
	// Until: dormant from this instant on.
	Until string `json:"until,omitempty"`
}

// Constraints gate fires within the active period.
type Constraints struct {
	// Window is "HH:MM-HH:MM" in the schedule's tz, [start, end); start > end
	// crosses midnight.
	Window string `json:"window,omitempty"`
	// MaxConcurrent is a backend-only fleet cap.
	MaxConcurrent *uint32 `json:"max_concurrent,omitempty"`
	// SkipDates lists "YYYY-MM-DD" dates (in tz) on which nothing fires.
	SkipDates []string `json:"skip_dates,omitempty"`
	// Require lists host-state gates (agent only).
	Require *Require `json:"require,omitempty"`
}

// Require is a host-state gate (upstream's constraints.require): every set
// requirement must hold, and one that cannot be evaluated does not hold.
type Require struct {
	// ACPower: only on AC power.
	ACPower bool `json:"ac_power,omitempty"`
	// Idle: only after no user input for at least this humantime duration.
	Idle string `json:"idle,omitempty"`
	// CPUBelow: only while whole-machine CPU is strictly below this percent.
	CPUBelow *float64 `json:"cpu_below,omitempty"`
	// Network: only with internet connectivity.
	Network bool `json:"network,omitempty"`
}

// MarshalJSON writes cpu_below as serde does (20.0, never 20).
func (r Require) MarshalJSON() ([]byte, error) {
	return marshal(struct {
		ACPower  bool       `json:"ac_power,omitempty"`
		Idle     string     `json:"idle,omitempty"`
		CPUBelow *jsonFloat `json:"cpu_below,omitempty"`
		Network  bool       `json:"network,omitempty"`
	}{r.ACPower, r.Idle, jsonFloatPtr(r.CPUBelow), r.Network})
}

// IsEmpty reports whether no requirement is set.
func (r *Require) IsEmpty() bool {
	return r == nil || (!r.ACPower && r.Idle == "" && r.CPUBelow == nil && !r.Network)
}

// OnFailure is what to do after a failed run.
type OnFailure struct {
	// Retry reruns a failed script in-process.
	Retry *ScheduleRetry `json:"retry,omitempty"`
}

// ScheduleRetry is a schedule's retry policy; lowered onto [Command.Retry]
// with the backoff in whole seconds.
type ScheduleRetry struct {
	// Max is the number of extra attempts (1..10).
	Max uint32 `json:"max"`
	// Backoff is the humantime pause between attempts (at least 1s).
	Backoff string `json:"backoff"`
}

// Freeze is the fleet-wide change freeze, KV fleet_config key freeze
// (upstream's manifest::Freeze). A present key with no bounds freezes
// until deleted; with bounds, within [From, Until) in Tz. An absent key
// means not frozen.
type Freeze struct {
	// From: frozen from this instant (RFC 3339 or YYYY-MM-DD in Tz).
	From string `json:"from,omitempty"`
	// Until: thawed from this instant on.
	Until string `json:"until,omitempty"`
	// Reason is an operator note.
	Reason string `json:"reason,omitempty"`
	// Tz is local (default) or utc, for bare-date bounds.
	Tz string `json:"tz"`
}

// scheduleAlias has Schedule's fields without its methods.
type scheduleAlias Schedule

// UnmarshalJSON decodes with upstream's defaults (enabled true, tz local,
// runs_on backend) and checks the closed enums and required fields.
func (s *Schedule) UnmarshalJSON(b []byte) error {
	aux := struct {
		scheduleAlias
		When  *When   `json:"when"`
		JobID *string `json:"job_id"`
		ID    *string `json:"id"`
	}{scheduleAlias: scheduleAlias{Enabled: true, Tz: TzLocal, RunsOn: RunsOnBackend}}
	if err := json.Unmarshal(b, &aux); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			te.Field = strings.TrimPrefix(te.Field, "scheduleAlias.")
		}
		return err
	}
	switch {
	case aux.ID == nil:
		return fmt.Errorf("%w: schedule: missing field \"id\"", ErrInvalid)
	case aux.When == nil:
		return fmt.Errorf("%w: schedule: missing field \"when\"", ErrInvalid)
	case aux.JobID == nil:
		return fmt.Errorf("%w: schedule: missing field \"job_id\"", ErrInvalid)
	}
	*s = Schedule(aux.scheduleAlias)
	s.ID, s.When, s.JobID = *aux.ID, *aux.When, *aux.JobID
	if err := checkTz(s.Tz, "schedule"); err != nil {
		return err
	}
	if s.RunsOn != RunsOnBackend && s.RunsOn != RunsOnAgent {
		return fmt.Errorf("%w: schedule: runs_on %q is not backend or agent", ErrInvalid, s.RunsOn)
	}
	return nil
}

// validatePlan applies upstream's create-time checks of the flattened
// fan-out plan (manifest.rs Schedule::validate, #917): a target that names
// someone (or, for runs_on backend, rollout waves instead), no rollout on
// runs_on agent, rollout waves that are listed, each with a group and a
// delay that parses and is shorter than starting_deadline, and no
// hand-set deadline_at (the scheduler stamps it).
func (s *Schedule) validatePlan() error {
	specified := s.Target.All || len(s.Target.Groups) > 0 || len(s.Target.Pcs) > 0
	rolloutSet := len(s.Rollout) > 0 && string(s.Rollout) != "null"
	var rollout struct {
		Waves []struct {
			Group string `json:"group"`
			Delay string `json:"delay"`
		} `json:"waves"`
	}
	if rolloutSet {
		if err := json.Unmarshal(s.Rollout, &rollout); err != nil {
			return fmt.Errorf("rollout: %v", err)
		}
	}
	switch {
	case s.RunsOn == RunsOnAgent && !specified:
		return errors.New("target must specify at least one of all / groups / pcs: a runs_on: agent schedule with an unspecified target never fires")
	case s.RunsOn == RunsOnAgent && rolloutSet:
		return errors.New("rollout waves are published by the backend and are ignored by runs_on: agent schedules; drop rollout or use runs_on: backend")
	case s.RunsOn != RunsOnAgent && !specified && len(rollout.Waves) == 0:
		return errors.New("target must specify at least one of all / groups / pcs (or set rollout.waves)")
	}
	if rolloutSet {
		if len(rollout.Waves) == 0 {
			return errors.New("rollout.waves must list at least one wave; omit rollout for a one-shot fan-out of target")
		}
		deadline, deadlineErr := ParseDuration(s.StartingDeadline)
		for i, w := range rollout.Waves {
			if strings.TrimSpace(w.Group) == "" {
				return fmt.Errorf("rollout.waves[%d].group must not be blank", i)
			}
			d, err := ParseDuration(w.Delay)
			if err != nil {
				return fmt.Errorf("rollout.waves[%d].delay: %v", i, err)
			}
			if s.StartingDeadline != "" && deadlineErr == nil && d >= deadline {
				return fmt.Errorf("rollout.waves[%d].delay (%q) must be shorter than starting_deadline (%q)", i, w.Delay, s.StartingDeadline)
			}
		}
	}
	if s.DeadlineAt != nil {
		return errors.New("deadline_at is computed by the scheduler (tick time + starting_deadline); set starting_deadline instead")
	}
	return nil
}

func checkTz(tz, what string) error {
	if tz != TzLocal && tz != TzUTC {
		return fmt.Errorf("%w: %s: tz %q is not local or utc", ErrInvalid, what, tz)
	}
	return nil
}

// MarshalJSON writes upstream's field order: id, when, job_id, the
// flattened plan (target, rollout, jitter, deadline_at), then active,
// constraints, on_failure (each omitted when empty), tz, starting_deadline,
// runs_on, enabled, tags, origin.
func (s Schedule) MarshalJSON() ([]byte, error) {
	type plain Schedule // Schedule's fields, in upstream's order, without this method
	w := plain(s)
	if w.Active != nil && w.Active.From == "" && w.Active.Until == "" {
		w.Active = nil
	}
	if c := w.Constraints; c != nil && c.Window == "" && c.MaxConcurrent == nil && len(c.SkipDates) == 0 && c.Require.IsEmpty() {
		w.Constraints = nil
	}
	if w.OnFailure != nil && w.OnFailure.Retry == nil {
		w.OnFailure = nil
	}
	if w.Tz == "" {
		w.Tz = TzLocal
	}
	if w.RunsOn == "" {
		w.RunsOn = RunsOnBackend
	}
	// plain with deadline_at written as chrono writes it (see Marshal).
	return marshal(struct {
		ID               string          `json:"id"`
		When             When            `json:"when"`
		JobID            string          `json:"job_id"`
		Target           Target          `json:"target"`
		Rollout          json.RawMessage `json:"rollout,omitempty"`
		Jitter           string          `json:"jitter,omitempty"`
		DeadlineAt       *chronoTime     `json:"deadline_at,omitempty"`
		Active           *Active         `json:"active,omitempty"`
		Constraints      *Constraints    `json:"constraints,omitempty"`
		OnFailure        *OnFailure      `json:"on_failure,omitempty"`
		Tz               string          `json:"tz"`
		StartingDeadline string          `json:"starting_deadline,omitempty"`
		RunsOn           string          `json:"runs_on"`
		Enabled          bool            `json:"enabled"`
		Tags             []string        `json:"tags,omitempty"`
		Origin           json.RawMessage `json:"origin,omitempty"`
	}{
		w.ID, w.When, w.JobID, w.Target, w.Rollout, w.Jitter, chronoTimePtr(w.DeadlineAt), w.Active, w.Constraints,
		w.OnFailure, w.Tz, w.StartingDeadline, w.RunsOn, w.Enabled, w.Tags, w.Origin,
	})
}

// UnmarshalJSON decodes a Freeze with tz defaulting to local.
func (f *Freeze) UnmarshalJSON(b []byte) error {
	type plain Freeze
	aux := plain{Tz: TzLocal}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*f = Freeze(aux)
	return checkTz(f.Tz, "freeze")
}

// MarshalJSON writes tz local when unset.
func (f Freeze) MarshalJSON() ([]byte, error) {
	type plain Freeze
	p := plain(f)
	if p.Tz == "" {
		p.Tz = TzLocal
	}
	return marshal(p)
}

// DecodeSchedule decodes a schedules document as an agent reads it:
// serde-strict (exact keys, no duplicate fields), unknown fields ignored,
// no cross-field validation (that is [Schedule.Validate], for writers).
func DecodeSchedule(b []byte) (*Schedule, error) {
	var s Schedule
	if err := decode(b, &s, "schedule"); err != nil {
		return nil, err
	}
	return &s, nil
}

// DecodeFreeze decodes the fleet_config freeze document. A caller that
// gets an error must treat the fleet as frozen (as upstream does).
func DecodeFreeze(b []byte) (*Freeze, error) {
	var f Freeze
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("%w: freeze: empty value", ErrInvalid)
	}
	if err := decode(b, &f, "freeze"); err != nil {
		return nil, err
	}
	return &f, nil
}

// Validate applies upstream's create-time checks (Schedule::validate) for
// writers such as `kanade schedule put`; agents do not call it (a stored
// schedule is never re-validated upstream, and bad fields fail closed at
// fire time).
func (s *Schedule) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: schedule %q: %s", ErrInvalid, s.ID, fmt.Sprintf(format, a...))
	}
	if s.ID == "" {
		return bad("id is empty")
	}
	if s.JobID == "" {
		return bad("job_id is empty")
	}
	if _, n := s.When.kind(); n != 1 {
		return bad("when must have exactly one of per_pc, per_target, calendar, on")
	}
	agent := s.RunsOn == RunsOnAgent
	switch w := s.When; {
	case w.PerTarget != nil && agent:
		return bad("when.per_target is backend-only; it cannot be combined with runs_on: agent")
	case w.On != nil && !agent:
		return bad("when.on (OS event trigger) requires runs_on: agent")
	case w.On != nil && len(w.On) == 0:
		return bad("when.on must list at least one trigger")
	}
	switch {
	case s.When.PerTarget != nil && s.When.PerTarget.OncePerVersion:
		return bad("when.per_target: once_per_version is per_pc only")
	case s.When.PerPc != nil && s.When.PerPc.OncePerVersion && agent:
		return bad("when.per_pc: once_per_version is backend-only; it cannot be combined with runs_on: agent")
	}
	for _, p := range []*PerPolicy{s.When.PerPc, s.When.PerTarget} {
		if p != nil && !p.Once() && !p.OncePerVersion {
			if _, err := ParseDuration(p.Every); err != nil {
				return bad("when.every: %v", err)
			}
		}
	}
	if c := s.When.Calendar; c != nil {
		if _, err := c.Parse(); err != nil {
			return bad("%v", err)
		}
	}
	if s.Jitter != "" {
		if _, err := ParseDuration(s.Jitter); err != nil {
			return bad("jitter: %v", err)
		}
	}
	if s.StartingDeadline != "" {
		if _, err := ParseDuration(s.StartingDeadline); err != nil {
			return bad("starting_deadline: %v", err)
		}
	}
	if err := s.validatePlan(); err != nil {
		return bad("%v", err)
	}
	if a := s.Active; a != nil {
		if err := checkBounds(a.From, a.Until, s.Tz, "active"); err != nil {
			return bad("%v", err)
		}
	}
	if c := s.Constraints; c != nil {
		if c.Window != "" {
			if _, _, err := ParseWindow(c.Window); err != nil {
				return bad("%v", err)
			}
		}
		for _, d := range c.SkipDates {
			if _, err := time.Parse(time.DateOnly, strings.TrimSpace(d)); err != nil {
				return bad("constraints.skip_dates: invalid date %q", d)
			}
		}
		if c.MaxConcurrent != nil {
			if agent {
				return bad("constraints.max_concurrent is backend-only; it cannot be combined with runs_on: agent")
			}
			if *c.MaxConcurrent == 0 {
				return bad("constraints.max_concurrent must be >= 1")
			}
		}
		if r := c.Require; !r.IsEmpty() {
			if !agent {
				return bad("constraints.require needs runs_on: agent")
			}
			if r.Idle != "" {
				if _, err := ParseDuration(strings.TrimSpace(r.Idle)); err != nil {
					return bad("constraints.require.idle: %v", err)
				}
			}
			if r.CPUBelow != nil && !(*r.CPUBelow > 0 && *r.CPUBelow <= 100) {
				return bad("constraints.require.cpu_below must be in (0, 100]")
			}
		}
	}
	if f := s.OnFailure; f != nil && f.Retry != nil {
		d, err := ParseDuration(f.Retry.Backoff)
		if err != nil {
			return bad("on_failure.retry.backoff: %v", err)
		}
		if d < time.Second {
			return bad("on_failure.retry.backoff must be >= 1s")
		}
		if f.Retry.Max < 1 || f.Retry.Max > 10 {
			return bad("on_failure.retry.max must be 1..=10")
		}
	}
	for _, t := range s.Tags {
		if strings.TrimSpace(t) == "" {
			return bad("tags must not contain empty entries")
		}
	}
	return nil
}

// Validate rejects unparseable bounds and from >= until.
func (f *Freeze) Validate() error {
	if err := checkBounds(f.From, f.Until, f.Tz, "freeze"); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

func checkBounds(from, until, tz, what string) error {
	loc := TzLocation(tz)
	var f, u time.Time
	var err error
	if from != "" {
		if f, err = ParseBound(from, loc); err != nil {
			return fmt.Errorf("%s: %v", what, err)
		}
	}
	if until != "" {
		if u, err = ParseBound(until, loc); err != nil {
			return fmt.Errorf("%s: %v", what, err)
		}
	}
	if from != "" && until != "" && !f.Before(u) {
		return fmt.Errorf("%s.from (%s) must be strictly before %s.until (%s)", what, from, what, until)
	}
	return nil
}

// TzLocation is the location of a schedule tz: UTC for "utc", the host's
// local zone otherwise.
func TzLocation(tz string) *time.Location {
	if tz == TzUTC {
		return time.UTC
	}
	return time.Local
}

// ParseBound parses an active/freeze bound: RFC 3339 (offset honoured) or
// "YYYY-MM-DD" (midnight in loc).
func ParseBound(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("unparseable bound %q (want YYYY-MM-DD or RFC3339)", s)
}

// ParseWindow parses "HH:MM-HH:MM" into minutes after midnight. Equal
// bounds are an error.
func ParseWindow(s string) (start, end int, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("constraints.window: %q must be 'HH:MM-HH:MM'", s)
	}
	if start, err = parseHHMM(strings.TrimSpace(a)); err != nil {
		return 0, 0, fmt.Errorf("constraints.window: %v", err)
	}
	if end, err = parseHHMM(strings.TrimSpace(b)); err != nil {
		return 0, 0, fmt.Errorf("constraints.window: %v", err)
	}
	if start == end {
		return 0, 0, fmt.Errorf("constraints.window: start and end are equal (%q); omit window for 'always'", s)
	}
	return start, end, nil
}

// parseHHMM parses chrono's %H:%M: one or two digit hour 0-23, minute 0-59.
func parseHHMM(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) < 1 || len(h) > 2 || len(m) < 1 || len(m) > 2 {
		return 0, fmt.Errorf("invalid time %q", s)
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 || h[0] == '+' || m[0] == '+' || h[0] == '-' || m[0] == '-' {
		return 0, fmt.Errorf("invalid time %q", s)
	}
	return hh*60 + mm, nil
}

// CalendarAt is a parsed [CalendarSpec]: the wall-clock hour and minute,
// and the date of a one-shot (Date.IsZero() for a repeating trigger).
type CalendarAt struct {
	Hour, Minute int
	// Date is the one-shot's date (its Location is meaningless: the date is
	// read in the schedule's tz); zero for a repeating calendar.
	Date time.Time
	// Days are the parsed day tokens of a repeating calendar.
	Days []DayToken
}

// DayToken is one parsed entry of [CalendarSpec.Days].
type DayToken struct {
	// From, To is an inclusive weekday range (0 = Sunday .. 6 = Saturday);
	// From == To for a single day; From > To wraps past Saturday.
	From, To time.Weekday
	// Any is "*": every day.
	Any bool
	// Nth is 1..5 for "tue#2" (the nth such weekday of the month), -1 for
	// "friL" (the last), 0 otherwise.
	Nth int
}

// Matches reports whether date d (in the schedule's tz) is one of the token's days.
func (t DayToken) Matches(d time.Time) bool {
	if t.Any {
		return true
	}
	wd := d.Weekday()
	in := t.From <= t.To && wd >= t.From && wd <= t.To || t.From > t.To && (wd >= t.From || wd <= t.To)
	if !in {
		return false
	}
	switch {
	case t.Nth > 0:
		return (d.Day()-1)/7+1 == t.Nth
	case t.Nth < 0:
		return d.AddDate(0, 0, 7).Month() != d.Month()
	}
	return true
}

var dayNames = map[string]time.Weekday{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

func parseDay(p string) (time.Weekday, bool) {
	p = strings.ToLower(p)
	if d, ok := dayNames[p]; ok {
		return d, true
	}
	if len(p) == 1 && p[0] >= '0' && p[0] <= '7' {
		return time.Weekday(int(p[0]-'0') % 7), true
	}
	return 0, false
}

// Parse parses At and Days as upstream does (chrono formats
// "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y/%m/%d %H:%M", then "%H:%M"); a
// dated At with Days is an error.
func (c *CalendarSpec) Parse() (CalendarAt, error) {
	s := strings.TrimSpace(c.At)
	var out CalendarAt
	parsed := false
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02T15:04", "2006/01/02 15:04"} {
		if len(s) < 11 {
			break
		}
		if _, err := time.Parse(layout[:10], s[:10]); err != nil || s[10] != layout[10] {
			continue
		}
		mins, err := parseHHMM(s[11:])
		if err != nil {
			continue
		}
		d, _ := time.Parse(layout[:10], s[:10])
		out = CalendarAt{Hour: mins / 60, Minute: mins % 60, Date: d}
		parsed = true
		break
	}
	if !parsed {
		mins, err := parseHHMM(s)
		if err != nil {
			return CalendarAt{}, fmt.Errorf("when.at: unparseable %q (want HH:MM or YYYY-MM-DD HH:MM)", c.At)
		}
		out = CalendarAt{Hour: mins / 60, Minute: mins % 60}
	}
	if !out.Date.IsZero() {
		if len(c.Days) > 0 {
			return CalendarAt{}, errors.New("when.at with a date is a one-shot and cannot be combined with days")
		}
		return out, nil
	}
	for _, tok := range c.Days {
		invalid := func(reason string) error {
			return fmt.Errorf("when.days: invalid day token %q (%s; want mon..sun, 0-7, a range like mon-fri, an nth-weekday like tue#2, a last-weekday like friL, or *)", tok, reason)
		}
		if day, nth, ok := strings.Cut(tok, "#"); ok {
			d, okd := parseDay(strings.TrimSpace(day))
			if !okd || strings.Contains(day, "-") {
				return CalendarAt{}, invalid("the part before # must be a single weekday")
			}
			n, err := strconv.Atoi(strings.TrimSpace(nth))
			if err != nil || n < 1 || n > 5 {
				return CalendarAt{}, invalid("the # ordinal must be 1..5")
			}
			out.Days = append(out.Days, DayToken{From: d, To: d, Nth: n})
			continue
		}
		if strings.HasSuffix(tok, "L") || strings.HasSuffix(tok, "l") {
			day := tok[:len(tok)-1]
			if day == "" {
				return CalendarAt{}, invalid("`L` (last-weekday) needs a weekday before it, e.g. friL")
			}
			d, okd := parseDay(day)
			if !okd {
				return CalendarAt{}, invalid("the part before L must be a single weekday")
			}
			out.Days = append(out.Days, DayToken{From: d, To: d, Nth: -1})
			continue
		}
		parts := strings.Split(tok, "-")
		if len(parts) > 2 {
			return CalendarAt{}, invalid("too many range bounds")
		}
		var ds []time.Weekday
		anyDay := false
		for _, part := range parts {
			p := strings.TrimSpace(part)
			if p == "" {
				return CalendarAt{}, invalid("empty range bound")
			}
			if p == "*" {
				anyDay = true
				continue
			}
			d, ok := parseDay(p)
			if !ok {
				return CalendarAt{}, invalid(fmt.Sprintf("%q is not a day", part))
			}
			ds = append(ds, d)
		}
		switch {
		case anyDay:
			out.Days = append(out.Days, DayToken{Any: true})
		case len(ds) == 1:
			out.Days = append(out.Days, DayToken{From: ds[0], To: ds[0]})
		default:
			from, to := ds[0], ds[1]
			if strings.TrimSpace(parts[1]) == "7" {
				// 7 is Sunday too, but "x-7" runs through the end of the week.
				out.Days = append(out.Days, DayToken{From: from, To: 6}, DayToken{From: 0, To: 0})
				continue
			}
			out.Days = append(out.Days, DayToken{From: from, To: to})
		}
	}
	return out, nil
}
