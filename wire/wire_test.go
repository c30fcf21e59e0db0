package wire_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// Documents as the backend or another agent writes them: every field of docs/protocol.md.
const (
	execResultFull = `{
		"result_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
		"request_id": "req-01JQ5W0Z",
		"exec_id": "exec-42",
		"parent_result_id": "r-0",
		"pc_id": "desktop-01",
		"exit_code": -1,
		"stdout": "",
		"stderr": "timeout after 300s\n",
		"started_at": "2026-03-01T10:15:00.123456Z",
		"finished_at": "2026-03-01T10:20:00.500Z",
		"stdout_object": "req-01JQ5W0Z/stdout",
		"stderr_object": "req-01JQ5W0Z/stderr",
		"manifest_id": "inventory-hw",
		"collect_object": "desktop-01/inventory-hw/20260301T102000Z.zip",
		"stdout_truncated": true,
		"stderr_truncated": true
	}`
	execResultSkipped = `{
		"result_id": "r-1",
		"request_id": "req-1",
		"pc_id": "pc1",
		"exit_code": 124,
		"skipped": true,
		"stdout": "",
		"stderr": "version pin: script_current[j] is 8, command is 7",
		"started_at": "2026-03-01T10:15:00Z",
		"finished_at": "2026-03-01T10:15:00Z"
	}`
	eventStartedFull = `{
		"exec_id": "exec-42",
		"pc_id": "desktop-01",
		"result_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
		"request_id": "req-01JQ5W0Z",
		"started_at": "2026-03-01T10:15:00Z",
		"manifest_id": "inventory-refresh",
		"version": "7"
	}`
	eventStartedMinimal = `{
		"exec_id": "exec-42",
		"pc_id": "desktop-01",
		"result_id": "r",
		"request_id": "req",
		"started_at": "2026-03-01T10:15:00Z",
		"manifest_id": "adhoc-run",
		"version": ""
	}`
	obsEventFull = `{
		"pc_id": "desktop-01",
		"at": "2026-03-01T08:00:01.250Z",
		"kind": "logon",
		"source": "winlog:Security",
		"event_record_id": "18446744073709551615",
		"payload": {"user": "CORP\\alice", "logon_type": 2, "nested": {"list": [1, "two", null, true]}}
	}`
	obsEventMinimal = `{
		"pc_id": "desktop-01",
		"at": "2026-03-01T08:00:00Z",
		"kind": "agent_online",
		"source": "agent:startup",
		"payload": null
	}`
	heartbeatFull = `{
		"pc_id": "desktop-01",
		"at": "2026-03-01T10:15:30Z",
		"agent_version": "1.4.2",
		"hostname": "DESKTOP-01",
		"os_family": "windows",
		"agent_cpu_pct": 1.5,
		"agent_rss_bytes": 18446744073709551615,
		"agent_disk_read_bytes": 1048576,
		"agent_disk_written_bytes": 0,
		"quarantined_versions": ["1.4.1", "1.3.9"],
		"last_logon_user": "CORP\\alice",
		"last_logon_display_name": "Alice Example",
		"command_keys": ["ops-2026:SHA256:3q2+7w", "break-glass:SHA256:AAAA"],
		"enforcing": true,
		"command_protocols": ["v1"],
		"outbox": {
			"results": {"pending": 3, "oldest_age_secs": 12.5, "stuck": 1},
			"events": {"pending": 0, "oldest_age_secs": 0, "stuck": 0}
		}
	}`
	heartbeatEmpty = `{
		"pc_id": "pc1",
		"at": "2026-03-01T10:15:30Z",
		"agent_version": "dev",
		"hostname": "pc1",
		"os_family": "linux",
		"agent_rss_bytes": 1,
		"command_keys": [],
		"enforcing": false
	}`
	hostPerfFull = `{
		"pc_id": "desktop-01",
		"at": "2026-03-01T10:16:00Z",
		"cpu_pct": 37.25,
		"cpu_count": 16,
		"mem_used_bytes": 8589934592,
		"mem_total_bytes": 34359738368,
		"swap_used_bytes": 1048576,
		"swap_total_bytes": 4294967296,
		"disk_read_bytes_per_sec": 123456.5,
		"disk_written_bytes_per_sec": 654321,
		"net_rx_bytes_per_sec": 1000.25,
		"net_tx_bytes_per_sec": 2000.75
	}`
	configScopeFull = `{
		"max_local_concurrent": 4,
		"target_version": "1.5.0",
		"target_version_jitter": "30m",
		"heartbeat_interval": "15s",
		"host_perf_interval": "2m",
		"inventory_interval": "12h"
	}`
	groupsDoc  = `{"groups": ["finance", "tokyo-office", "win11"]}`
	keyringDoc = `[
		{"kid": "ops-2026", "public_key": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", "label": "ops signing key", "max_age_secs": 600},
		{"kid": "break-glass", "public_key": "PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=", "max_age_secs": 0, "audit_every_use": true},
		{"kid": "plain", "public_key": "PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw="}
	]`
)

