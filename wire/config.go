package wire

import (
	"fmt"
	"time"
)

// Script status values of the script_status bucket.
const (
	ScriptActive  = "ACTIVE"
	ScriptRevoked = "REVOKED"
)

// Default values of the effective agent configuration.
const (
	DefaultHeartbeatInterval   = 30 * time.Second
	DefaultHostPerfInterval    = 60 * time.Second
	DefaultInventoryInterval   = 6 * time.Hour
	DefaultTargetVersionJitter = 10 * time.Minute
)

// ConfigScope is one layer of agent configuration, stored in the
// agent_config bucket under global, groups.<g> or pcs.<pc_id>. Every field is
// optional; a nil field leaves the value of the layer below.
type ConfigScope struct {
	// MaxLocalConcurrent is the number of commands run at once; must be > 0 (default: CPU count).
	MaxLocalConcurrent *int `json:"max_local_concurrent,omitempty"`
	// TargetVersion is the agent version to self-update to.
	TargetVersion *string `json:"target_version,omitempty"`
	// TargetVersionJitter is the random delay before an update, a duration (default 10m; malformed means default).
	TargetVersionJitter *string `json:"target_version_jitter,omitempty"`
	// HeartbeatInterval is the heartbeat period, a duration (default 30s).
	HeartbeatInterval *string `json:"heartbeat_interval,omitempty"`
	// HostPerfInterval is the HostPerf period, a duration (default 60s).
	HostPerfInterval *string `json:"host_perf_interval,omitempty"`
	// InventoryInterval is the full inventory period, a duration (default 6h, ours).
	InventoryInterval *string `json:"inventory_interval,omitempty"`
}

// DecodeConfigScope decodes a ConfigScope.
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
	// TargetVersionJitter bounds the random delay before an update.
	TargetVersionJitter time.Duration
	// HeartbeatInterval is the heartbeat period.
	HeartbeatInterval time.Duration
	// HostPerfInterval is the HostPerf period.
	HostPerfInterval time.Duration
	// InventoryInterval is the full inventory period.
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
		InventoryInterval:   DefaultInventoryInterval,
	}
}

// Apply returns c with every field set in s applied. Values that break the
// rules (a limit ≤ 0, a malformed or non-positive duration) are ignored and
// reported in the returned list of problems, so one bad field in one scope
// never disturbs the rest.
func (c Config) Apply(s *ConfigScope) (Config, []error) {
	if s == nil {
		return c, nil
	}
	var errs []error
	if s.MaxLocalConcurrent != nil {
		if *s.MaxLocalConcurrent > 0 {
			c.MaxLocalConcurrent = *s.MaxLocalConcurrent
		} else {
			errs = append(errs, fmt.Errorf("%w: max_local_concurrent %d is not > 0", ErrInvalid, *s.MaxLocalConcurrent))
		}
	}
	if s.TargetVersion != nil {
		c.TargetVersion = *s.TargetVersion
	}
	dur := func(name string, p *string, dst *time.Duration) {
		if p == nil {
			return
		}
		d, err := time.ParseDuration(*p)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%w: %s %q is not a positive duration", ErrInvalid, name, *p))
			return
		}
		*dst = d
	}
	dur("target_version_jitter", s.TargetVersionJitter, &c.TargetVersionJitter)
	dur("heartbeat_interval", s.HeartbeatInterval, &c.HeartbeatInterval)
	dur("host_perf_interval", s.HostPerfInterval, &c.HostPerfInterval)
	dur("inventory_interval", s.InventoryInterval, &c.InventoryInterval)
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

// LogsFetchRequest is the request body of logs.fetch.<pc_id>.
type LogsFetchRequest struct {
	// TailLines is the number of log lines wanted from the end of the agent log.
	TailLines int `json:"tail_lines"`
}

// KeyringEntry is one command signing key of a keyring (a JSON array of them).
type KeyringEntry struct {
	// Kid is the key id sent in the Kanade-Sig-Kid header.
	Kid string `json:"kid"`
	// PublicKey is the standard base64 of the 32-byte ed25519 public key.
	PublicKey string `json:"public_key"`
	// Label is a human description of the key.
	Label string `json:"label,omitempty"`
	// MaxAgeSecs refuses signatures older than this many seconds when set.
	MaxAgeSecs int64 `json:"max_age_secs,omitempty"`
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
