package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Script status values of the script_status bucket.
const (
	ScriptActive  = "ACTIVE"
	ScriptRevoked = "REVOKED"
)

// Default values of the effective agent configuration (upstream's
// built-in defaults; DefaultInventoryInterval is ours).
const (
	DefaultHeartbeatInterval   = 30 * time.Second
	DefaultHostPerfInterval    = 60 * time.Second
	DefaultInventoryInterval   = 6 * time.Hour
	DefaultTargetVersionJitter = 10 * time.Minute
	DefaultProcessPerfTopN     = 20
)

// Smallest intervals a ConfigScope can set, so that a value such as
// heartbeat_interval "1ns" or "0s" cannot make every agent of a fleet spin
// (ours: upstream has no floor). DefaultConfig uses them as the floors of
// [Config.Apply]; a smaller value is raised to the floor and reported.
const (
	MinHeartbeatInterval = 5 * time.Second
	MinHostPerfInterval  = 5 * time.Second
	MinInventoryInterval = time.Minute
)

// ConfigScope is one layer of agent configuration, stored in the
// agent_config bucket under global, groups.<g> or pcs.<pc_id>. Every field is
// optional; a nil field (absent or JSON null) leaves the value of the layer
// below. Durations are humantime strings (see ParseDuration).
//
// Decoding rejects the whole scope, as upstream's serde decoding does, when
// max_local_concurrent is 0, negative or above 2^32-1 (upstream:
// Option<NonZeroU32>), or when process_perf_top_n is negative or above
// 2^32-1 (u32).
type ConfigScope struct {
	// MaxLocalConcurrent is the number of commands run at once; must be ≥ 1 (default: CPU count).
	MaxLocalConcurrent *int `json:"max_local_concurrent,omitempty"`
	// TargetVersion is the agent version to self-update to.
	TargetVersion *string `json:"target_version,omitempty"`
	// TargetVersionJitter bounds the random delay before an update (default
	// 10m; "0s" means none; malformed means the default).
	TargetVersionJitter *string `json:"target_version_jitter,omitempty"`
	// HeartbeatInterval is the heartbeat period (default 30s; at least 5s; malformed means the default).
	HeartbeatInterval *string `json:"heartbeat_interval,omitempty"`
	// HostPerfInterval is the HostPerf period (default 60s; at least 5s; malformed means the default).
	HostPerfInterval *string `json:"host_perf_interval,omitempty"`
	// ProcessPerfEnabled turns per-process performance reporting on (default off).
	ProcessPerfEnabled *bool `json:"process_perf_enabled,omitempty"`
	// ProcessPerfExpiresAt is when ProcessPerfEnabled stops applying (RFC 3339); unset means never.
	ProcessPerfExpiresAt *time.Time `json:"process_perf_expires_at,omitempty"`
	// ProcessPerfTopN is the number of processes reported per sample (default 20).
	ProcessPerfTopN *uint32 `json:"process_perf_top_n,omitempty"`
	// ClientDisplayName is the product name the end-user client shows; unset means its built-in name.
	ClientDisplayName *string `json:"client_display_name,omitempty"`
	// InventoryInterval is the full inventory period (default 6h; at least
	// 1m; malformed means the default; ours).
	InventoryInterval *string `json:"inventory_interval,omitempty"`
}

// configScopeAlias has ConfigScope's fields without its methods.
type configScopeAlias ConfigScope

// UnmarshalJSON decodes a ConfigScope and rejects it when
// max_local_concurrent is not in 1..2^32-1, as upstream's NonZeroU32 does.
func (c *ConfigScope) UnmarshalJSON(b []byte) error {
	var a configScopeAlias
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	if err := checkLocalConcurrent(a.MaxLocalConcurrent); err != nil {
		return err
	}
	*c = ConfigScope(a)
	return nil
}

