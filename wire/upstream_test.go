package wire_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// upstreamCase is a document exactly as upstream's serde_json::to_string
// writes it (written by hand from the Rust definitions in kanade-shared's
// wire module: field order, Option fields with skip_serializing_if omitted
// and the others written as null, f64 always with a fraction), what it
// decodes to, and what wire.Marshal writes back: the same bytes, with the
// fields upstream does not have (ours) at the end.
type upstreamCase struct {
	name   string
	doc    string
	decode func([]byte) (any, error)
	want   any
	// enc is the exact encoding wire.Marshal must produce; empty: doc.
	enc string
}

func upstreamDecoder[T any](dec func([]byte) (*T, error)) func([]byte) (any, error) {
	return func(b []byte) (any, error) {
		v, err := dec(b)
		if err != nil {
			return nil, err
		}
		return *v, nil
	}
}

func TestUpstreamDocuments(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	deadline := utc(2026, 5, 18, 9, 30, 0, 0)
	sha := "deadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef"
	cmd := upstreamDecoder(wire.DecodeCommand)
	result := upstreamDecoder(wire.DecodeExecResult)
	started := upstreamDecoder(wire.DecodeEventStarted)
	obs := upstreamDecoder(wire.DecodeObsEvent)
	hb := upstreamDecoder(wire.DecodeHeartbeat)
	perf := upstreamDecoder(wire.DecodeHostPerf)
	scope := upstreamDecoder(wire.DecodeConfigScope)
	groups := upstreamDecoder(wire.DecodeGroups)
	logs := upstreamDecoder(wire.DecodeLogsFetchRequest)
	keyring := func(b []byte) (any, error) { return wire.DecodeKeyring(b) }

	tests := []upstreamCase{
		// Command (command.rs): exec_id and jitter_secs are Option without
		// skip (null), run_as and staleness always written, the rest skipped.
		{"command every field", `{"bypass_local_limit":true,"id":"inventory-hw","version":"1.0.0","request_id":"req-1","exec_id":"dep-1",` +
			`"shell":"powershell","script":"Get-CimInstance Win32_BIOS 2>&1 | Out-String -Width 200 > $env:TEMP\\bios.txt","timeout_secs":30,` +
			`"jitter_secs":5,"run_as":"system_gui","cwd":"%ProgramData%\\kanade","deadline_at":"2026-05-18T09:30:00Z",` +
			`"staleness":{"mode":"strict","max_cache_age":"1h 30m"},"emit":{"type":"events"},"retry":{"max":3,"backoff_secs":600}}`,
			cmd, wire.Command{
				BypassLocalLimit: true, ID: "inventory-hw", Version: "1.0.0", RequestID: "req-1", ExecID: "dep-1", Shell: wire.ShellPowerShell,
				Script: `Get-CimInstance Win32_BIOS 2>&1 | Out-String -Width 200 > $env:TEMP\bios.txt`, TimeoutSecs: 30, JitterSecs: 5,
				RunAs: wire.RunAsSystemGUI, Cwd: `%ProgramData%\kanade`, DeadlineAt: &deadline,
				Staleness: &wire.Staleness{Mode: wire.StalenessStrict, MaxCacheAge: "1h 30m"},
				Emit:      &wire.Emit{Type: wire.EmitEvents}, Retry: &wire.Retry{Max: 3, BackoffSecs: 600},
			}, ""},
		{"command ad hoc", `{"id":"adhoc-run","version":"","request_id":"r","exec_id":null,"shell":"sh","script":"echo hi",` +
			`"timeout_secs":5,"jitter_secs":null,"run_as":"system","staleness":{"mode":"cached"}}`,
			cmd, wire.Command{ID: wire.AdhocID, RequestID: "r", Shell: wire.ShellSh, Script: "echo hi", TimeoutSecs: 5,
				RunAs: wire.RunAsSystem, Staleness: &wire.Staleness{Mode: wire.StalenessCached}}, ""},
		{"command script object, check, collect, finalize carried", `{"id":"collect-diag","version":"2","request_id":"r2","exec_id":"e2",` +
			`"shell":"pwsh","script":"","script_object":"collect-diag/2","script_object_sha256":"` + sha + `","timeout_secs":600,` +
			`"jitter_secs":0,"run_as":"user","staleness":{"mode":"unchecked"},"emit":{"type":"events","watermark_path":"C:\\wm.txt"},"check":{"name":"disk","status_field":"st"},` +
			`"collect":{"name":"diag","description":"logs","max_size":"50MB","files_field":"files"},` +
			`"finalize":{"shell":"powershell","script":"Remove-Item $env:FILE","timeout_secs":30,"run_as":"system","on_each_bundle":false}}`,
			cmd, wire.Command{ID: "collect-diag", Version: "2", RequestID: "r2", ExecID: "e2", Shell: wire.ShellPwsh,
				ScriptObject: "collect-diag/2", ScriptObjectSHA256: sha, TimeoutSecs: 600, RunAs: wire.RunAsUser,
				Staleness: &wire.Staleness{Mode: wire.StalenessUnchecked},
				Emit:      &wire.Emit{Type: wire.EmitEvents, WatermarkPath: `C:\wm.txt`},
				Check:     &wire.CheckHint{Name: "disk", StatusField: "st", DetailField: "detail", Fleet: true, Health: true},
				Collect:   &wire.CollectHint{Name: "diag", Description: "logs", MaxSize: "50MB", FilesField: "files"},
				Finalize: &wire.FinalizeCommand{Shell: wire.ShellPowerShell, Script: "Remove-Item $env:FILE", TimeoutSecs: 30,
					RunAs: wire.RunAsSystem},
			},
			// jitter_secs Some(0) and None mean the same (no jitter); Go writes null.
			`{"id":"collect-diag","version":"2","request_id":"r2","exec_id":"e2",` +
				`"shell":"pwsh","script":"","script_object":"collect-diag/2","script_object_sha256":"` + sha + `","timeout_secs":600,` +
				`"jitter_secs":null,"run_as":"user","staleness":{"mode":"unchecked"},"emit":{"type":"events","watermark_path":"C:\\wm.txt"},` +
				`"check":{"name":"disk","status_field":"st","detail_field":"detail","fleet":true,"health":true},` +
				`"collect":{"name":"diag","description":"logs","max_size":"50MB","files_field":"files"},` +
				`"finalize":{"shell":"powershell","script":"Remove-Item $env:FILE","timeout_secs":30,"run_as":"system","on_each_bundle":false}}`},
		{"command pre-v0.29 job_id, pre-v0.21 fields absent", `{"id":"x","version":"1.0.0","request_id":"r","job_id":"legacy-exec-uuid",` +
			`"shell":"cmd","script":"echo","timeout_secs":5}`,
			cmd, wire.Command{ID: "x", Version: "1.0.0", RequestID: "r", ExecID: "legacy-exec-uuid", Shell: wire.ShellCmd, Script: "echo", TimeoutSecs: 5},
			`{"id":"x","version":"1.0.0","request_id":"r","exec_id":"legacy-exec-uuid","shell":"cmd","script":"echo",` +
				`"timeout_secs":5,"jitter_secs":null,"run_as":"system","staleness":{"mode":"cached"}}`},
		{"command strict 0s", `{"id":"j","version":"1","request_id":"r","exec_id":null,"shell":"sh","script":"true","timeout_secs":1,` +
			`"jitter_secs":null,"run_as":"system","staleness":{"mode":"strict","max_cache_age":"0s"}}`,
			cmd, wire.Command{ID: "j", Version: "1", RequestID: "r", Shell: wire.ShellSh, Script: "true", TimeoutSecs: 1, RunAs: wire.RunAsSystem,
				Staleness: &wire.Staleness{Mode: wire.StalenessStrict, MaxCacheAge: "0s"}}, ""},

		// ExecResult (result.rs): exec_id, parent_result_id, the *_object,
		// manifest_id and collect_object fields are skipped when None,
		// skipped when false. Ours: *_truncated (when set).
		{"exec result", `{"result_id":"result-uuid-1","request_id":"req-1","exec_id":"exec-uuid-1","pc_id":"pc-01","exit_code":0,` +
			`"stdout":"hello <world> & co\n","stderr":"","started_at":"2026-05-16T00:00:00Z","finished_at":"2026-05-16T00:00:05.123Z","manifest_id":"inventory-hw"}`,
			result, wire.ExecResult{ResultID: "result-uuid-1", RequestID: "req-1", ExecID: "exec-uuid-1", PcID: "pc-01",
				Stdout: "hello <world> & co\n", StartedAt: utc(2026, 5, 16, 0, 0, 0, 0), FinishedAt: utc(2026, 5, 16, 0, 0, 5, 123_000_000),
				ManifestID: "inventory-hw"},
			`{"result_id":"result-uuid-1","request_id":"req-1","exec_id":"exec-uuid-1","pc_id":"pc-01","exit_code":0,` +
				`"stdout":"hello <world> & co\n","stderr":"","started_at":"2026-05-16T00:00:00Z","finished_at":"2026-05-16T00:00:05.123Z","manifest_id":"inventory-hw"}`},
		{"exec result offloaded, collected", `{"result_id":"r1","request_id":"req","pc_id":"PC1","exit_code":-1,"stdout":"","stderr":"",` +
			`"started_at":"2026-06-15T00:00:00.123456Z","finished_at":"2026-06-15T00:00:00.123456789Z","stdout_object":"req/PC1/stdout","stderr_object":"req/PC1/stderr",` +
			`"manifest_id":"collect-diagnostics","collect_object":"PC1/collect-diagnostics/20260615T000000Z.zip"}`,
			result, wire.ExecResult{ResultID: "r1", RequestID: "req", PcID: "PC1", ExitCode: -1,
				StartedAt: utc(2026, 6, 15, 0, 0, 0, 123_456_000), FinishedAt: utc(2026, 6, 15, 0, 0, 0, 123_456_789),
				StdoutObject: "req/PC1/stdout", StderrObject: "req/PC1/stderr", ManifestID: "collect-diagnostics",
				CollectObject: "PC1/collect-diagnostics/20260615T000000Z.zip"},
			`{"result_id":"r1","request_id":"req","pc_id":"PC1","exit_code":-1,"stdout":"","stderr":"",` +
				`"started_at":"2026-06-15T00:00:00.123456Z","finished_at":"2026-06-15T00:00:00.123456789Z","stdout_object":"req/PC1/stdout","stderr_object":"req/PC1/stderr",` +
				`"manifest_id":"collect-diagnostics","collect_object":"PC1/collect-diagnostics/20260615T000000Z.zip"}`},
		{"exec result pre-v0.29 (no result_id)", `{"request_id":"r","pc_id":"x","exit_code":0,"stdout":"","stderr":"",` +
			`"started_at":"2026-05-16T00:00:00Z","finished_at":"2026-05-16T00:00:00Z"}`,
			result, wire.ExecResult{RequestID: "r", PcID: "x", StartedAt: utc(2026, 5, 16, 0, 0, 0, 0), FinishedAt: utc(2026, 5, 16, 0, 0, 0, 0)},
			`{"result_id":"","request_id":"r","pc_id":"x","exit_code":0,"stdout":"","stderr":"",` +
				`"started_at":"2026-05-16T00:00:00Z","finished_at":"2026-05-16T00:00:00Z"}`},

		// chrono writes a DateTime<Utc> with SecondsFormat::AutoSi: 0, 3, 6
		// or 9 fractional digits, never trimmed further (chrono's
		// src/datetime/serde.rs, Serialize for DateTime).
		{"exec result chrono fractions", `{"result_id":"r2","request_id":"req","pc_id":"PC1","exit_code":0,"stdout":"","stderr":"",` +
			`"started_at":"2026-06-15T00:00:00.500Z","finished_at":"2026-06-15T00:00:01.000001500Z"}`,
			result, wire.ExecResult{ResultID: "r2", RequestID: "req", PcID: "PC1",
				StartedAt: utc(2026, 6, 15, 0, 0, 0, 500_000_000), FinishedAt: utc(2026, 6, 15, 0, 0, 1, 1_500)}, ""},
		{"obs event chrono micros", `{"pc_id":"pc-01","at":"2026-05-28T10:41:00.120000Z","kind":"lock","source":"winlog:Security",` +
			`"event_record_id":"5","payload":null}`,
			obs, wire.ObsEvent{PcID: "pc-01", At: utc(2026, 5, 28, 10, 41, 0, 120_000_000), Kind: "lock", Source: "winlog:Security",
				EventRecordID: "5", Payload: json.RawMessage(`null`)},
			// 120 ms: chrono picks 3 digits.
			`{"pc_id":"pc-01","at":"2026-05-28T10:41:00.120Z","kind":"lock","source":"winlog:Security","event_record_id":"5","payload":null}`},

		// EventStarted (event.rs): every field required. Ours: result_id, request_id.
		{"event started", `{"exec_id":"exec-uuid-1","pc_id":"minipc","started_at":"2026-05-20T12:00:00Z","manifest_id":"inventory-hw","version":"1.0.0"}`,
			started, wire.EventStarted{ExecID: "exec-uuid-1", PcID: "minipc", StartedAt: utc(2026, 5, 20, 12, 0, 0, 0), ManifestID: "inventory-hw", Version: "1.0.0"},
			`{"exec_id":"exec-uuid-1","pc_id":"minipc","started_at":"2026-05-20T12:00:00Z","manifest_id":"inventory-hw","version":"1.0.0","result_id":"","request_id":""}`},

		// ObsEvent (obs_event.rs): event_record_id Option<String> without
		// skip (null), payload a serde_json::Value (null when absent).
		{"obs logon", `{"pc_id":"pc-01","at":"2026-05-28T10:41:00Z","kind":"logon","source":"winlog:Security","event_record_id":"1234567",` +
			`"payload":{"logon_type":2,"user":"yukimemi"}}`,
			obs, wire.ObsEvent{PcID: "pc-01", At: utc(2026, 5, 28, 10, 41, 0, 0), Kind: "logon", Source: "winlog:Security", EventRecordID: "1234567",
				Payload: json.RawMessage(`{"logon_type":2,"user":"yukimemi"}`)}, ""},
		{"obs boot, null payload", `{"pc_id":"pc-01","at":"2026-05-28T00:00:00Z","kind":"boot","source":"winlog:System","event_record_id":"99","payload":null}`,
			obs, wire.ObsEvent{PcID: "pc-01", At: utc(2026, 5, 28, 0, 0, 0, 0), Kind: "boot", Source: "winlog:System", EventRecordID: "99",
				Payload: json.RawMessage(`null`)}, ""},
		{"obs startup", `{"pc_id":"pc-01","at":"2026-05-28T00:00:00Z","kind":"agent_online","source":"agent:startup",` +
			`"event_record_id":"startup_0f8fad5b-d9cb-469f-a165-70867728950e","payload":{"boot_time":"2026-05-27T23:59:00Z"}}`,
			obs, wire.ObsEvent{PcID: "pc-01", At: utc(2026, 5, 28, 0, 0, 0, 0), Kind: wire.KindAgentOnline, Source: wire.SourceStartup,
				EventRecordID: "startup_0f8fad5b-d9cb-469f-a165-70867728950e", Payload: json.RawMessage(`{"boot_time":"2026-05-27T23:59:00Z"}`)}, ""},
		{"obs no record id", `{"pc_id":"pc-01","at":"2026-05-28T10:00:00Z","kind":"agent_started","source":"agent:internal","event_record_id":null,"payload":null}`,
			obs, wire.ObsEvent{PcID: "pc-01", At: utc(2026, 5, 28, 10, 0, 0, 0), Kind: "agent_started", Source: "agent:internal", Payload: json.RawMessage(`null`)}, ""},
		{"obs fields omitted (serde default)", `{"pc_id":"pc-01","at":"2026-05-28T10:00:00Z","kind":"boot","source":"winlog:System"}`,
			obs, wire.ObsEvent{PcID: "pc-01", At: utc(2026, 5, 28, 10, 0, 0, 0), Kind: "boot", Source: "winlog:System"},
			`{"pc_id":"pc-01","at":"2026-05-28T10:00:00Z","kind":"boot","source":"winlog:System","event_record_id":null,"payload":null}`},

		// An emit job's NDJSON line: upstream's agent reads it into an
		// ObsEvent (payload a serde_json::Value, whose Map is a BTreeMap)
		// and writes it again (kanade-agent commands.rs forward_obs_events):
		// payload keys sorted, numbers and escapes in serde_json's form, at
		// in UTC with chrono's fraction.
		{"obs emit line rewritten as serde_json::Value",
			`{"pc_id":"ignored","at":"2026-05-28T19:41:00.5+09:00","kind":"app_sample","source":"script:apps",` +
				`"event_record_id":"a-1","payload":{"user":"CORP\\alice","foreground":{"app":"Teams.exe","title":"R\u0026D \/ <Q3>"},` +
				`"count":1E2,"big":18446744073709551616,"neg":-0,"ratio":0.50,"dup":1,"dup":2,"ctl":"\u0001\u007f\u2028","list":[3,"two",null,true]}}`,
			obs, wire.ObsEvent{PcID: "ignored", At: time.Date(2026, 5, 28, 19, 41, 0, 500_000_000, time.FixedZone("", 9*3600)), Kind: "app_sample",
				Source: "script:apps", EventRecordID: "a-1",
				Payload: json.RawMessage(`{"user":"CORP\\alice","foreground":{"app":"Teams.exe","title":"R\u0026D \/ <Q3>"},` +
					`"count":1E2,"big":18446744073709551616,"neg":-0,"ratio":0.50,"dup":1,"dup":2,"ctl":"\u0001\u007f\u2028","list":[3,"two",null,true]}`)},
			`{"pc_id":"ignored","at":"2026-05-28T10:41:00.500Z","kind":"app_sample","source":"script:apps","event_record_id":"a-1",` +
				`"payload":{"big":1.8446744073709552e19,"count":100.0,"ctl":"\u0001` + "\x7f\u2028" + `","dup":2,` +
				`"foreground":{"app":"Teams.exe","title":"R&D / <Q3>"},"list":[3,"two",null,true],"neg":0,"ratio":0.5,"user":"CORP\\alice"}}`},

		// Heartbeat (heartbeat.rs): every Option skipped when None,
		// quarantined_versions when empty. Ours: command_protocols, outbox.
		{"heartbeat", `{"pc_id":"pc-01","at":"2026-05-16T00:00:00Z","agent_version":"0.12.0","hostname":"PC-01","os_family":"windows",` +
			`"agent_cpu_pct":0.3,"agent_rss_bytes":45000000,"agent_disk_read_bytes":1048576,"agent_disk_written_bytes":524288,` +
			`"quarantined_versions":["0.43.51"],"last_logon_user":"EXAMPLE\\taro","last_logon_display_name":"Yamada Taro",` +
			`"command_keys":["backend-20260728:75b4c8f44e18012d"],"enforcing":false}`,
			hb, wire.Heartbeat{PcID: "pc-01", At: utc(2026, 5, 16, 0, 0, 0, 0), AgentVersion: "0.12.0", Hostname: "PC-01", OSFamily: wire.OSWindows,
				AgentCPUPct: ptr(0.3), AgentRSSBytes: 45000000, AgentDiskReadBytes: ptr(uint64(1048576)), AgentDiskWrittenBytes: ptr(uint64(524288)),
				QuarantinedVersions: []string{"0.43.51"}, LastLogonUser: `EXAMPLE\taro`, LastLogonDisplayName: "Yamada Taro",
				CommandKeys: []string{"backend-20260728:75b4c8f44e18012d"}}, ""},
		{"heartbeat first tick on macOS", `{"pc_id":"mac-01","at":"2026-05-16T00:00:00Z","agent_version":"0.45.1","hostname":"mac-01",` +
			`"os_family":"macos","agent_rss_bytes":1,"command_keys":[],"enforcing":true}`,
			hb, wire.Heartbeat{PcID: "mac-01", At: utc(2026, 5, 16, 0, 0, 0, 0), AgentVersion: "0.45.1", Hostname: "mac-01",
				OSFamily: wire.OSFamily("darwin"), AgentRSSBytes: 1, CommandKeys: []string{}, Enforcing: true}, ""},
		{"heartbeat whole-number cpu", `{"pc_id":"p","at":"2026-05-16T00:00:00Z","agent_version":"1","agent_cpu_pct":100.0,"command_keys":[],"enforcing":false}`,
			hb, wire.Heartbeat{PcID: "p", At: utc(2026, 5, 16, 0, 0, 0, 0), AgentVersion: "1", AgentCPUPct: ptr(100.0), CommandKeys: []string{}}, ""},
		{"heartbeat pre-v0.37", `{"pc_id":"x","at":"2026-05-16T00:00:00Z","agent_version":"0.11.5"}`,
			hb, wire.Heartbeat{PcID: "x", At: utc(2026, 5, 16, 0, 0, 0, 0), AgentVersion: "0.11.5"},
			// This agent always reports its keyring and enforcement.
			`{"pc_id":"x","at":"2026-05-16T00:00:00Z","agent_version":"0.11.5","command_keys":[],"enforcing":false}`},

		// HostPerf (host_perf.rs): all figures are Option upstream; this
		// agent always sends them all.
		{"host perf", `{"pc_id":"minipc","at":"2026-05-24T00:00:00Z","cpu_pct":12.5,"cpu_count":8,"mem_used_bytes":8000000000,` +
			`"mem_total_bytes":16000000000,"swap_used_bytes":0,"swap_total_bytes":4000000000,"disk_read_bytes_per_sec":1048576.0,` +
			`"disk_written_bytes_per_sec":524288.0,"net_rx_bytes_per_sec":2048.0,"net_tx_bytes_per_sec":1e16}`,
			perf, wire.HostPerf{PcID: "minipc", At: utc(2026, 5, 24, 0, 0, 0, 0), CPUPct: 12.5, CPUCount: 8, MemUsedBytes: 8000000000,
				MemTotalBytes: 16000000000, SwapTotalBytes: 4000000000, DiskReadBytesPerSec: 1048576, DiskWrittenBytesPerSec: 524288,
				NetRxBytesPerSec: 2048, NetTxBytesPerSec: 1e16}, ""},

		{"host perf first tick", `{"pc_id":"minipc","at":"2026-05-24T00:00:00Z","cpu_count":8,"mem_used_bytes":8000000000,` +
			`"mem_total_bytes":16000000000,"swap_used_bytes":0,"swap_total_bytes":4000000000}`,
			perf, wire.HostPerf{PcID: "minipc", At: utc(2026, 5, 24, 0, 0, 0, 0), CPUCount: 8, MemUsedBytes: 8000000000,
				MemTotalBytes: 16000000000, SwapTotalBytes: 4000000000},
			// Decoded figures are plain numbers: absent reads as 0.
			`{"pc_id":"minipc","at":"2026-05-24T00:00:00Z","cpu_pct":0.0,"cpu_count":8,"mem_used_bytes":8000000000,` +
				`"mem_total_bytes":16000000000,"swap_used_bytes":0,"swap_total_bytes":4000000000,"disk_read_bytes_per_sec":0.0,` +
				`"disk_written_bytes_per_sec":0.0,"net_rx_bytes_per_sec":0.0,"net_tx_bytes_per_sec":0.0}`},

		// ProcessPerf / ProcessSnapshot (process_perf.rs): processes always
		// written; the disk rates are Option, skipped when None; f64 with a
		// fraction.
		{"process perf", `{"pc_id":"minipc","at":"2026-05-24T01:00:00Z","processes":[` +
			`{"pid":4321,"name":"chrome.exe","cpu_pct":87.5,"rss_bytes":2000000000,"disk_read_bytes_per_sec":1048576.0,"disk_written_bytes_per_sec":0.0},` +
			`{"pid":100,"name":"systemd","cpu_pct":0.1,"rss_bytes":50000000}]}`,
			upstreamDecoder(wire.DecodeProcessPerf), wire.ProcessPerf{PcID: "minipc", At: utc(2026, 5, 24, 1, 0, 0, 0), Processes: []wire.ProcessSnapshot{
				{PID: 4321, Name: "chrome.exe", CPUPct: 87.5, RSSBytes: 2000000000, DiskReadBytesPerSec: ptr(1048576.0), DiskWrittenBytesPerSec: ptr(0.0)},
				{PID: 100, Name: "systemd", CPUPct: 0.1, RSSBytes: 50000000},
			}}, ""},
		{"process perf none", `{"pc_id":"minipc","at":"2026-05-24T01:00:00.250Z","processes":[]}`,
			upstreamDecoder(wire.DecodeProcessPerf), wire.ProcessPerf{PcID: "minipc", At: utc(2026, 5, 24, 1, 0, 0, 250_000_000), Processes: []wire.ProcessSnapshot{}}, ""},

		// ConfigScope (agent_config.rs): every field skipped when None.
		// Ours: inventory_interval.
		{"config scope", `{"target_version":"0.3.0","heartbeat_interval":"15s"}`,
			scope, wire.ConfigScope{TargetVersion: ptr("0.3.0"), HeartbeatInterval: ptr("15s")}, ""},
		{"config scope every field", `{"max_local_concurrent":4,"target_version":"1.2.3","target_version_jitter":"0s",` +
			`"heartbeat_interval":"1m 30s","host_perf_interval":"2min","process_perf_enabled":true,"process_perf_expires_at":"2026-05-24T15:30:00Z",` +
			`"process_perf_top_n":20,"client_display_name":"端末管理支援ツール"}`,
			scope, wire.ConfigScope{MaxLocalConcurrent: ptr(4), TargetVersion: ptr("1.2.3"), TargetVersionJitter: ptr("0s"),
				HeartbeatInterval: ptr("1m 30s"), HostPerfInterval: ptr("2min"), ProcessPerfEnabled: ptr(true),
				ProcessPerfExpiresAt: ptr(utc(2026, 5, 24, 15, 30, 0, 0)), ProcessPerfTopN: ptr(uint32(20)), ClientDisplayName: ptr("端末管理支援ツール")}, ""},
		{"config scope empty", `{}`, scope, wire.ConfigScope{}, ""},
		{"config scope nulls and unknown fields", `{"target_version":"0.3.0","heartbeat_interval":null,"future_knob":"future_value"}`,
			scope, wire.ConfigScope{TargetVersion: ptr("0.3.0")}, `{"target_version":"0.3.0"}`},

		// AgentGroups (agent_groups.rs), LogsRequest (logs.rs).
		{"groups", `{"groups":["dept-eng","wave1"]}`, groups, wire.Groups{Groups: []string{"dept-eng", "wave1"}}, ""},
		{"groups empty", `{"groups":[]}`, groups, wire.Groups{Groups: []string{}}, ""},
		{"logs request", `{"tail_lines":100}`, logs, wire.LogsFetchRequest{TailLines: 100}, ""},
		{"logs request default", `{}`, logs, wire.LogsFetchRequest{TailLines: 500}, `{"tail_lines":500}`},

		// JobTailRequest / JobTailReply (jobtail.rs): every field always written.
		{"job tail request", `{"result_id":"abc-123"}`, upstreamDecoder(wire.DecodeJobTailRequest), wire.JobTailRequest{ResultID: "abc-123"}, ""},
		{"job tail request default", `{}`, upstreamDecoder(wire.DecodeJobTailRequest), wire.JobTailRequest{}, `{"result_id":""}`},
		{"job tail reply", `{"found":true,"running":true,"stdout":"hello","stderr":"","stdout_truncated":true,"stderr_truncated":false}`,
			func(b []byte) (any, error) {
				var r wire.JobTailReply
				err := wire.Unmarshal(b, &r)
				return r, err
			}, wire.JobTailReply{Found: true, Running: true, Stdout: "hello", StdoutTruncated: true}, ""},

		// Keyring entries (the agent's KeyEntry): decoded only upstream.
		{"keyring", `[{"kid":"backend-20260728","public_key":"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=","label":"backend"},` +
			`{"kid":"break-glass","public_key":"PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=","max_age_secs":300,"audit_every_use":true}]`,
			keyring, []wire.KeyringEntry{
				{Kid: "backend-20260728", PublicKey: "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", Label: "backend"},
				{Kid: "break-glass", PublicKey: "PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=", MaxAgeSecs: 300, HasMaxAge: true, AuditEveryUse: true},
			}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.decode([]byte(tt.doc))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			diffFields(t, got, tt.want)
			b, err := wire.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.enc
			if want == "" {
				want = tt.doc
			}
			if string(b) != want {
				t.Errorf("encoding differs\n got: %s\nwant: %s", b, want)
			}
			// Our own encoding decodes and encodes to itself.
			again, err := tt.decode(b)
			if err != nil {
				t.Fatalf("decode own encoding: %v", err)
			}
			if b2, err := wire.Marshal(again); err != nil || string(b2) != string(b) {
				t.Errorf("re-encoding differs: %s, %v", b2, err)
			}
		})
	}
}

// diffFields fails t for each field (or element) where got and want differ.
func diffFields(t *testing.T, got, want any) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	if gv.Kind() == reflect.Struct && gv.Type() == wv.Type() {
		for i := 0; i < gv.NumField(); i++ {
			if g, w := gv.Field(i).Interface(), wv.Field(i).Interface(); !reflect.DeepEqual(g, w) {
				t.Errorf("field %s = %s, want %s", gv.Type().Field(i).Name, show(g), show(w))
			}
		}
		return
	}
	t.Errorf("decoded %s\nwant %s", show(got), show(want))
}

func show(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		v = rv.Elem().Interface()
	}
	if raw, ok := v.(json.RawMessage); ok {
		return string(raw)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