// The inventory document carries the hash of its data.
var (
	inventoryFull = `{
		"pc_id": "desktop-01",
		"at": "2026-03-01T10:00:00Z",
		"category": "hw",
		"collector": "wmi",
		"hash": "` + inventoryHash + `",
		"data": {
			"Win32_ComputerSystem": [{"Manufacturer": "LENOVO", "Model": "20XW", "TotalPhysicalMemory": 17179869184}],
			"Win32_BIOS": [{"SerialNumber": "PF2ABC", "SMBIOSBIOSVersion": "N32ET86W (1.62 )"}],
			"Win32_Processor": [{"Name": "Intel(R) Core(TM) i7", "NumberOfCores": 4}, {"Name": "second", "NumberOfCores": 4}]
		}
	}`
	// inventoryCanonical is the canonical JSON of inventoryFull's data,
	// written by hand: keys sorted, no spaces. inventoryHash is its SHA-256.
	inventoryCanonical = `{"Win32_BIOS":[{"SMBIOSBIOSVersion":"N32ET86W (1.62 )","SerialNumber":"PF2ABC"}],` +
		`"Win32_ComputerSystem":[{"Manufacturer":"LENOVO","Model":"20XW","TotalPhysicalMemory":17179869184}],` +
		`"Win32_Processor":[{"Name":"Intel(R) Core(TM) i7","NumberOfCores":4},{"Name":"second","NumberOfCores":4}]}`
	inventoryHash = sha256Hex(inventoryCanonical)
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestExecResultRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want wire.ExecResult
	}{
		{"every field", execResultFull, wire.ExecResult{
			ResultID: "0f8fad5b-d9cb-469f-a165-70867728950e", RequestID: "req-01JQ5W0Z", ExecID: "exec-42",
			PcID: "desktop-01", ExitCode: wire.ExitKilled, Stderr: "timeout after 300s\n",
			StartedAt:    time.Date(2026, 3, 1, 10, 15, 0, 123456000, time.UTC),
			FinishedAt:   time.Date(2026, 3, 1, 10, 20, 0, 500000000, time.UTC),
			StdoutObject: "req-01JQ5W0Z/stdout", StderrObject: "req-01JQ5W0Z/stderr",
			ManifestID: "inventory-hw", CollectObject: "desktop-01/inventory-hw/20260301T102000Z.zip",
			ParentResultID: "r-0", StdoutTruncated: true, StderrTruncated: true,
		}},
		{"skipped", execResultSkipped, wire.ExecResult{
			ResultID: "r-1", RequestID: "req-1", PcID: "pc1", ExitCode: wire.ExitVersionPin, Skipped: true,
			Stderr:    "version pin: script_current[j] is 8, command is 7",
			StartedAt: time.Date(2026, 3, 1, 10, 15, 0, 0, time.UTC), FinishedAt: time.Date(2026, 3, 1, 10, 15, 0, 0, time.UTC),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roundTrip(t, tt.doc, wire.DecodeExecResult, &tt.want, "")
		})
	}
}

func TestExecResultEncoding(t *testing.T) {
	b, err := json.Marshal(wire.ExecResult{ResultID: "r", RequestID: "q", PcID: "p"})
	if err != nil {
		t.Fatal(err)
	}
	checkKeys(t, b,
		[]string{"result_id", "request_id", "pc_id", "exit_code", "stdout", "stderr", "started_at", "finished_at"},
		[]string{"skipped", "exec_id", "stdout_object", "stderr_object", "manifest_id", "collect_object", "parent_result_id", "stdout_truncated", "stderr_truncated"})
}

