package wire_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// Commands as a backend sends them: every field of docs/protocol.md.
const (
	commandFull = `{
		"id": "inventory-refresh",
		"version": "7",
		"request_id": "req-01JQ5W0Z",
		"exec_id": "exec-42",
		"shell": "powershell",
		"script": "Get-Date\r\nexit 3",
		"timeout_secs": 300,
		"jitter_secs": 30,
		"run_as": "system_gui",
		"cwd": "C:\\ProgramData\\kanade",
		"deadline_at": "2026-03-01T10:15:00.500Z",
		"staleness": {"mode": "strict", "max_cache_age": "10m"},
		"emit": {"type": "events"},
		"retry": {"max": 2, "backoff_secs": 15},
		"bypass_local_limit": true
	}`
	commandObject = `{
		"id": "big-script",
		"version": "v2",
		"request_id": "req-2",
		"shell": "sh",
		"script": "",
		"script_object": "big-script/v2",
		"script_object_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		"timeout_secs": 60,
		"run_as": "user",
		"staleness": {"mode": "unchecked"}
	}`
	// commandObjectUpstream is commandObject as upstream's serde encodes it.
	commandObjectUpstream = `{"id":"big-script","version":"v2","request_id":"req-2","exec_id":null,"shell":"sh","script":"",` +
		`"script_object":"big-script/v2","script_object_sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",` +
		`"timeout_secs":60,"jitter_secs":null,"run_as":"user","staleness":{"mode":"unchecked"}}`
	commandMinimal = `{
		"id": "adhoc-run",
		"version": "",
		"request_id": "r1",
		"shell": "sh",
		"script": "echo hi",
		"timeout_secs": 0
	}`
)

// commandOptional are the keys Command omits when empty (upstream's
// skip_serializing_if fields); exec_id and jitter_secs are sent as null,
// run_as and staleness always.
var commandOptional = []string{
	"script_object", "script_object_sha256", "cwd", "deadline_at", "emit", "check", "collect", "retry", "finalize", "bypass_local_limit",
}

