package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Job is a job manifest, a document of KV bucket jobs keyed by its ID
// (upstream's manifest::Manifest): the script-intrinsic half of a run (what
// and how), while a [Schedule] says when and on whom.
//
// The fields the agent executes are typed; the hints only the backend or a
// later stage reads (inventory, check, collect, aggregate, client, origin,
// feed, tier) are carried verbatim. Decoding follows serde: unknown fields
// are ignored (upstream #492), id, version, execute and execute.timeout are
// required, execute.shell and execute.run_as must be known values.
// [Job.MarshalJSON] writes upstream's field order, with description,
// inventory, emit and check written as null when unset, as serde does.
type Job struct {
	// ID is the job id, also its KV key and the [Command.ID] of its runs.
	ID string `json:"id"`
	// Version is the job version, the [Command.Version] of its runs.
	Version string `json:"version"`
	// Description is free text.
	Description string `json:"description,omitempty"`
	// Execute says what to run.
	Execute JobExecute `json:"execute"`
	// RequireApproval is a backend flag.
	RequireApproval bool `json:"require_approval"`
	// Inventory is the backend's inventory hint, carried verbatim.
	Inventory json.RawMessage `json:"inventory,omitempty"`
	// Emit, when set, makes stdout NDJSON ObsEvents.
	Emit *JobEmit `json:"emit,omitempty"`
	// Check is the health-check hint, forwarded onto [Command.Check].
	Check json.RawMessage `json:"check,omitempty"`
	// Collect is the file-collection hint, forwarded onto [Command.Collect].
	Collect json.RawMessage `json:"collect,omitempty"`
	// Aggregate is a backend read spec, carried verbatim.
	Aggregate json.RawMessage `json:"aggregate,omitempty"`
	// Staleness is the staleness policy forwarded onto [Command.Staleness];
	// nil means cached.
	Staleness *Staleness `json:"staleness,omitempty"`
	// Client is the Client App hint, carried verbatim.
	Client json.RawMessage `json:"client,omitempty"`
	// Tags are free-form operator labels.
	Tags []string `json:"tags,omitempty"`
	// Origin is upstream's GitOps provenance, carried verbatim.
	Origin json.RawMessage `json:"origin,omitempty"`
	// Finalize is the post-step hook, lowered onto [Command.Finalize].
	Finalize *JobFinalize `json:"finalize,omitempty"`
	// Feed is a controller-tier hint, carried verbatim.
	Feed json.RawMessage `json:"feed,omitempty"`
	// Tier is the execution tier, carried verbatim.
	Tier json.RawMessage `json:"tier,omitempty"`
}

// JobExecute is a job's execute block (upstream's manifest.rs Execute,
// fields in its order). Exactly one script source is set upstream at write
// time; an agent uses Script when non-empty, else ScriptObject.
type JobExecute struct {
	// BypassLocalLimit runs the job's commands without waiting for the
	// agent's concurrency limiter (copied onto Command.BypassLocalLimit,
	// as upstream's schedulers do); omitted when false. Upstream's first
	// field.
	BypassLocalLimit bool `json:"bypass_local_limit,omitempty"`
	// Shell is powershell, pwsh, cmd or sh (upstream ExecuteShell).
	Shell string `json:"shell"`
	// Script is the inline body; empty counts as unset.
	Script string `json:"script,omitempty"`
	// ScriptFile is resolved by the CLI and never reaches agents.
	ScriptFile string `json:"script_file,omitempty"`
	// ScriptObject is "<name>/<version>" in object store scripts.
	ScriptObject string `json:"script_object,omitempty"`
	// Timeout is a humantime duration ("30s", "10m"); unparseable means 60s.
	Timeout string `json:"timeout"`
	// RunAs is system (default), user or system_gui.
	RunAs string `json:"run_as"`
	// Cwd is the working directory.
	Cwd string `json:"cwd,omitempty"`
}

// JobEmit is a job's emit block.
type JobEmit struct {
	// Type is "events".
	Type string `json:"type"`
	// WatermarkPath documents where the script keeps its state; not read by the agent.
	WatermarkPath string `json:"watermark_path,omitempty"`
}

// JobFinalize is a job's finalize hook (upstream's FinalizeSpec).
type JobFinalize struct {
	// Shell is the hook's shell.
	Shell string `json:"shell"`
	// Script is the inline body.
	Script string `json:"script"`
	// Timeout is humantime, default "60s".
	Timeout string `json:"timeout"`
	// RunAs is system (default), user or system_gui.
	RunAs string `json:"run_as"`
	// Cwd is the working directory.
	Cwd string `json:"cwd,omitempty"`
	// OnEachBundle runs the hook once per uploaded collect bundle; always
	// written (upstream: #[serde(default)] without skip).
	OnEachBundle bool `json:"on_each_bundle"`
}

// DefaultJobTimeout is the run timeout of a job whose execute.timeout does
// not parse (as upstream's local scheduler).
const DefaultJobTimeout = 60 * time.Second