func TestExitCodes(t *testing.T) {
	// The reserved exit codes are part of the protocol.
	for _, tt := range []struct {
		got, want int32
	}{
		{wire.ExitKilled, -1}, {wire.ExitRestarted, 121}, {wire.ExitUnsupported, 122}, {wire.ExitRefused, 123},
		{wire.ExitVersionPin, 124}, {wire.ExitDeadline, 125}, {wire.ExitRevoked, 126}, {wire.ExitStale, 127},
	} {
		if tt.got != tt.want {
			t.Errorf("exit code %d, want %d", tt.got, tt.want)
		}
	}
}

func TestEventStartedRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 15, 0, 0, time.UTC)
	tests := []struct {
		name string
		doc  string
		want wire.EventStarted
	}{
		{"every field", eventStartedFull, wire.EventStarted{ExecID: "exec-42", PcID: "desktop-01",
			ResultID: "0f8fad5b-d9cb-469f-a165-70867728950e", RequestID: "req-01JQ5W0Z", StartedAt: at,
			ManifestID: "inventory-refresh", Version: "7"}},
		{"ad hoc", eventStartedMinimal, wire.EventStarted{ExecID: "exec-42", PcID: "desktop-01", ResultID: "r", RequestID: "req", StartedAt: at, ManifestID: wire.AdhocID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roundTrip(t, tt.doc, wire.DecodeEventStarted, &tt.want, "")
		})
	}
	b, err := json.Marshal(wire.EventStarted{})
	if err != nil {
		t.Fatal(err)
	}
	checkKeys(t, b, []string{"exec_id", "pc_id", "result_id", "request_id", "started_at", "manifest_id", "version"}, nil)
}

func TestObsEventRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		doc      string
		want     wire.ObsEvent
		wantJSON string
	}{
		{"every field", obsEventFull, wire.ObsEvent{
			PcID: "desktop-01", At: time.Date(2026, 3, 1, 8, 0, 1, 250000000, time.UTC), Kind: "logon", Source: "winlog:Security",
			EventRecordID: "18446744073709551615",
			Payload:       json.RawMessage(`{"user": "CORP\\alice", "logon_type": 2, "nested": {"list": [1, "two", null, true]}}`),
		}, ""},
		{"null payload", obsEventMinimal, wire.ObsEvent{
			PcID: "desktop-01", At: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC), Kind: wire.KindAgentOnline, Source: wire.SourceStartup,
			Payload: json.RawMessage(`null`),
		}, ""},
		{"missing payload is sent as null", `{"pc_id":"p","at":"2026-03-01T08:00:00Z","kind":"boot","source":"winlog:System"}`,
			wire.ObsEvent{PcID: "p", At: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC), Kind: "boot", Source: "winlog:System"},
			`{"pc_id":"p","at":"2026-03-01T08:00:00Z","kind":"boot","source":"winlog:System","event_record_id":null,"payload":null}`},
		{"scalar payload, record id 0, unknown fields", `{"pc_id":"","at":"2026-03-01T08:00:00Z","kind":"k","source":"s:x","event_record_id":"0","payload":"text","extra":[1]}`,
			wire.ObsEvent{At: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC), Kind: "k", Source: "s:x", EventRecordID: "0", Payload: json.RawMessage(`"text"`)},
			`{"pc_id":"","at":"2026-03-01T08:00:00Z","kind":"k","source":"s:x","event_record_id":"0","payload":"text"}`},
		{"startup record id", `{"pc_id":"p","at":"2026-03-01T08:00:00Z","kind":"agent_online","source":"agent:startup","event_record_id":"startup_0f8fad5b-d9cb-469f-a165-70867728950e","payload":{"boot_time":"2026-03-01T07:59:00Z"}}`,
			wire.ObsEvent{PcID: "p", At: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC), Kind: wire.KindAgentOnline, Source: wire.SourceStartup,
				EventRecordID: "startup_0f8fad5b-d9cb-469f-a165-70867728950e", Payload: json.RawMessage(`{"boot_time":"2026-03-01T07:59:00Z"}`)}, ""},
		{"array payload", `{"pc_id":"p","at":"2026-03-01T08:00:00Z","kind":"k","source":"s:x","payload":[{"a":1},2]}`,
			wire.ObsEvent{PcID: "p", At: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC), Kind: "k", Source: "s:x", Payload: json.RawMessage(`[{"a":1},2]`)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.wantJSON == "" && tt.want.EventRecordID == "" {
				// Upstream sends an absent record id as null.
				tt.wantJSON = strings.Replace(compactJSON(t, []byte(tt.doc)), `"payload"`, `"event_record_id":null,"payload"`, 1)
			}
			roundTrip(t, tt.doc, wire.DecodeObsEvent, &tt.want, tt.wantJSON)
		})
	}
	b, err := json.Marshal(wire.ObsEvent{Kind: "k"})
	if err != nil {
		t.Fatal(err)
	}
	checkKeys(t, b, []string{"pc_id", "at", "kind", "source", "event_record_id", "payload"}, nil)
}