func TestCommandRoundTrip(t *testing.T) {
	deadline := time.Date(2026, 3, 1, 10, 15, 0, 500_000_000, time.UTC)
	tests := []struct {
		name     string
		doc      string
		want     wire.Command
		wantJSON string // empty: doc
	}{
		{
			name: "every field",
			doc:  commandFull,
			want: wire.Command{
				ID: "inventory-refresh", Version: "7", RequestID: "req-01JQ5W0Z", ExecID: "exec-42",
				Shell: wire.ShellPowerShell, Script: "Get-Date\r\nexit 3", TimeoutSecs: 300, JitterSecs: 30,
				RunAs: wire.RunAsSystemGUI, Cwd: `C:\ProgramData\kanade`, DeadlineAt: &deadline,
				Staleness:        &wire.Staleness{Mode: wire.StalenessStrict, MaxCacheAge: "10m"},
				Emit:             &wire.Emit{Type: wire.EmitEvents},
				Retry:            &wire.Retry{Max: 2, BackoffSecs: 15},
				BypassLocalLimit: true,
			},
		},
		{
			name: "script object",
			doc:  commandObject,
			want: wire.Command{
				ID: "big-script", Version: "v2", RequestID: "req-2", Shell: wire.ShellSh,
				ScriptObject:       "big-script/v2",
				ScriptObjectSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
				TimeoutSecs:        60, RunAs: wire.RunAsUser,
				Staleness: &wire.Staleness{Mode: wire.StalenessUnchecked},
			},
			wantJSON: commandObjectUpstream,
		},
		{
			name: "minimal",
			doc:  commandMinimal,
			want: wire.Command{ID: wire.AdhocID, RequestID: "r1", Shell: "sh", Script: "echo hi"},
			wantJSON: `{"id":"adhoc-run","version":"","request_id":"r1","exec_id":null,"shell":"sh","script":"echo hi",` +
				`"timeout_secs":0,"jitter_secs":null,"run_as":"system","staleness":{"mode":"cached"}}`,
		},
		{
			name: "job_id alias",
			doc:  `{"id":"j","version":"1","request_id":"r","job_id":"exec-9","shell":"cmd","script":"dir","timeout_secs":5}`,
			want: wire.Command{ID: "j", Version: "1", RequestID: "r", ExecID: "exec-9", Shell: "cmd", Script: "dir", TimeoutSecs: 5},
			// Encoded under its canonical name.
			wantJSON: `{"id":"j","version":"1","request_id":"r","exec_id":"exec-9","shell":"cmd","script":"dir","timeout_secs":5,` +
				`"jitter_secs":null,"run_as":"system","staleness":{"mode":"cached"}}`,
		},
		{
			name: "unknown fields tolerated",
			doc: `{"id":"j","version":"1","request_id":"r","shell":"sh","script":"true","timeout_secs":1,
				"new_top_level":{"a":[1,2]},"priority":9,"staleness":{"mode":"cached","future":true},"retry":{"max":1,"backoff_secs":2,"jitter":true}}`,
			want: wire.Command{ID: "j", Version: "1", RequestID: "r", Shell: "sh", Script: "true", TimeoutSecs: 1,
				Staleness: &wire.Staleness{Mode: wire.StalenessCached}, Retry: &wire.Retry{Max: 1, BackoffSecs: 2}},
			wantJSON: `{"id":"j","version":"1","request_id":"r","exec_id":null,"shell":"sh","script":"true","timeout_secs":1,
				"jitter_secs":null,"run_as":"system","staleness":{"mode":"cached"},"retry":{"max":1,"backoff_secs":2}}`,
		},
		{
			name: "nulls for optional fields",
			doc: `{"id":"j","version":"1","request_id":"r","exec_id":null,"shell":"sh","script":"true","timeout_secs":1,
				"deadline_at":null,"staleness":null,"emit":null,"retry":null,"bypass_local_limit":false}`,
			want: wire.Command{ID: "j", Version: "1", RequestID: "r", Shell: "sh", Script: "true", TimeoutSecs: 1},
			wantJSON: `{"id":"j","version":"1","request_id":"r","exec_id":null,"shell":"sh","script":"true","timeout_secs":1,
				"jitter_secs":null,"run_as":"system","staleness":{"mode":"cached"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roundTrip(t, tt.doc, wire.DecodeCommand, &tt.want, tt.wantJSON)
		})
	}
}

func TestCommandOmitsEmptyOptionalFields(t *testing.T) {
	b, err := json.Marshal(wire.Command{ID: "j", RequestID: "r", Shell: "sh", Script: "true"})
	if err != nil {
		t.Fatal(err)
	}
	checkKeys(t, b, []string{"id", "version", "request_id", "exec_id", "shell", "script", "timeout_secs", "jitter_secs", "run_as", "staleness"}, commandOptional)

	// And every optional field is sent when set.
	c, err := wire.DecodeCommand([]byte(commandFull))
	if err != nil {
		t.Fatal(err)
	}
	c.Script, c.ScriptObject, c.ScriptObjectSHA256 = "", "a/b", strings.Repeat("0", 64)
	c.Check, c.Collect, c.Finalize = &wire.CheckHint{Name: "c"}, &wire.CollectHint{Name: "c"}, &wire.FinalizeCommand{Shell: "sh"}
	b, err = json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	checkKeys(t, b, commandOptional, nil)
}

func TestCommandDeadlineOffset(t *testing.T) {
	c, err := wire.DecodeCommand([]byte(`{"id":"j","version":"1","request_id":"r","shell":"sh","script":"true","timeout_secs":1,"deadline_at":"2026-03-01T19:15:00+09:00"}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 3, 1, 10, 15, 0, 0, time.UTC); c.DeadlineAt == nil || !c.DeadlineAt.Equal(want) {
		t.Errorf("DeadlineAt = %v, want %v", c.DeadlineAt, want)
	}
}

func TestCommandDefaults(t *testing.T) {
	tests := []struct {
		name        string
		c           wire.Command
		timeout     time.Duration
		mode, runAs string
	}{
		{"zero", wire.Command{}, time.Second, wire.StalenessCached, wire.RunAsSystem},
		{"negative timeout", wire.Command{TimeoutSecs: -5}, time.Second, wire.StalenessCached, wire.RunAsSystem},
		{"set", wire.Command{TimeoutSecs: 90, RunAs: wire.RunAsUser, Staleness: &wire.Staleness{Mode: wire.StalenessStrict}},
			90 * time.Second, wire.StalenessStrict, wire.RunAsUser},
		{"empty staleness mode", wire.Command{Staleness: &wire.Staleness{}}, time.Second, wire.StalenessCached, wire.RunAsSystem},
		{"huge timeout saturates", wire.Command{TimeoutSecs: 1 << 62}, time.Duration(1<<63-1) / time.Second * time.Second,
			wire.StalenessCached, wire.RunAsSystem},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.EffectiveTimeout(); got != tt.timeout {
				t.Errorf("EffectiveTimeout() = %v, want %v", got, tt.timeout)
			}
			if got := tt.c.StalenessMode(); got != tt.mode {
				t.Errorf("StalenessMode() = %q, want %q", got, tt.mode)
			}
			if got := tt.c.EffectiveRunAs(); got != tt.runAs {
				t.Errorf("EffectiveRunAs() = %q, want %q", got, tt.runAs)
			}
		})
	}
}

