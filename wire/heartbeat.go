package wire

import (
	"time"
)

// OS families reported in [Heartbeat.OSFamily]: Rust's
// std::env::consts::OS names, as upstream reports them.
const (
	OSWindows = "windows"
	OSLinux   = "linux"
	OSMacOS   = "macos"
)

// OSFamily returns the os_family value for a Go GOOS name (runtime.GOOS):
// "darwin" is reported as "macos", as upstream (Rust) names it; every other
// name is the same in both.
func OSFamily(goos string) string {
	if goos == "darwin" {
		return OSMacOS
	}
	return goos
}

// Heartbeat is the agent's liveness beacon, published on heartbeat.<pc_id>
// with core NATS and returned by agents.<pc_id>.ping. Fields are in
// upstream's order; the fields upstream does not have come last (ours).
type Heartbeat struct {
	// PcID is the agent's pc id.
	PcID string `json:"pc_id"`
	// At is when the heartbeat was made.
	At time.Time `json:"at"`
	// AgentVersion is the running agent's version.
	AgentVersion string `json:"agent_version"`
	// Hostname is the machine's host name; omitted when unknown.
	Hostname string `json:"hostname,omitempty"`
	// OSFamily is windows, linux or macos (see OSFamily); omitted when unknown.
	OSFamily string `json:"os_family,omitempty"`
	// AgentCPUPct is the agent's CPU use in percent of one core since the
	// last heartbeat; nil (omitted) on the first heartbeat after start, when
	// there is no previous sample to diff against.
	AgentCPUPct *float64 `json:"agent_cpu_pct,omitempty"`
	// AgentRSSBytes is the agent's resident memory; omitted when 0 (unknown).
	AgentRSSBytes uint64 `json:"agent_rss_bytes,omitempty"`
	// AgentDiskReadBytes is the bytes the agent process has read from disk
	// since it started (cumulative); nil (omitted) when unknown.
	AgentDiskReadBytes *uint64 `json:"agent_disk_read_bytes,omitempty"`
	// AgentDiskWrittenBytes is the bytes the agent process has written to
	// disk since it started (cumulative); nil (omitted) when unknown.
	AgentDiskWrittenBytes *uint64 `json:"agent_disk_written_bytes,omitempty"`
	// QuarantinedVersions are agent versions that failed to boot and will not be tried again; omitted when empty.
	QuarantinedVersions []string `json:"quarantined_versions,omitempty"`
	// LastLogonUser is the account that last signed in on the machine
	// (DOMAIN\user on Windows); omitted when unknown.
	LastLogonUser string `json:"last_logon_user,omitempty"`
	// LastLogonDisplayName is the display name of LastLogonUser; omitted when unknown.
	LastLogonDisplayName string `json:"last_logon_display_name,omitempty"`
	// CommandKeys lists the command signing keys as kid:fingerprint; always sent ([] when none).
	CommandKeys []string `json:"command_keys"`
	// Enforcing is set when unsigned commands are refused; always sent.
	Enforcing bool `json:"enforcing"`
	// CommandProtocols lists the command signature formats the agent
	// verifies (names are defined by the signing package); omitted when empty.
	CommandProtocols []string `json:"command_protocols,omitempty"`
	// Outbox maps each outbox name to its state (ours).
	Outbox map[string]OutboxStats `json:"outbox,omitempty"`
}

// MarshalJSON encodes h with command_keys always present, as [] when there
// are none (never null): an empty keyring is reported, not omitted. Floats
// are written as serde_json writes them (see Marshal).
func (h Heartbeat) MarshalJSON() ([]byte, error) {
	keys := h.CommandKeys
	if keys == nil {
		keys = []string{}
	}
	return marshal(struct {
		PcID                  string                 `json:"pc_id"`
		At                    chronoTime             `json:"at"`
		AgentVersion          string                 `json:"agent_version"`
		Hostname              string                 `json:"hostname,omitempty"`
		OSFamily              string                 `json:"os_family,omitempty"`
		AgentCPUPct           *jsonFloat             `json:"agent_cpu_pct,omitempty"`
		AgentRSSBytes         uint64                 `json:"agent_rss_bytes,omitempty"`
		AgentDiskReadBytes    *uint64                `json:"agent_disk_read_bytes,omitempty"`
		AgentDiskWrittenBytes *uint64                `json:"agent_disk_written_bytes,omitempty"`
		QuarantinedVersions   []string               `json:"quarantined_versions,omitempty"`
		LastLogonUser         string                 `json:"last_logon_user,omitempty"`
		LastLogonDisplayName  string                 `json:"last_logon_display_name,omitempty"`
		CommandKeys           []string               `json:"command_keys"`
		Enforcing             bool                   `json:"enforcing"`
		CommandProtocols      []string               `json:"command_protocols,omitempty"`
		Outbox                map[string]OutboxStats `json:"outbox,omitempty"`
	}{
		h.PcID, chronoTime(h.At), h.AgentVersion, h.Hostname, h.OSFamily, jsonFloatPtr(h.AgentCPUPct), h.AgentRSSBytes,
		h.AgentDiskReadBytes, h.AgentDiskWrittenBytes, h.QuarantinedVersions, h.LastLogonUser, h.LastLogonDisplayName,
		keys, h.Enforcing, h.CommandProtocols, h.Outbox,
	})
}