func TestDecodeObsEventInvalid(t *testing.T) {
	tests := []struct {
		name, doc, mention string
	}{
		{"bad JSON", `{"kind":`, "malformed JSON"},
		{"no kind", `{"at":"2026-03-01T08:00:00Z","source":"s:x"}`, "kind is empty"},
		{"no source", `{"at":"2026-03-01T08:00:00Z","kind":"k"}`, "source is empty"},
		{"no at", `{"kind":"k","source":"s:x"}`, "at is missing"},
		{"negative record id", `{"at":"2026-03-01T08:00:00Z","kind":"k","source":"s:x","event_record_id":-1}`, `event_record_id`},
		{"record id number", `{"at":"2026-03-01T08:00:00Z","kind":"k","source":"s:x","event_record_id":7}`, `event_record_id`},
		{"record id object", `{"at":"2026-03-01T08:00:00Z","kind":"k","source":"s:x","event_record_id":{}}`, `event_record_id`},
		{"at not a time", `{"at":"yesterday","kind":"k","source":"s:x"}`, `"yesterday"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := wire.DecodeObsEvent([]byte(tt.doc))
			checkInvalid(t, err, "obs event", tt.mention)
		})
	}
}

func TestHeartbeatRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 15, 30, 0, time.UTC)
	tests := []struct {
		name     string
		doc      string
		want     wire.Heartbeat
		wantJSON string
	}{
		{"every field", heartbeatFull, wire.Heartbeat{
			PcID: "desktop-01", At: at, AgentVersion: "1.4.2", Hostname: "DESKTOP-01", OSFamily: wire.OSWindows,
			AgentCPUPct: ptr(1.5), AgentRSSBytes: 18446744073709551615,
			AgentDiskReadBytes: ptr(uint64(1048576)), AgentDiskWrittenBytes: ptr(uint64(0)),
			QuarantinedVersions: []string{"1.4.1", "1.3.9"},
			LastLogonUser:       `CORP\alice`, LastLogonDisplayName: "Alice Example",
			CommandProtocols: []string{"v1"},
			CommandKeys:      []string{"ops-2026:SHA256:3q2+7w", "break-glass:SHA256:AAAA"},
			Enforcing:        true,
			Outbox: map[string]wire.OutboxStats{
				"results": {Pending: 3, OldestAgeSecs: 12.5, Stuck: 1},
				"events":  {},
			},
		}, ""},
		{"empty keys, not enforcing", heartbeatEmpty, wire.Heartbeat{
			PcID: "pc1", At: at, AgentVersion: "dev", Hostname: "pc1", OSFamily: wire.OSLinux, AgentRSSBytes: 1, CommandKeys: []string{},
		}, ""},
		{"null command_keys are sent as []", `{"pc_id":"pc1","at":"2026-03-01T10:15:30Z","agent_version":"dev","hostname":"pc1",
			"os_family":"macos","agent_cpu_pct":0,"agent_rss_bytes":0,"command_keys":null,"quarantined_versions":[],"future":1}`,
			wire.Heartbeat{PcID: "pc1", At: at, AgentVersion: "dev", Hostname: "pc1", OSFamily: wire.OSMacOS, AgentCPUPct: ptr(0.0), QuarantinedVersions: []string{}},
			`{"pc_id":"pc1","at":"2026-03-01T10:15:30Z","agent_version":"dev","hostname":"pc1",
			"os_family":"macos","agent_cpu_pct":0,"command_keys":[],"enforcing":false}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roundTrip(t, tt.doc, wire.DecodeHeartbeat, &tt.want, tt.wantJSON)
		})
	}
}

