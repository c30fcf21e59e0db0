package wire

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Job-manifest hints a Command carries (upstream's manifest.rs CheckHint,
// CollectHint and wire FinalizeCommand), and the check result an agent
// derives from a check job (upstream's ipc::state::Check).

// Check statuses: the values of [Check.Status].
const (
	CheckOK      = "ok"      // The check passed.
	CheckWarn    = "warn"    // A non-blocking finding.
	CheckFail    = "fail"    // The check failed.
	CheckUnknown = "unknown" // The check could not say (bad output, crashed script).
)

// Defaults of the hints' optional fields, as upstream.
const (
	DefaultCheckStatusField  = "status"
	DefaultCheckDetailField  = "detail"
	DefaultCollectFilesField = "files"
	// DefaultCollectMaxSize is the cap on a collect bundle's total input
	// bytes when collect.max_size is unset: 50 MB (decimal).
	DefaultCollectMaxSize int64 = 50 * 1000 * 1000
)

// Sentinel lines that fence one hint's JSON payload inside a job's stdout
// (upstream's #KANADE-<KIND>-BEGIN/END); see FencedPayload.
const (
	CheckBlockBegin   = "#KANADE-CHECK-BEGIN"
	CheckBlockEnd     = "#KANADE-CHECK-END"
	CollectBlockBegin = "#KANADE-COLLECT-BEGIN"
	CollectBlockEnd   = "#KANADE-COLLECT-END"
	inventoryBegin    = "#KANADE-INVENTORY-BEGIN"
	feedBegin         = "#KANADE-FEED-BEGIN"
)

// CheckHint marks a job as a health check (upstream's manifest CheckHint).
// The job prints a JSON object on stdout; the agent reads StatusField and
// DetailField from it into a Check. Encoded as upstream's serde derive
// does: status_field, detail_field, fleet and health always present.
type CheckHint struct {
	// Name is the stable check id (Check.Name). Required on the wire.
	Name string `json:"name"`
	// Label is an optional human-facing title (Check.Label).
	Label string `json:"label,omitempty"`
	// StatusField is the stdout field holding ok/warn/fail/unknown; "status" when unset.
	StatusField string `json:"status_field"`
	// DetailField is the stdout field holding a one-line summary; "detail" when unset.
	DetailField string `json:"detail_field"`
	// Troubleshoot is the id of a job that fixes the check (Check.Troubleshoot).
	Troubleshoot string `json:"troubleshoot,omitempty"`
	// Fleet (default true) tells the backend to project the check fleet-wide;
	// the agent does not use it.
	Fleet bool `json:"fleet"`
	// Health (default true) shows the check on the end user's Health tab;
	// false sets Check.HealthHidden.
	Health bool `json:"health"`
	// Alert is upstream's backend-side alert rule, carried verbatim.
	Alert json.RawMessage `json:"alert,omitempty"`
}

// UnmarshalJSON decodes a CheckHint with upstream's defaults; name is required.
func (h *CheckHint) UnmarshalJSON(b []byte) error {
	var aux struct {
		Name         *string         `json:"name"`
		Label        *string         `json:"label"`
		StatusField  *string         `json:"status_field"`
		DetailField  *string         `json:"detail_field"`
		Troubleshoot *string         `json:"troubleshoot"`
		Fleet        *bool           `json:"fleet"`
		Health       *bool           `json:"health"`
		Alert        json.RawMessage `json:"alert"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	if aux.Name == nil {
		return fmt.Errorf("%w: check: missing field \"name\"", ErrInvalid)
	}
	*h = CheckHint{Name: *aux.Name, StatusField: DefaultCheckStatusField, DetailField: DefaultCheckDetailField,
		Fleet: true, Health: true}
	setStr(&h.Label, aux.Label)
	setStr(&h.StatusField, aux.StatusField)
	setStr(&h.DetailField, aux.DetailField)
	setStr(&h.Troubleshoot, aux.Troubleshoot)
	if aux.Fleet != nil {
		h.Fleet = *aux.Fleet
	}
	if aux.Health != nil {
		h.Health = *aux.Health
	}
	if len(aux.Alert) > 0 && string(aux.Alert) != "null" {
		h.Alert = aux.Alert
	}
	return nil
}

// MarshalJSON encodes h as upstream does (an empty StatusField or
// DetailField is written as its default).
func (h CheckHint) MarshalJSON() ([]byte, error) {
	type plain CheckHint
	p := plain(h)
	if p.StatusField == "" {
		p.StatusField = DefaultCheckStatusField
	}
	if p.DetailField == "" {
		p.DetailField = DefaultCheckDetailField
	}
	return marshal(p)
}

// Check is one health-check result (upstream's ipc::state::Check), built
// by the agent from a check job's run.
type Check struct {
	// Name is the check id (CheckHint.Name).
	Name string `json:"name"`
	// Label is the optional human-facing title.
	Label string `json:"label,omitempty"`
	// Status is ok, warn, fail or unknown.
	Status string `json:"status"`
	// Detail is the one-line summary, or why the status is unknown.
	Detail string `json:"detail,omitempty"`
	// Troubleshoot is the id of a job that fixes the check.
	Troubleshoot string `json:"troubleshoot,omitempty"`
	// HealthHidden is set for a gate-only check (CheckHint.Health false).
	HealthHidden bool `json:"health_hidden,omitempty"`
}

// CollectHint marks a job as a file collector (upstream's manifest
// CollectHint). The job prints a JSON object whose FilesField holds the
// file paths to bundle (or a "bundles" array of {"label","files"}); the
// agent zips them into the collections object store. Encoded as upstream's
// serde derive does: files_field always present.
type CollectHint struct {
	// Name is the collection's title. Required on the wire.
	Name string `json:"name"`
	// Description is an optional one-line description.
	Description string `json:"description,omitempty"`
	// MaxSize caps one bundle's total input bytes ("50MB", "500KB",
	// "1GiB", "1024"); see ParseSize and MaxSizeBytes.
	MaxSize string `json:"max_size,omitempty"`
	// FilesField is the stdout field holding the path array; "files" when unset.
	FilesField string `json:"files_field"`
}

// UnmarshalJSON decodes a CollectHint with upstream's defaults; name is required.
func (h *CollectHint) UnmarshalJSON(b []byte) error {
	var aux struct {
		Name        *string `json:"name"`
		Description *string `json:"description"`
		MaxSize     *string `json:"max_size"`
		FilesField  *string `json:"files_field"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	if aux.Name == nil {
		return fmt.Errorf("%w: collect: missing field \"name\"", ErrInvalid)
	}
	*h = CollectHint{Name: *aux.Name, FilesField: DefaultCollectFilesField}
	setStr(&h.Description, aux.Description)
	setStr(&h.MaxSize, aux.MaxSize)
	setStr(&h.FilesField, aux.FilesField)
	return nil
}

// MarshalJSON encodes h as upstream does (an empty FilesField is written as "files").
func (h CollectHint) MarshalJSON() ([]byte, error) {
	type plain CollectHint
	p := plain(h)
	if p.FilesField == "" {
		p.FilesField = DefaultCollectFilesField
	}
	return marshal(p)
}

// MaxSizeBytes is the effective bundle cap: MaxSize parsed with ParseSize,
// or DefaultCollectMaxSize when it is unset or does not parse (as upstream).
func (h *CollectHint) MaxSizeBytes() int64 {
	if h.MaxSize == "" {
		return DefaultCollectMaxSize
	}
	n, err := ParseSize(h.MaxSize)
	if err != nil {
		return DefaultCollectMaxSize
	}
	return n
}

// EffectiveFilesField is FilesField, or "files" when unset.
func (h *CollectHint) EffectiveFilesField() string {
	if h.FilesField == "" {
		return DefaultCollectFilesField
	}
	return h.FilesField
}

// ParseSize parses a byte size as upstream's parse_size_bytes: a decimal
// number and an optional case-insensitive unit, B, KB, MB, GB (powers of
// 1000) or KiB, MiB, GiB (powers of 1024), with optional spaces between.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("%w: size must not be empty", ErrInvalid)
	}
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%w: size %q: missing leading number", ErrInvalid, s)
	}
	n, err := strconv.ParseUint(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: size %q: bad number %q", ErrInvalid, s, t[:i])
	}
	var mult uint64
	switch strings.ToLower(strings.TrimSpace(t[i:])) {
	case "", "b":
		mult = 1
	case "kb":
		mult = 1000
	case "mb":
		mult = 1000 * 1000
	case "gb":
		mult = 1000 * 1000 * 1000
	case "kib":
		mult = 1 << 10
	case "mib":
		mult = 1 << 20
	case "gib":
		mult = 1 << 30
	default:
		return 0, fmt.Errorf("%w: size %q: unknown unit %q (use B/KB/MB/GB/KiB/MiB/GiB)", ErrInvalid, s, strings.TrimSpace(t[i:]))
	}
	if n > (1<<63-1)/mult {
		return 0, fmt.Errorf("%w: size %q: overflow", ErrInvalid, s)
	}
	return int64(n * mult), nil
}