// OutboxStats is the state of one outbox in a Heartbeat (ours).
type OutboxStats struct {
	// Pending is the number of items waiting for a PubAck.
	Pending int `json:"pending"`
	// OldestAgeSecs is the age of the oldest pending item in seconds.
	OldestAgeSecs float64 `json:"oldest_age_secs"`
	// Stuck is the number of items moved to stuck/ after repeated failures.
	Stuck int `json:"stuck"`
}

// MarshalJSON encodes s with its float written as serde_json writes it.
func (s OutboxStats) MarshalJSON() ([]byte, error) {
	return marshal(struct {
		Pending       int       `json:"pending"`
		OldestAgeSecs jsonFloat `json:"oldest_age_secs"`
		Stuck         int       `json:"stuck"`
	}{s.Pending, jsonFloat(s.OldestAgeSecs), s.Stuck})
}

// HostPerf is a sample of the machine's load, published on host_perf.<pc_id>.
type HostPerf struct {
	// PcID is the agent's pc id.
	PcID string `json:"pc_id"`
	// At is when the sample was taken.
	At time.Time `json:"at"`
	// CPUPct is CPU use over all cores, 0 to 100.
	CPUPct float64 `json:"cpu_pct"`
	// CPUCount is the number of logical CPUs.
	CPUCount int `json:"cpu_count"`
	// MemUsedBytes is memory in use.
	MemUsedBytes uint64 `json:"mem_used_bytes"`
	// MemTotalBytes is total physical memory.
	MemTotalBytes uint64 `json:"mem_total_bytes"`
	// SwapUsedBytes is swap (page file) in use.
	SwapUsedBytes uint64 `json:"swap_used_bytes"`
	// SwapTotalBytes is total swap (page file).
	SwapTotalBytes uint64 `json:"swap_total_bytes"`
	// DiskReadBytesPerSec is the disk read rate since the previous sample.
	DiskReadBytesPerSec float64 `json:"disk_read_bytes_per_sec"`
	// DiskWrittenBytesPerSec is the disk write rate since the previous sample.
	DiskWrittenBytesPerSec float64 `json:"disk_written_bytes_per_sec"`
	// NetRxBytesPerSec is the network receive rate since the previous sample.
	NetRxBytesPerSec float64 `json:"net_rx_bytes_per_sec"`
	// NetTxBytesPerSec is the network transmit rate since the previous sample.
	NetTxBytesPerSec float64 `json:"net_tx_bytes_per_sec"`
	// RatesUnknown, set on the first sample after start (there is no
	// previous one to diff against), omits cpu_pct and the four rates from
	// the encoding, as upstream omits them (its figures are Option and
	// skipped when None) rather than reporting a misleading 0. Not sent.
	RatesUnknown bool `json:"-"`
}

// MarshalJSON encodes h with its floats written as serde_json writes them
// (see Marshal): "12.0", not "12"; null for NaN or an infinity.
func (h HostPerf) MarshalJSON() ([]byte, error) {
	rate := func(f float64) *jsonFloat {
		if h.RatesUnknown {
			return nil
		}
		return jsonFloatPtr(&f)
	}
	return marshal(struct {
		PcID                   string     `json:"pc_id"`
		At                     chronoTime `json:"at"`
		CPUPct                 *jsonFloat `json:"cpu_pct,omitempty"`
		CPUCount               int        `json:"cpu_count"`
		MemUsedBytes           uint64     `json:"mem_used_bytes"`
		MemTotalBytes          uint64     `json:"mem_total_bytes"`
		SwapUsedBytes          uint64     `json:"swap_used_bytes"`
		SwapTotalBytes         uint64     `json:"swap_total_bytes"`
		DiskReadBytesPerSec    *jsonFloat `json:"disk_read_bytes_per_sec,omitempty"`
		DiskWrittenBytesPerSec *jsonFloat `json:"disk_written_bytes_per_sec,omitempty"`
		NetRxBytesPerSec       *jsonFloat `json:"net_rx_bytes_per_sec,omitempty"`
		NetTxBytesPerSec       *jsonFloat `json:"net_tx_bytes_per_sec,omitempty"`
	}{
		h.PcID, chronoTime(h.At), rate(h.CPUPct), h.CPUCount, h.MemUsedBytes, h.MemTotalBytes, h.SwapUsedBytes, h.SwapTotalBytes,
		rate(h.DiskReadBytesPerSec), rate(h.DiskWrittenBytesPerSec), rate(h.NetRxBytesPerSec), rate(h.NetTxBytesPerSec),
	})
}

// DecodeHeartbeat decodes a Heartbeat.
func DecodeHeartbeat(b []byte) (*Heartbeat, error) {
	var h Heartbeat
	if err := decode(b, &h, "heartbeat"); err != nil {
		return nil, err
	}
	return &h, nil
}

// DecodeHostPerf decodes a HostPerf.
func DecodeHostPerf(b []byte) (*HostPerf, error) {
	var h HostPerf
	if err := decode(b, &h, "host perf"); err != nil {
		return nil, err
	}
	return &h, nil
}
