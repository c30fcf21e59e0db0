package wire_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// TestChronoTimestamps checks that every timestamp the package encodes is
// written as upstream's chrono writes a DateTime<Utc> (chrono
// src/datetime/serde.rs: write_rfc3339 with SecondsFormat::AutoSi and
// use_z): in UTC with "Z" whatever the time's location, and with 0, 3, 6 or
// 9 fractional digits, never a trimmed count such as ".5" or ".12345678".
func TestChronoTimestamps(t *testing.T) {
	tokyo := time.FixedZone("JST", 9*3600)
	// 2026-05-16T09:00:05 JST is 2026-05-16T00:00:05Z.
	at := func(ns int) time.Time { return time.Date(2026, 5, 16, 9, 0, 5, ns, tokyo) }
	fractions := []struct {
		ns   int
		want string
	}{
		{0, "2026-05-16T00:00:05Z"},
		{500_000_000, "2026-05-16T00:00:05.500Z"},
		{120_000_000, "2026-05-16T00:00:05.120Z"},
		{1_000_000, "2026-05-16T00:00:05.001Z"},
		{123_400_000, "2026-05-16T00:00:05.123400Z"},
		{1_000, "2026-05-16T00:00:05.000001Z"},
		{123_456_780, "2026-05-16T00:00:05.123456780Z"},
		{1, "2026-05-16T00:00:05.000000001Z"},
	}
	for _, f := range fractions {
		ts := at(f.ns)
		q := `"` + f.want + `"`
		docs := []struct {
			name string
			v    any
			want string
		}{
			// result.rs ExecResult.
			{"exec result", wire.ExecResult{ResultID: "r", RequestID: "q", PcID: "p", StartedAt: ts, FinishedAt: ts},
				`{"result_id":"r","request_id":"q","pc_id":"p","exit_code":0,"stdout":"","stderr":"","started_at":` + q + `,"finished_at":` + q + `}`},
			// event.rs EventStarted (result_id, request_id ours).
			{"event started", wire.EventStarted{ExecID: "e", PcID: "p", StartedAt: ts, ManifestID: "m", Version: "1", ResultID: "r", RequestID: "q"},
				`{"exec_id":"e","pc_id":"p","started_at":` + q + `,"manifest_id":"m","version":"1","result_id":"r","request_id":"q"}`},
			// obs_event.rs ObsEvent.
			{"obs event", wire.ObsEvent{PcID: "p", At: ts, Kind: "boot", Source: "winlog:System"},
				`{"pc_id":"p","at":` + q + `,"kind":"boot","source":"winlog:System","event_record_id":null,"payload":null}`},
			// heartbeat.rs Heartbeat.
			{"heartbeat", wire.Heartbeat{PcID: "p", At: ts, AgentVersion: "1"},
				`{"pc_id":"p","at":` + q + `,"agent_version":"1","command_keys":[],"enforcing":false}`},
			// host_perf.rs HostPerf.
			{"host perf", wire.HostPerf{PcID: "p", At: ts, CPUCount: 2, RatesUnknown: true},
				`{"pc_id":"p","at":` + q + `,"cpu_count":2,"mem_used_bytes":0,"mem_total_bytes":0,"swap_used_bytes":0,"swap_total_bytes":0}`},
			// process_perf.rs ProcessPerf.
			{"process perf", wire.ProcessPerf{PcID: "p", At: ts},
				`{"pc_id":"p","at":` + q + `,"processes":[]}`},
			// command.rs Command.deadline_at.
			{"command deadline", wire.Command{ID: "j", Version: "1", RequestID: "q", Shell: "sh", Script: "true", TimeoutSecs: 1, DeadlineAt: &ts},
				`{"id":"j","version":"1","request_id":"q","exec_id":null,"shell":"sh","script":"true","timeout_secs":1,"jitter_secs":null,` +
					`"run_as":"system","deadline_at":` + q + `,"staleness":{"mode":"cached"}}`},
			// agent_config.rs ConfigScope.process_perf_expires_at.
			{"config scope", wire.ConfigScope{ProcessPerfEnabled: ptr(true), ProcessPerfExpiresAt: &ts},
				`{"process_perf_enabled":true,"process_perf_expires_at":` + q + `}`},
			// manifest.rs Schedule (flattened FanoutPlan.deadline_at).
			{"schedule deadline", wire.Schedule{ID: "s", When: wire.When{PerPc: &wire.PerPolicy{}}, JobID: "j", Target: wire.Target{All: true}, DeadlineAt: &ts, Enabled: true},
				`{"id":"s","when":{"per_pc":"once"},"job_id":"j","target":{"groups":[],"pcs":[],"all":true},"deadline_at":` + q +
					`,"tz":"local","runs_on":"backend","enabled":true}`},
			// Ours: InventoryReport, written the same way.
			{"inventory report", wire.InventoryReport{PcID: "p", At: ts, Category: "hw", Collector: "linux", Hash: "h", Data: map[string]any{}},
				`{"pc_id":"p","at":` + q + `,"category":"hw","collector":"linux","hash":"h","data":{}}`},
		}
		for _, d := range docs {
			t.Run(d.name+" "+f.want, func(t *testing.T) {
				b, err := wire.Marshal(d.v)
				if err != nil {
					t.Fatal(err)
				}
				if string(b) != d.want {
					t.Errorf("encoding differs\n got: %s\nwant: %s", b, d.want)
				}
				// json.Marshal (a caller that does not use wire.Marshal) writes the same timestamp.
				if b, err := json.Marshal(d.v); err != nil || !strings.Contains(string(b), q) {
					t.Errorf("json.Marshal: %s, %v; want %s in it", b, err, q)
				}
			})
		}
	}
}

// TestChronoTimestampsDecode checks that upstream's timestamps decode to
// the instant they name, whatever their fractional digits or offset (chrono
// writes Z; an RFC 3339 offset from another writer is accepted too).
func TestChronoTimestampsDecode(t *testing.T) {
	for doc, want := range map[string]time.Time{
		`"2026-05-16T00:00:05.500Z"`:         time.Date(2026, 5, 16, 0, 0, 5, 500_000_000, time.UTC),
		`"2026-05-16T00:00:05.123456780Z"`:   time.Date(2026, 5, 16, 0, 0, 5, 123_456_780, time.UTC),
		`"2026-05-16T09:00:05.000001+09:00"`: time.Date(2026, 5, 16, 0, 0, 5, 1_000, time.UTC),
	} {
		r, err := wire.DecodeExecResult([]byte(`{"request_id":"q","pc_id":"p","exit_code":0,"stdout":"","stderr":"","started_at":` + doc + `,"finished_at":` + doc + `}`))
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if !r.StartedAt.Equal(want) || !r.FinishedAt.Equal(want) {
			t.Errorf("%s decoded as %v, %v; want %v", doc, r.StartedAt, r.FinishedAt, want)
		}
	}
}