// TestHeartbeatAlwaysSent checks the fields docs/protocol.md says are always sent.
func TestHeartbeatAlwaysSent(t *testing.T) {
	for _, hb := range []any{wire.Heartbeat{}, &wire.Heartbeat{}, wire.Heartbeat{CommandKeys: []string{}}} {
		b, err := json.Marshal(hb)
		if err != nil {
			t.Fatal(err)
		}
		checkKeys(t, b,
			[]string{"pc_id", "at", "agent_version", "command_keys", "enforcing"},
			[]string{"hostname", "os_family", "agent_cpu_pct", "agent_rss_bytes", "agent_disk_read_bytes", "agent_disk_written_bytes",
				"quarantined_versions", "last_logon_user", "last_logon_display_name", "command_protocols", "outbox"})
		if !strings.Contains(string(b), `"command_keys":[]`) || !strings.Contains(string(b), `"enforcing":false`) {
			t.Errorf("want command_keys [] and enforcing false: %s", b)
		}
	}
	// Also inside another document, and as a map value.
	b, err := json.Marshal(map[string]any{"hb": wire.Heartbeat{}, "hbs": []wire.Heartbeat{{}}})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), `"command_keys":[]`); n != 2 {
		t.Errorf("command_keys [] %d times, want 2: %s", n, b)
	}
}

func TestHostPerfRoundTrip(t *testing.T) {
	want := wire.HostPerf{
		PcID: "desktop-01", At: time.Date(2026, 3, 1, 10, 16, 0, 0, time.UTC), CPUPct: 37.25, CPUCount: 16,
		MemUsedBytes: 8589934592, MemTotalBytes: 34359738368, SwapUsedBytes: 1048576, SwapTotalBytes: 4294967296,
		DiskReadBytesPerSec: 123456.5, DiskWrittenBytesPerSec: 654321, NetRxBytesPerSec: 1000.25, NetTxBytesPerSec: 2000.75,
	}
	roundTrip(t, hostPerfFull, wire.DecodeHostPerf, &want, "")
}

func TestInventoryReportRoundTrip(t *testing.T) {
	want := wire.InventoryReport{
		PcID: "desktop-01", At: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), Category: wire.CategoryHW, Collector: "wmi",
		Hash: inventoryHash,
		Data: map[string]any{
			"Win32_ComputerSystem": []any{map[string]any{"Manufacturer": "LENOVO", "Model": "20XW", "TotalPhysicalMemory": float64(17179869184)}},
			"Win32_BIOS":           []any{map[string]any{"SerialNumber": "PF2ABC", "SMBIOSBIOSVersion": "N32ET86W (1.62 )"}},
			"Win32_Processor": []any{
				map[string]any{"Name": "Intel(R) Core(TM) i7", "NumberOfCores": float64(4)},
				map[string]any{"Name": "second", "NumberOfCores": float64(4)},
			},
		},
	}
	roundTrip(t, inventoryFull, wire.DecodeInventoryReport, &want, "")
}

func TestConfigScopeRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		doc      string
		want     wire.ConfigScope
		wantJSON string
	}{
		{"every field", configScopeFull, wire.ConfigScope{
			MaxLocalConcurrent: ptr(4), TargetVersion: ptr("1.5.0"), TargetVersionJitter: ptr("30m"),
			HeartbeatInterval: ptr("15s"), HostPerfInterval: ptr("2m"), InventoryInterval: ptr("12h"),
		}, ""},
		{"empty", `{}`, wire.ConfigScope{}, ""},
		// An explicit empty string is a value (e.g. "no target version"), not an absent field.
		{"explicit empty target version", `{"target_version":""}`, wire.ConfigScope{TargetVersion: ptr("")}, ""},
		{"unknown fields and nulls", `{"heartbeat_interval":"45s","log_level":"debug","max_local_concurrent":null,"new":{"x":1}}`,
			wire.ConfigScope{HeartbeatInterval: ptr("45s")}, `{"heartbeat_interval":"45s"}`},
		// Malformed durations decode; Config.Apply reports them and uses the default.
		{"malformed duration decodes", `{"max_local_concurrent":1,"heartbeat_interval":"soon"}`,
			wire.ConfigScope{MaxLocalConcurrent: ptr(1), HeartbeatInterval: ptr("soon")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roundTrip(t, tt.doc, wire.DecodeConfigScope, &tt.want, tt.wantJSON)
		})
	}
}