func TestStalenessMaxAge(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"10m", 10 * time.Minute, true},
		{" 90s ", 90 * time.Second, true},
		{"1h30m", 90 * time.Minute, true},
		{"1h 30m", 90 * time.Minute, true},
		{"5min", 5 * time.Minute, true},
		{"2days", 48 * time.Hour, true},
		{"0s", 0, true},
		{"", 0, false},
		{"-5m", 0, false},
		{"10", 0, false},
		{"ten minutes", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := (&wire.Staleness{Mode: wire.StalenessStrict, MaxCacheAge: tt.in}).MaxAge()
			if tt.ok {
				if err != nil || got != tt.want {
					t.Errorf("MaxAge() = %v, %v; want %v, nil", got, err, tt.want)
				}
				return
			}
			checkInvalid(t, err, "max_cache_age")
			if got != 0 {
				t.Errorf("MaxAge() = %v with an error, want 0 (fail closed)", got)
			}
		})
	}
}

func TestDecodeCommandInvalid(t *testing.T) {
	// base is a valid command; each case replaces or adds fields.
	const base = `"id":"j","version":"1","timeout_secs":1`
	sha := strings.Repeat("ab", 32)
	tests := []struct {
		name    string
		doc     string
		mention []string // substrings the error must hold
	}{
		{"empty input", ``, []string{"command", "malformed JSON"}},
		{"bad JSON", `{"id":"j",}`, []string{"command", "malformed JSON"}},
		{"truncated JSON", `{"id":"j","request_id":"r"`, []string{"command"}},
		{"trailing garbage", `{"id":"j","request_id":"r","shell":"sh","script":"x"} x`, []string{"command", "malformed JSON"}},
		{"not an object", `[1,2,3]`, []string{"command: array value where a JSON object expected"}},
		{"string", `"hello"`, []string{"command"}},
		{"null", `null`, []string{"request_id is empty"}},
		{"timeout_secs string", `{"id":"j","version":"1","request_id":"r","shell":"sh","script":"x","timeout_secs":"30"}`, []string{`field "timeout_secs": string value where int64 expected`}},
		{"timeout_secs fraction", `{"id":"j","version":"1","request_id":"r","shell":"sh","script":"x","timeout_secs":1.5}`, []string{"timeout_secs"}},
		{"timeout_secs twice", `{` + base + `,"request_id":"r","shell":"sh","script":"x","timeout_secs":30}`, []string{`duplicate field "timeout_secs"`}},
		{"request_id number", `{` + base + `,"request_id":42,"shell":"sh","script":"x"}`, []string{"request_id", "number"}},
		{"staleness string", `{` + base + `,"request_id":"r","shell":"sh","script":"x","staleness":"strict"}`, []string{"staleness", "string"}},
		{"retry max string", `{` + base + `,"request_id":"r","shell":"sh","script":"x","retry":{"max":"3"}}`, []string{`field "retry.max": string value`}},
		{"bypass string", `{` + base + `,"request_id":"r","shell":"sh","script":"x","bypass_local_limit":"yes"}`, []string{"bypass_local_limit"}},
		{"job_id number", `{` + base + `,"request_id":"r","job_id":7,"shell":"sh","script":"x"}`, []string{"job_id"}},
		{"deadline not RFC 3339", `{` + base + `,"request_id":"r","shell":"sh","script":"x","deadline_at":"March 1st"}`, []string{"command", "March 1st"}},
		{"deadline number", `{` + base + `,"request_id":"r","shell":"sh","script":"x","deadline_at":1772360100}`, []string{"command"}},
		{"empty request_id", `{` + base + `,"request_id":"","shell":"sh","script":"x"}`, []string{"request_id is empty"}},
		{"missing request_id", `{` + base + `,"shell":"sh","script":"x"}`, []string{"request_id is empty"}},
		{"no shell", `{` + base + `,"request_id":"r","script":"x"}`, []string{"shell is empty"}},
		{"neither script nor object", `{` + base + `,"request_id":"r","shell":"sh"}`, []string{"neither script nor script_object"}},
		{"object without sha256", `{` + base + `,"request_id":"r","shell":"sh","script_object":"a/1"}`, []string{"script_object without script_object_sha256"}},
		{"sha256 upper case", `{` + base + `,"request_id":"r","shell":"sh","script_object":"a/1","script_object_sha256":"` + strings.ToUpper(sha) + `"}`,
			[]string{"script_object_sha256"}},
		{"sha256 short", `{` + base + `,"request_id":"r","shell":"sh","script_object":"a/1","script_object_sha256":"` + sha[:63] + `"}`,
			[]string{"script_object_sha256"}},
		{"sha256 long", `{` + base + `,"request_id":"r","shell":"sh","script_object":"a/1","script_object_sha256":"` + sha + `0"}`,
			[]string{"script_object_sha256"}},
		{"sha256 not hex", `{` + base + `,"request_id":"r","shell":"sh","script_object":"a/1","script_object_sha256":"` + strings.Repeat("g", 64) + `"}`,
			[]string{"script_object_sha256"}},
		{"bad run_as", `{` + base + `,"request_id":"r","shell":"sh","script":"x","run_as":"root"}`, []string{"run_as", `"root"`}},
		{"run_as wrong case", `{` + base + `,"request_id":"r","shell":"sh","script":"x","run_as":"SYSTEM"}`, []string{"run_as"}},
		{"bad staleness mode", `{` + base + `,"request_id":"r","shell":"sh","script":"x","staleness":{"mode":"fresh"}}`, []string{"staleness mode", `"fresh"`}},
		{"strict without max_cache_age", `{` + base + `,"request_id":"r","shell":"sh","script":"x","staleness":{"mode":"strict"}}`, []string{"max_cache_age"}},
		{"strict with null max_cache_age", `{` + base + `,"request_id":"r","shell":"sh","script":"x","staleness":{"mode":"strict","max_cache_age":null}}`,
			[]string{"max_cache_age"}},
		{"staleness without mode", `{` + base + `,"request_id":"r","shell":"sh","script":"x","staleness":{}}`, []string{"mode"}},
		{"exec_id and job_id", `{` + base + `,"request_id":"r","job_id":"a","exec_id":"b","shell":"sh","script":"x"}`, []string{"duplicate", "exec_id"}},
		{"bad emit type", `{` + base + `,"request_id":"r","shell":"sh","script":"x","emit":{"type":"lines"}}`, []string{"emit type", `"lines"`}},
		{"empty emit type", `{` + base + `,"request_id":"r","shell":"sh","script":"x","emit":{}}`, []string{"emit type"}},
		{"negative retry max", `{` + base + `,"request_id":"r","shell":"sh","script":"x","retry":{"max":-1,"backoff_secs":1}}`, []string{"retry"}},
		{"negative retry backoff", `{` + base + `,"request_id":"r","shell":"sh","script":"x","retry":{"max":1,"backoff_secs":-1}}`, []string{"retry"}},
		{"negative timeout", `{"id":"j","version":"1","request_id":"r","shell":"sh","script":"x","timeout_secs":-1}`, []string{"timeout_secs"}},
		{"negative jitter", `{` + base + `,"request_id":"r","shell":"sh","script":"x","jitter_secs":-1}`, []string{"jitter_secs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := wire.DecodeCommand([]byte(tt.doc))
			if c != nil {
				t.Errorf("DecodeCommand returned %+v with the error", c)
			}
			checkInvalid(t, err, tt.mention...)
		})
	}
}

// TestCommandValidate checks Validate directly, for commands built in Go.
func TestCommandValidate(t *testing.T) {
	ok := wire.Command{ID: "j", RequestID: "r", Shell: "sh", Script: "true"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid command: %v", err)
	}
	// The shell's support on this OS is not Validate's business (exit 122).
	other := ok
	other.Shell = "zsh"
	if err := other.Validate(); err != nil {
		t.Errorf("unknown shell: %v, want nil (exit 122 is the agent's decision)", err)
	}
	for _, mode := range []string{"", wire.StalenessCached, wire.StalenessUnchecked} {
		c := ok
		c.Staleness = &wire.Staleness{Mode: mode}
		if err := c.Validate(); err != nil {
			t.Errorf("staleness mode %q: %v", mode, err)
		}
	}
	c := ok
	c.Retry = &wire.Retry{}
	if err := c.Validate(); err != nil {
		t.Errorf("zero retry: %v", err)
	}
}