// MarshalJSON encodes c as upstream's serde derive does (every unset field
// omitted), with process_perf_expires_at written as chrono writes it (see
// Marshal).
func (c ConfigScope) MarshalJSON() ([]byte, error) {
	return marshal(struct {
		MaxLocalConcurrent   *int        `json:"max_local_concurrent,omitempty"`
		TargetVersion        *string     `json:"target_version,omitempty"`
		TargetVersionJitter  *string     `json:"target_version_jitter,omitempty"`
		HeartbeatInterval    *string     `json:"heartbeat_interval,omitempty"`
		HostPerfInterval     *string     `json:"host_perf_interval,omitempty"`
		ProcessPerfEnabled   *bool       `json:"process_perf_enabled,omitempty"`
		ProcessPerfExpiresAt *chronoTime `json:"process_perf_expires_at,omitempty"`
		ProcessPerfTopN      *uint32     `json:"process_perf_top_n,omitempty"`
		ClientDisplayName    *string     `json:"client_display_name,omitempty"`
		InventoryInterval    *string     `json:"inventory_interval,omitempty"`
	}{
		c.MaxLocalConcurrent, c.TargetVersion, c.TargetVersionJitter, c.HeartbeatInterval, c.HostPerfInterval,
		c.ProcessPerfEnabled, chronoTimePtr(c.ProcessPerfExpiresAt), c.ProcessPerfTopN, c.ClientDisplayName, c.InventoryInterval,
	})
}

func checkLocalConcurrent(p *int) error {
	if p != nil && (*p < 1 || int64(*p) > math.MaxUint32) {
		return fmt.Errorf("%w: config scope: max_local_concurrent %d is not in 1..%d", ErrInvalid, *p, uint32(math.MaxUint32))
	}
	return nil
}

// DecodeConfigScope decodes a ConfigScope. A scope upstream would refuse
// to decode (see ConfigScope) is an error wrapping ErrInvalid: the caller
// ignores the whole scope.
func DecodeConfigScope(b []byte) (*ConfigScope, error) {
	var c ConfigScope
	if err := decode(b, &c, "config scope"); err != nil {
		return nil, err
	}
	return &c, nil
}

// Config is an effective agent configuration: the built-in defaults with
// every ConfigScope layer applied.
type Config struct {
	// MaxLocalConcurrent is the concurrency limit of the command runner.
	MaxLocalConcurrent int
	// TargetVersion is the version to update to; empty means none.
	TargetVersion string
	// TargetVersionJitter bounds the random delay before an update; 0 means none.
	TargetVersionJitter time.Duration
	// HeartbeatInterval is the heartbeat period.
	HeartbeatInterval time.Duration
	// HostPerfInterval is the HostPerf period.
	HostPerfInterval time.Duration
	// ProcessPerfEnabled turns per-process performance reporting on (see ProcessPerfActiveAt).
	ProcessPerfEnabled bool
	// ProcessPerfExpiresAt, when not zero, is when ProcessPerfEnabled stops applying.
	ProcessPerfExpiresAt time.Time
	// ProcessPerfTopN is the number of processes reported per sample.
	ProcessPerfTopN int
	// ClientDisplayName is the product name the end-user client shows; empty means its built-in name.
	ClientDisplayName string
	// InventoryInterval is the full inventory period.
	InventoryInterval time.Duration
	// Floors are the smallest intervals Apply accepts from a scope; a
	// smaller value is raised to its floor. DefaultConfig sets the Min*
	// constants; a zero floor means no floor (for tests that need fast
	// ticks: copy DefaultConfig and lower the floors).
	Floors Floors
}

// Floors are the smallest intervals [Config.Apply] accepts from a scope.
type Floors struct {
	// HeartbeatInterval is the smallest heartbeat period.
	HeartbeatInterval time.Duration
	// HostPerfInterval is the smallest HostPerf period.
	HostPerfInterval time.Duration
	// InventoryInterval is the smallest full inventory period.
	InventoryInterval time.Duration
}

// DefaultConfig returns the built-in defaults for a machine with cpus CPUs.
func DefaultConfig(cpus int) Config {
	if cpus < 1 {
		cpus = 1
	}
	return Config{
		MaxLocalConcurrent:  cpus,
		TargetVersionJitter: DefaultTargetVersionJitter,
		HeartbeatInterval:   DefaultHeartbeatInterval,
		HostPerfInterval:    DefaultHostPerfInterval,
		ProcessPerfTopN:     DefaultProcessPerfTopN,
		InventoryInterval:   DefaultInventoryInterval,
		Floors: Floors{
			HeartbeatInterval: MinHeartbeatInterval,
			HostPerfInterval:  MinHostPerfInterval,
			InventoryInterval: MinInventoryInterval,
		},
	}
}