// jobAlias has Job's fields without its methods.
type jobAlias Job

// UnmarshalJSON decodes a Job with upstream's defaults and required fields.
func (j *Job) UnmarshalJSON(b []byte) error {
	aux := struct {
		jobAlias
		ID      *string `json:"id"`
		Version *string `json:"version"`
		Execute *struct {
			JobExecute
			Timeout *string `json:"timeout"`
			Shell   *string `json:"shell"`
		} `json:"execute"`
	}{}
	if err := json.Unmarshal(b, &aux); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			te.Field = strings.TrimPrefix(strings.ReplaceAll(te.Field, "JobExecute.", ""), "jobAlias.")
		}
		return err
	}
	switch {
	case aux.ID == nil:
		return fmt.Errorf("%w: job: missing field \"id\"", ErrInvalid)
	case aux.Version == nil:
		return fmt.Errorf("%w: job: missing field \"version\"", ErrInvalid)
	case aux.Execute == nil:
		return fmt.Errorf("%w: job: missing field \"execute\"", ErrInvalid)
	case aux.Execute.Shell == nil:
		return fmt.Errorf("%w: job: execute: missing field \"shell\"", ErrInvalid)
	case aux.Execute.Timeout == nil:
		return fmt.Errorf("%w: job: execute: missing field \"timeout\"", ErrInvalid)
	}
	*j = Job(aux.jobAlias)
	j.ID, j.Version = *aux.ID, *aux.Version
	j.Execute = aux.Execute.JobExecute
	j.Execute.Shell, j.Execute.Timeout = *aux.Execute.Shell, *aux.Execute.Timeout
	if err := checkShellRunAs(j.Execute.Shell, &j.Execute.RunAs, "job execute"); err != nil {
		return err
	}
	if f := j.Finalize; f != nil {
		if f.Timeout == "" {
			f.Timeout = "60s"
		}
		if err := checkShellRunAs(f.Shell, &f.RunAs, "job finalize"); err != nil {
			return err
		}
	}
	if j.Emit != nil && j.Emit.Type != EmitEvents {
		return fmt.Errorf("%w: job: emit type %q is not %q", ErrInvalid, j.Emit.Type, EmitEvents)
	}
	return nil
}

func checkShellRunAs(shell string, runAs *string, what string) error {
	switch shell {
	case ShellPowerShell, ShellPwsh, ShellCmd, ShellSh:
	default:
		return fmt.Errorf("%w: %s: shell %q is not powershell, pwsh, cmd or sh", ErrInvalid, what, shell)
	}
	if *runAs == "" {
		*runAs = RunAsSystem
	}
	switch *runAs {
	case RunAsSystem, RunAsUser, RunAsSystemGUI:
	default:
		return fmt.Errorf("%w: %s: run_as %q is not system, user or system_gui", ErrInvalid, what, *runAs)
	}
	return nil
}

// MarshalJSON writes upstream's field order and null/omission choices.
func (j Job) MarshalJSON() ([]byte, error) {
	null := json.RawMessage("null")
	orNull := func(r json.RawMessage) json.RawMessage {
		if len(r) == 0 {
			return null
		}
		return r
	}
	var desc *string
	if j.Description != "" {
		desc = &j.Description
	}
	st := Staleness{Mode: StalenessCached}
	if j.Staleness != nil {
		st = *j.Staleness
	}
	ex := j.Execute
	if ex.RunAs == "" {
		ex.RunAs = RunAsSystem
	}
	var fin *JobFinalize
	if j.Finalize != nil {
		f := *j.Finalize
		if f.RunAs == "" {
			f.RunAs = RunAsSystem
		}
		if f.Timeout == "" {
			f.Timeout = "60s"
		}
		fin = &f
	}
	return marshal(struct {
		ID              string          `json:"id"`
		Version         string          `json:"version"`
		Description     *string         `json:"description"`
		Execute         JobExecute      `json:"execute"`
		RequireApproval bool            `json:"require_approval"`
		Inventory       json.RawMessage `json:"inventory"`
		Emit            *JobEmit        `json:"emit"`
		Check           json.RawMessage `json:"check"`
		Collect         json.RawMessage `json:"collect,omitempty"`
		Aggregate       json.RawMessage `json:"aggregate,omitempty"`
		Staleness       Staleness       `json:"staleness"`
		Client          json.RawMessage `json:"client,omitempty"`
		Tags            []string        `json:"tags,omitempty"`
		Origin          json.RawMessage `json:"origin,omitempty"`
		Finalize        *JobFinalize    `json:"finalize,omitempty"`
		Feed            json.RawMessage `json:"feed,omitempty"`
		Tier            json.RawMessage `json:"tier,omitempty"`
	}{
		j.ID, j.Version, desc, ex, j.RequireApproval, orNull(j.Inventory), j.Emit, orNull(j.Check),
		j.Collect, j.Aggregate, st, j.Client, j.Tags, j.Origin, fin, j.Feed, j.Tier,
	})
}