func TestGroupsRoundTrip(t *testing.T) {
	roundTrip(t, groupsDoc, wire.DecodeGroups, &wire.Groups{Groups: []string{"finance", "tokyo-office", "win11"}}, "")
	roundTrip(t, `{"groups":[],"updated_by":"cli"}`, wire.DecodeGroups, &wire.Groups{Groups: []string{}}, `{"groups":[]}`)
}

func TestKeyringRoundTrip(t *testing.T) {
	got, err := wire.DecodeKeyring([]byte(keyringDoc))
	if err != nil {
		t.Fatal(err)
	}
	want := []wire.KeyringEntry{
		{Kid: "ops-2026", PublicKey: "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", Label: "ops signing key", MaxAgeSecs: 600, HasMaxAge: true},
		{Kid: "break-glass", PublicKey: "PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=", HasMaxAge: true, AuditEveryUse: true},
		{Kid: "plain", PublicKey: "PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw="},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, b, keyringDoc)

	b, err = json.Marshal(wire.KeyringEntry{Kid: "k", PublicKey: "p"})
	if err != nil {
		t.Fatal(err)
	}
	checkKeys(t, b, []string{"kid", "public_key"}, []string{"label", "max_age_secs"})

	if k, err := wire.DecodeKeyring([]byte(`[]`)); err != nil || len(k) != 0 {
		t.Errorf("empty keyring: %v, %v", k, err)
	}
}