// ProcessPerfActiveAt reports whether per-process reporting should run at
// now: enabled and not past ProcessPerfExpiresAt.
func (c Config) ProcessPerfActiveAt(now time.Time) bool {
	return c.ProcessPerfEnabled && (c.ProcessPerfExpiresAt.IsZero() || now.Before(c.ProcessPerfExpiresAt))
}

// Apply returns c with every field set in s applied, as upstream's
// resolver does, and the problems it met, each wrapping ErrInvalid:
//
//   - A scope whose max_local_concurrent is not ≥ 1 (one DecodeConfigScope
//     refuses) is rejected whole: c is returned unchanged.
//   - A duration that does not parse (ParseDuration) sets the field to its
//     built-in default (DefaultHeartbeatInterval, ...), not to the value of
//     the layer below: upstream's more specific string replaces the lower
//     one and a malformed result falls back to the built-in default.
//   - "0s" is honoured for target_version_jitter (no jitter). An interval
//     below its floor (c.Floors, see MinHeartbeatInterval) is raised to the
//     floor and reported.
func (c Config) Apply(s *ConfigScope) (Config, []error) {
	if s == nil {
		return c, nil
	}
	if err := checkLocalConcurrent(s.MaxLocalConcurrent); err != nil {
		return c, []error{fmt.Errorf("scope rejected: %w", err)}
	}
	var errs []error
	if s.MaxLocalConcurrent != nil {
		c.MaxLocalConcurrent = *s.MaxLocalConcurrent
	}
	if s.TargetVersion != nil {
		c.TargetVersion = *s.TargetVersion
	}
	dur := func(name string, p *string, dst *time.Duration, def, floor time.Duration) {
		if p == nil {
			return
		}
		d, err := parseDuration(*p)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %s %q is not a duration (%v); using the default %s", ErrInvalid, name, truncateForError(*p), err, FormatDuration(def)))
			*dst = def
			return
		}
		if d < floor {
			errs = append(errs, fmt.Errorf("%w: %s %q is below the minimum %s; using %s", ErrInvalid, name, *p, FormatDuration(floor), FormatDuration(floor)))
			d = floor
		}
		*dst = d
	}
	dur("target_version_jitter", s.TargetVersionJitter, &c.TargetVersionJitter, DefaultTargetVersionJitter, 0)
	dur("heartbeat_interval", s.HeartbeatInterval, &c.HeartbeatInterval, DefaultHeartbeatInterval, c.Floors.HeartbeatInterval)
	dur("host_perf_interval", s.HostPerfInterval, &c.HostPerfInterval, DefaultHostPerfInterval, c.Floors.HostPerfInterval)
	dur("inventory_interval", s.InventoryInterval, &c.InventoryInterval, DefaultInventoryInterval, c.Floors.InventoryInterval)
	if s.ProcessPerfEnabled != nil {
		c.ProcessPerfEnabled = *s.ProcessPerfEnabled
	}
	if s.ProcessPerfExpiresAt != nil {
		c.ProcessPerfExpiresAt = *s.ProcessPerfExpiresAt
	}
	if s.ProcessPerfTopN != nil {
		c.ProcessPerfTopN = int(*s.ProcessPerfTopN)
	}
	if s.ClientDisplayName != nil {
		c.ClientDisplayName = *s.ClientDisplayName
	}
	return c, errs
}

// Groups is the value of a pc's key in the agent_groups and
// agent_groups_derived buckets.
type Groups struct {
	// Groups lists the group names the pc belongs to.
	Groups []string `json:"groups"`
}

// DecodeGroups decodes a Groups document.
func DecodeGroups(b []byte) (*Groups, error) {
	var g Groups
	if err := decode(b, &g, "groups"); err != nil {
		return nil, err
	}
	return &g, nil
}

// DefaultTailLines is upstream's default of [LogsFetchRequest.TailLines]
// when the request omits it.
const DefaultTailLines = 500