// DecodeJob decodes a jobs document as an agent reads it: serde-strict
// (exact keys, no duplicate fields), unknown fields ignored.
func DecodeJob(b []byte) (*Job, error) {
	var j Job
	if err := decode(b, &j, "job"); err != nil {
		return nil, err
	}
	return &j, nil
}

// Validate applies upstream's create-time checks that concern the agent
// (manifest.rs Manifest::validate and Execute::validate_script_source):
// exactly one script source (a blank or whitespace-only script counts as
// unset), a script_object of the form <name>/<version> with each half
// [A-Za-z0-9._-], a parseable timeout, a tier of endpoint or controller,
// emit not combined with inventory/check/collect/feed, a collect hint with
// a name and a parseable max_size, and a finalize with a non-empty script,
// a parseable timeout, a shell that is neither cmd nor sh, and
// on_each_bundle only with a collect hint.
func (j *Job) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: job %q: %s", ErrInvalid, j.ID, fmt.Sprintf(format, a...))
	}
	if j.ID == "" {
		return bad("id is empty")
	}
	n := 0
	for _, set := range []bool{strings.TrimSpace(j.Execute.Script) != "", j.Execute.ScriptFile != "", j.Execute.ScriptObject != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return bad("execute: exactly one of script, script_file, script_object must be set")
	}
	if o := j.Execute.ScriptObject; o != "" {
		name, version, ok := strings.Cut(o, "/")
		if !ok || !isResourceID(name) || !isResourceID(version) {
			return bad("execute.script_object must be <name>/<version> with each half [A-Za-z0-9._-] (got %q)", o)
		}
	}
	if _, err := ParseDuration(j.Execute.Timeout); err != nil {
		return bad("execute.timeout: %v", err)
	}
	if len(j.Tier) > 0 && string(j.Tier) != "null" && string(j.Tier) != `"endpoint"` && string(j.Tier) != `"controller"` {
		return bad("tier %s is not endpoint or controller", truncateForError(string(j.Tier)))
	}
	if j.Emit != nil && (len(j.Inventory) > 0 || len(j.Check) > 0 || len(j.Collect) > 0 || len(j.Feed) > 0 && string(j.Feed) != "[]") {
		return bad("emit: is incompatible with inventory: / check: / collect: / feed:")
	}
	if f := j.Finalize; f != nil {
		if strings.TrimSpace(f.Script) == "" {
			return bad("finalize.script must not be empty")
		}
		if _, err := ParseDuration(f.Timeout); err != nil {
			return bad("finalize.timeout: %v", err)
		}
		if f.Shell == ShellCmd || f.Shell == ShellSh {
			return bad("finalize.shell: cmd and sh are not supported for finalize hooks; use powershell or pwsh")
		}
		if f.OnEachBundle && (len(j.Collect) == 0 || string(j.Collect) == "null") {
			return bad("finalize.on_each_bundle: true requires a collect: hint")
		}
	}
	if len(j.Collect) > 0 && string(j.Collect) != "null" {
		var c CollectHint
		if err := json.Unmarshal(j.Collect, &c); err != nil {
			return bad("collect: %v", err)
		}
		if strings.TrimSpace(c.Name) == "" {
			return bad("collect.name must not be empty")
		}
		if strings.TrimSpace(c.FilesField) == "" {
			return bad("collect.files_field must not be empty")
		}
		if c.MaxSize != "" {
			if _, err := ParseSize(c.MaxSize); err != nil {
				return bad("collect.max_size: %v", err)
			}
		}
	}
	for _, t := range j.Tags {
		if strings.TrimSpace(t) == "" {
			return bad("tags must not contain empty entries")
		}
	}
	return nil
}

// TimeoutSecs is the run timeout in whole seconds: execute.timeout parsed
// as humantime, 60 when it does not parse (as upstream's local scheduler).
func (j *Job) TimeoutSecs() int64 {
	d, err := ParseDuration(j.Execute.Timeout)
	if err != nil {
		return int64(DefaultJobTimeout / time.Second)
	}
	return int64(d / time.Second)
}

// LoweredFinalize is the finalize hook in its command form (upstream's
// FinalizeCommand: shell, script, timeout_secs (60 when the timeout does
// not parse, at least 1), run_as, cwd, on_each_bundle), or nil.
func (j *Job) LoweredFinalize() (*FinalizeCommand, error) {
	f := j.Finalize
	if f == nil {
		return nil, nil
	}
	secs := int64(60)
	if d, err := ParseDuration(f.Timeout); err == nil {
		secs = max(int64(d/time.Second), 1)
	}
	runAs := f.RunAs
	if runAs == "" {
		runAs = RunAsSystem
	}
	return &FinalizeCommand{Shell: f.Shell, Script: f.Script, TimeoutSecs: secs, RunAs: runAs,
		Cwd: f.Cwd, OnEachBundle: f.OnEachBundle}, nil
}

// isResourceID reports whether s is a non-empty upstream resource id:
// only ASCII letters, digits, '.', '_' and '-' (manifest.rs
// is_valid_resource_id).
func isResourceID(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
