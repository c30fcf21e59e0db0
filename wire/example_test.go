package wire_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// Decode a command as it arrives on commands.pc.<pc_id>, validate it, and
// read its effective settings.
func ExampleDecodeCommand() {
	msg := []byte(`{
		"id": "disk-cleanup", "version": "3", "request_id": "req-7f3a",
		"job_id": "exec-19", "shell": "powershell", "script": "cleanmgr /sagerun:1",
		"timeout_secs": 0, "staleness": {"mode": "strict", "max_cache_age": "10m"},
		"retry": {"max": 2, "backoff_secs": 30}, "some_future_field": true
	}`)
	cmd, err := wire.DecodeCommand(msg)
	if err != nil {
		fmt.Println("refused:", err)
		return
	}
	maxAge, _ := cmd.Staleness.MaxAge()
	fmt.Println(cmd.RequestID, cmd.ExecID, cmd.Shell)
	fmt.Println(cmd.EffectiveTimeout(), cmd.EffectiveRunAs(), cmd.StalenessMode(), maxAge)
	fmt.Println("retries:", cmd.Retry.Max)

	_, err = wire.DecodeCommand([]byte(`{"request_id": "req-8", "shell": "sh"}`))
	fmt.Println(errors.Is(err, wire.ErrInvalid), err)
	// Output:
	// req-7f3a exec-19 powershell
	// 1s system strict 10m0s
	// retries: 2
	// true wire: invalid: neither script nor script_object is set
}

// Build the result of a run and encode it for results.<request_id>.
func ExampleExecResult() {
	started := time.Date(2026, 3, 1, 10, 15, 0, 0, time.UTC)
	res := wire.ExecResult{
		ResultID:   "0f8fad5b-d9cb-469f-a165-70867728950e",
		RequestID:  "req-7f3a",
		ExecID:     "exec-19",
		PcID:       "desktop-01",
		ExitCode:   wire.ExitKilled,
		Stdout:     "cleaning...\n",
		Stderr:     "timeout after 1s",
		StartedAt:  started,
		FinishedAt: started.Add(time.Second),
		ManifestID: "cleanup-temp",
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b))
	// Output:
	// {
	//   "result_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
	//   "request_id": "req-7f3a",
	//   "exec_id": "exec-19",
	//   "pc_id": "desktop-01",
	//   "exit_code": -1,
	//   "stdout": "cleaning...\n",
	//   "stderr": "timeout after 1s",
	//   "started_at": "2026-03-01T10:15:00Z",
	//   "finished_at": "2026-03-01T10:15:01Z",
	//   "manifest_id": "cleanup-temp"
	// }
}

// Merge configuration scopes into the effective configuration.
func ExampleConfig_Apply() {
	global, _ := wire.DecodeConfigScope([]byte(`{"heartbeat_interval": "1m 30s", "max_local_concurrent": 2}`))
	group, _ := wire.DecodeConfigScope([]byte(`{"host_perf_interval": "often", "target_version": "1.5.0"}`))

	cfg := wire.DefaultConfig(8)
	for _, s := range []*wire.ConfigScope{global, group} {
		var problems []error
		cfg, problems = cfg.Apply(s)
		for _, p := range problems {
			fmt.Println("ignored:", p)
		}
	}
	fmt.Println(cfg.MaxLocalConcurrent, cfg.HeartbeatInterval, cfg.TargetVersion, cfg.HostPerfInterval)
	// Output:
	// ignored: wire: invalid: host_perf_interval "often" is not a duration (expected number at 0); using the default 1m
	// 2 1m30s 1.5.0 1m0s
}

func ExampleParseDuration() {
	for _, s := range []string{"0s", "5min", "1h 30m", "2days", "1.5h", "30"} {
		d, err := wire.ParseDuration(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(s, "=", d, "=", wire.FormatDuration(d))
	}
	// Output:
	// 0s = 0s = 0s
	// 5min = 5m0s = 5m
	// 1h 30m = 1h30m0s = 1h 30m
	// 2days = 48h0m0s = 2days
	// 1.5h = 1h30m0s = 1h 30m
	// wire: invalid: duration "30": time unit needed, for example 30sec or 30ms
}

// Keys match fields only in their exact case, and a field given twice is
// refused, as upstream's serde decoding does.
func ExampleDecodeCommand_strict() {
	c, _ := wire.DecodeCommand([]byte(`{"id":"j","version":"1","request_id":"r","shell":"sh",
		"script":"echo safe","SCRIPT":"echo other","timeout_secs":5}`))
	fmt.Println(c.Script)
	_, err := wire.DecodeCommand([]byte(`{"id":"j","version":"1","request_id":"r","shell":"sh",
		"script":"echo safe","script":"echo other","timeout_secs":5}`))
	fmt.Println(err)
	// Output:
	// echo safe
	// wire: invalid: command: duplicate field "script"
}

// FencedPayload picks a hint's JSON out of a job's stdout, as the agent
// does for check and collect jobs.
func ExampleFencedPayload() {
	stdout := "scanning...\n#KANADE-CHECK-BEGIN\n{\"status\":\"warn\",\"detail\":\"C: 91% full\"}\n#KANADE-CHECK-END\ndone\n"
	fmt.Println(wire.FencedPayload(stdout, wire.CheckBlockBegin, wire.CheckBlockEnd))
	n, _ := wire.ParseSize("50MB")
	fmt.Println(n)
	// Output:
	// {"status":"warn","detail":"C: 91% full"}
	// 50000000
}