// FinalizeCommand is a job's post-run hook (upstream's wire
// FinalizeCommand): a script run after the main script exited 0 (and
// after a collect job's upload). Encoded as upstream's serde derive does:
// run_as and on_each_bundle always present.
type FinalizeCommand struct {
	// Shell is one of powershell, pwsh, cmd or sh. Required on the wire.
	Shell string `json:"shell"`
	// Script is the inline hook body. Required on the wire.
	Script string `json:"script"`
	// TimeoutSecs bounds the hook; the effective timeout is max(1, n) seconds. Required on the wire.
	TimeoutSecs int64 `json:"timeout_secs"`
	// RunAs is system (default), user or system_gui.
	RunAs string `json:"run_as"`
	// Cwd is the hook's working directory.
	Cwd string `json:"cwd,omitempty"`
	// OnEachBundle runs the hook once per uploaded collect bundle, as each
	// uploads, instead of once after the whole run.
	OnEachBundle bool `json:"on_each_bundle"`
}

// UnmarshalJSON decodes a FinalizeCommand; shell, script and timeout_secs
// are required, as upstream.
func (f *FinalizeCommand) UnmarshalJSON(b []byte) error {
	var aux struct {
		Shell        *string `json:"shell"`
		Script       *string `json:"script"`
		TimeoutSecs  *int64  `json:"timeout_secs"`
		RunAs        *string `json:"run_as"`
		Cwd          *string `json:"cwd"`
		OnEachBundle *bool   `json:"on_each_bundle"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	for name, missing := range map[string]bool{"shell": aux.Shell == nil, "script": aux.Script == nil, "timeout_secs": aux.TimeoutSecs == nil} {
		if missing {
			return fmt.Errorf("%w: finalize: missing field %q", ErrInvalid, name)
		}
	}
	*f = FinalizeCommand{Shell: *aux.Shell, Script: *aux.Script, TimeoutSecs: *aux.TimeoutSecs}
	setStr(&f.RunAs, aux.RunAs)
	setStr(&f.Cwd, aux.Cwd)
	if aux.OnEachBundle != nil {
		f.OnEachBundle = *aux.OnEachBundle
	}
	return nil
}

// MarshalJSON encodes f as upstream does (an empty RunAs is written as system).
func (f FinalizeCommand) MarshalJSON() ([]byte, error) {
	type plain FinalizeCommand
	p := plain(f)
	p.RunAs = f.EffectiveRunAs()
	return marshal(p)
}

// EffectiveRunAs is RunAs, or system when unset.
func (f *FinalizeCommand) EffectiveRunAs() string {
	if f.RunAs == "" {
		return RunAsSystem
	}
	return f.RunAs
}

// validate reports the first way f breaks the protocol's rules.
func (f *FinalizeCommand) validate() error {
	switch f.Shell {
	case ShellPowerShell, ShellPwsh, ShellCmd, ShellSh:
	default:
		return fmt.Errorf("%w: finalize shell %q is not powershell, pwsh, cmd or sh", ErrInvalid, f.Shell)
	}
	switch f.EffectiveRunAs() {
	case RunAsSystem, RunAsUser, RunAsSystemGUI:
	default:
		return fmt.Errorf("%w: finalize run_as %q is not system, user or system_gui", ErrInvalid, f.RunAs)
	}
	if f.TimeoutSecs < 0 {
		return fmt.Errorf("%w: finalize timeout_secs %d is negative", ErrInvalid, f.TimeoutSecs)
	}
	return nil
}

// FencedPayload extracts one hint's JSON payload from a job's stdout, as
// upstream's fenced_payload: the text between the begin line marker (at
// the start of a line) and the end marker (or the end of stdout when the
// end marker is missing), trimmed. Without the begin marker it is the
// whole stdout trimmed, unless stdout carries another hint's begin marker
// (inventory, check, collect or feed), in which case it is "" (the script
// fences its blocks and this one is missing).
func FencedPayload(stdout, begin, end string) string {
	if i := lineMarker(stdout, begin); i >= 0 {
		after := stdout[i+len(begin):]
		if j := lineMarker(after, end); j >= 0 {
			after = after[:j]
		}
		return strings.TrimSpace(after)
	}
	for _, m := range []string{inventoryBegin, CheckBlockBegin, CollectBlockBegin, feedBegin} {
		if lineMarker(stdout, m) >= 0 {
			return ""
		}
	}
	return strings.TrimSpace(stdout)
}

// lineMarker is the index of needle where it begins a line of hay, or -1.
func lineMarker(hay, needle string) int {
	if strings.HasPrefix(hay, needle) {
		return 0
	}
	if i := strings.Index(hay, "\n"+needle); i >= 0 {
		return i + 1
	}
	return -1
}

func setStr(dst *string, src *string) {
	if src != nil {
		*dst = *src
	}
}