func TestLogsFetchRequest(t *testing.T) {
	var r wire.LogsFetchRequest
	if err := json.Unmarshal([]byte(`{"tail_lines":500,"other":true}`), &r); err != nil || r.TailLines != 500 {
		t.Fatalf("got %+v, %v", r, err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, b, `{"tail_lines":500}`)
}

// TestDecodeInvalid checks that every decoder rejects malformed input with an
// error that names the document and wraps ErrInvalid, and returns no value.
func TestDecodeInvalid(t *testing.T) {
	decoders := []struct {
		what   string
		decode func([]byte) (any, error)
	}{
		{"exec result", func(b []byte) (any, error) { return wire.DecodeExecResult(b) }},
		{"event started", func(b []byte) (any, error) { return wire.DecodeEventStarted(b) }},
		{"obs event", func(b []byte) (any, error) { return wire.DecodeObsEvent(b) }},
		{"heartbeat", func(b []byte) (any, error) { return wire.DecodeHeartbeat(b) }},
		{"host perf", func(b []byte) (any, error) { return wire.DecodeHostPerf(b) }},
		{"inventory report", func(b []byte) (any, error) { return wire.DecodeInventoryReport(b) }},
		{"config scope", func(b []byte) (any, error) { return wire.DecodeConfigScope(b) }},
		{"groups", func(b []byte) (any, error) { return wire.DecodeGroups(b) }},
		{"command", func(b []byte) (any, error) { return wire.DecodeCommand(b) }},
	}
	inputs := []struct {
		name, doc, mention string
	}{
		{"empty", ``, "malformed JSON"},
		{"garbage", `hello`, "malformed JSON at byte 1"},
		{"truncated", `{"pc_id":"p"`, "malformed JSON"},
		{"trailing comma", `{"pc_id":"p",}`, "malformed JSON"},
		{"two documents", `{} {}`, "malformed JSON"},
		{"array", `[]`, "array value where a JSON object expected"},
		{"number", `42`, "number value where a JSON object expected"},
		{"invalid UTF-8 outside strings", "{\xff}", "malformed JSON"},
	}
	for _, d := range decoders {
		for _, in := range inputs {
			t.Run(d.what+"/"+in.name, func(t *testing.T) {
				v, err := d.decode([]byte(in.doc))
				checkInvalid(t, err, d.what+":", in.mention)
				if rv := reflect.ValueOf(v); !rv.IsNil() {
					t.Errorf("returned %+v with the error, want nil", v)
				}
			})
		}
	}

	// Wrong field types name the field.
	typed := []struct {
		name    string
		decode  func([]byte) error
		doc     string
		mention []string
	}{
		{"exec result exit_code string", func(b []byte) error { _, err := wire.DecodeExecResult(b); return err },
			`{"exit_code":"0"}`, []string{"exec result:", `field "exit_code": string value where int32 expected`}},
		{"exec result exit_code overflow", func(b []byte) error { _, err := wire.DecodeExecResult(b); return err },
			`{"exit_code":4294967296}`, []string{`field "exit_code"`}},
		{"exec result skipped number", func(b []byte) error { _, err := wire.DecodeExecResult(b); return err },
			`{"skipped":1}`, []string{`field "skipped"`}},
		{"exec result started_at", func(b []byte) error { _, err := wire.DecodeExecResult(b); return err },
			`{"started_at":"10:15"}`, []string{"exec result:", `"10:15"`}},
		{"event started started_at", func(b []byte) error { _, err := wire.DecodeEventStarted(b); return err },
			`{"started_at":true}`, []string{"event started:"}},
		{"heartbeat rss negative", func(b []byte) error { _, err := wire.DecodeHeartbeat(b); return err },
			`{"agent_rss_bytes":-1}`, []string{"heartbeat:", `field "agent_rss_bytes": number -1 value where uint64 expected`}},
		{"heartbeat command_keys string", func(b []byte) error { _, err := wire.DecodeHeartbeat(b); return err },
			`{"command_keys":"k:f"}`, []string{`field "command_keys"`}},
		{"heartbeat enforcing string", func(b []byte) error { _, err := wire.DecodeHeartbeat(b); return err },
			`{"enforcing":"true"}`, []string{`field "enforcing"`}},
		{"heartbeat outbox pending", func(b []byte) error { _, err := wire.DecodeHeartbeat(b); return err },
			`{"outbox":{"results":{"pending":"3"}}}`, []string{"pending"}},
		{"host perf cpu_count float", func(b []byte) error { _, err := wire.DecodeHostPerf(b); return err },
			`{"cpu_count":1.5}`, []string{"host perf:", `field "cpu_count"`}},
		{"inventory data array", func(b []byte) error { _, err := wire.DecodeInventoryReport(b); return err },
			`{"data":[1]}`, []string{"inventory report:", `field "data"`}},
		{"config max_local_concurrent string", func(b []byte) error { _, err := wire.DecodeConfigScope(b); return err },
			`{"max_local_concurrent":"4"}`, []string{"config scope:", `field "max_local_concurrent"`}},
		{"config interval number", func(b []byte) error { _, err := wire.DecodeConfigScope(b); return err },
			`{"heartbeat_interval":30}`, []string{`field "heartbeat_interval"`}},
		{"groups string", func(b []byte) error { _, err := wire.DecodeGroups(b); return err },
			`{"groups":"a,b"}`, []string{"groups:", `field "groups"`}},
		{"groups member number", func(b []byte) error { _, err := wire.DecodeGroups(b); return err },
			`{"groups":["a",2]}`, []string{`field "groups"`}},
		{"keyring object", func(b []byte) error { _, err := wire.DecodeKeyring(b); return err },
			`{"kid":"k"}`, []string{"keyring:", "object value where a JSON array expected"}},
		{"keyring bad JSON", func(b []byte) error { _, err := wire.DecodeKeyring(b); return err },
			`[{"kid":"k",]`, []string{"keyring:", "malformed JSON"}},
		{"keyring kid number", func(b []byte) error { _, err := wire.DecodeKeyring(b); return err },
			`[{"kid":1,"public_key":"p"}]`, []string{`field "kid"`}},
		{"keyring no kid", func(b []byte) error { _, err := wire.DecodeKeyring(b); return err },
			`[{"kid":"a","public_key":"p"},{"public_key":"p"}]`, []string{"keyring entry 1 lacks kid or public_key"}},
		{"keyring no public key", func(b []byte) error { _, err := wire.DecodeKeyring(b); return err },
			`[{"kid":"a"}]`, []string{"keyring entry 0 lacks kid or public_key"}},
	}
	for _, tt := range typed {
		t.Run(tt.name, func(t *testing.T) {
			checkInvalid(t, tt.decode([]byte(tt.doc)), tt.mention...)
		})
	}
}