// LogsFetchRequest is the request body of logs.fetch.<pc_id>.
type LogsFetchRequest struct {
	// TailLines is the number of log lines wanted from the end of the agent
	// log (upstream: u32, default DefaultTailLines when absent).
	TailLines int `json:"tail_lines"`
}

// DecodeLogsFetchRequest decodes a logs.fetch request as upstream does:
// an absent tail_lines (or an empty body) means DefaultTailLines; a
// negative one or one above 2^32-1 is an error.
func DecodeLogsFetchRequest(b []byte) (*LogsFetchRequest, error) {
	r := LogsFetchRequest{TailLines: DefaultTailLines}
	if len(bytes.TrimSpace(b)) == 0 {
		return &r, nil
	}
	if err := decode(b, &r, "logs fetch request"); err != nil {
		return nil, err
	}
	if r.TailLines < 0 || int64(r.TailLines) > math.MaxUint32 {
		return nil, fmt.Errorf("%w: logs fetch request: tail_lines %d is not in 0..%d", ErrInvalid, r.TailLines, uint32(math.MaxUint32))
	}
	return &r, nil
}

// KeyringEntry is one command signing key of a keyring (a JSON array of them).
type KeyringEntry struct {
	// Kid is the key id sent in the Kanade-Sig-Kid header.
	Kid string `json:"kid"`
	// PublicKey is the standard base64 of the 32-byte ed25519 public key.
	PublicKey string `json:"public_key"`
	// Label is a human description of the key.
	Label string `json:"label,omitempty"`
	// MaxAgeSecs refuses signatures older than this many seconds when set
	// (see HasMaxAge for an explicit 0).
	MaxAgeSecs int64 `json:"max_age_secs,omitempty"`
	// HasMaxAge reports that max_age_secs was present when decoded, so an
	// explicit 0 (upstream: Some(0)) can be told from an absent one (None).
	// Encoding writes max_age_secs when HasMaxAge is set or MaxAgeSecs is
	// not 0.
	HasMaxAge bool `json:"-"`
	// AuditEveryUse asks for an audit ObsEvent on every use of this key,
	// failed verifications included (upstream: break-glass keys).
	AuditEveryUse bool `json:"audit_every_use,omitempty"`
}

// keyringEntryAlias has KeyringEntry's fields without its methods.
type keyringEntryAlias KeyringEntry

// UnmarshalJSON decodes a KeyringEntry, setting HasMaxAge when
// max_age_secs is present and not null.
func (e *KeyringEntry) UnmarshalJSON(b []byte) error {
	var aux struct {
		keyringEntryAlias
		MaxAgeSecs *int64 `json:"max_age_secs"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			te.Field = strings.TrimPrefix(te.Field, "keyringEntryAlias.")
		}
		return err
	}
	*e = KeyringEntry(aux.keyringEntryAlias)
	if aux.MaxAgeSecs != nil {
		e.MaxAgeSecs, e.HasMaxAge = *aux.MaxAgeSecs, true
	}
	return nil
}

// MarshalJSON encodes e, with max_age_secs present when HasMaxAge is set
// or MaxAgeSecs is not 0.
func (e KeyringEntry) MarshalJSON() ([]byte, error) {
	w := struct {
		Kid           string `json:"kid"`
		PublicKey     string `json:"public_key"`
		Label         string `json:"label,omitempty"`
		MaxAgeSecs    *int64 `json:"max_age_secs,omitempty"`
		AuditEveryUse bool   `json:"audit_every_use,omitempty"`
	}{Kid: e.Kid, PublicKey: e.PublicKey, Label: e.Label, AuditEveryUse: e.AuditEveryUse}
	if e.HasMaxAge || e.MaxAgeSecs != 0 {
		w.MaxAgeSecs = &e.MaxAgeSecs
	}
	return marshal(w)
}

// DecodeKeyring decodes a keyring: a JSON array of KeyringEntry.
func DecodeKeyring(b []byte) ([]KeyringEntry, error) {
	var k []KeyringEntry
	if err := decode(b, &k, "keyring"); err != nil {
		return nil, err
	}
	for i, e := range k {
		if e.Kid == "" || e.PublicKey == "" {
			return nil, fmt.Errorf("%w: keyring entry %d lacks kid or public_key", ErrInvalid, i)
		}
	}
	return k, nil
}
