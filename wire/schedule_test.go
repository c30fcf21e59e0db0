package wire_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// Documents exactly as upstream's serde_json writes them (from the Rust
// definitions in kanade-shared's manifest.rs: field order, flattened fan-out
// plan, skip_serializing_if omissions, Option fields without skip as null).
const (
	upstreamScheduleFull = `{"id":"offline-inv","when":{"per_pc":{"every":"1h"}},"job_id":"inventory-hw",` +
		`"target":{"groups":["canary"],"pcs":["pc-01"],"all":false},"jitter":"30s",` +
		`"active":{"from":"2026-07-01","until":"2026-08-01T12:00:00+09:00"},` +
		`"constraints":{"window":"22:00-05:00","skip_dates":["2026-12-25"],"require":{"ac_power":true,"idle":"10m","cpu_below":20.0,"network":true}},` +
		`"on_failure":{"retry":{"max":3,"backoff":"10m"}},"tz":"utc","starting_deadline":"5m","runs_on":"agent","enabled":true,"tags":["weekly"]}`
	upstreamScheduleMinimal = `{"id":"kitting","when":{"per_pc":"once"},"job_id":"scheduled-echo",` +
		`"target":{"groups":[],"pcs":[],"all":true},"tz":"local","runs_on":"backend","enabled":true}`
	upstreamJobMinimal = `{"id":"echo-test","version":"0.0.1","description":null,` +
		`"execute":{"shell":"powershell","script":"echo 'kanade'","timeout":"30s","run_as":"system"},` +
		`"require_approval":false,"inventory":null,"emit":null,"check":null,"staleness":{"mode":"cached"}}`
	// manifest.rs Manifest: Execute writes bypass_local_limit first (when
	// true), FinalizeSpec always writes on_each_bundle.
	upstreamJobFull = `{"id":"collect-fin","version":"0.1.0","description":"diag","execute":{"bypass_local_limit":true,"shell":"powershell","script_object":"collect/0.1.0",` +
		`"timeout":"120s","run_as":"user","cwd":"C:\\temp"},"require_approval":true,"inventory":null,"emit":null,` +
		`"check":{"name":"bitlocker","status_field":"status","detail_field":"detail","fleet":true,"health":true},` +
		`"collect":{"name":"diag","max_size":"50MB","files_field":"files"},"staleness":{"mode":"strict","max_cache_age":"0s"},` +
		`"tags":["security"],"finalize":{"shell":"powershell","script":"Write-Output cleanup","timeout":"30s","run_as":"system","on_each_bundle":false}}`
)

func TestScheduleUpstreamRoundTrip(t *testing.T) {
	for _, doc := range []string{upstreamScheduleFull, upstreamScheduleMinimal} {
		s, err := wire.DecodeSchedule([]byte(doc))
		if err != nil {
			t.Fatalf("decode: %v\n%s", err, doc)
		}
		b, err := wire.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != doc {
			t.Errorf("round trip differs:\n got %s\nwant %s", b, doc)
		}
	}
	s, _ := wire.DecodeSchedule([]byte(upstreamScheduleFull))
	if s.When.PerPc == nil || s.When.PerPc.Every != "1h" || s.RunsOn != wire.RunsOnAgent || s.Tz != wire.TzUTC ||
		s.Constraints.Require.CPUBelow == nil || *s.Constraints.Require.CPUBelow != 20 || s.OnFailure.Retry.Max != 3 {
		t.Errorf("decoded %+v", s)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestScheduleWhenShapes(t *testing.T) {
	for _, tc := range []struct{ when, str string }{
		{`{"per_pc":"once"}`, "per_pc once"},
		{`{"per_pc":{"every":"6h"}}`, "per_pc every 6h"},
		{`{"per_target":{"every":"24h"}}`, "per_target every 24h"},
		{`{"calendar":{"at":"09:00","days":["mon-fri"]}}`, "at 09:00 [mon-fri]"},
		{`{"calendar":{"at":"2026-06-10 09:00"}}`, "at 2026-06-10 09:00"},
		{`{"on":["startup","logon"]}`, "on [startup,logon]"},
		{`{"on":["lock","unlock","network_change"]}`, "on [lock,unlock,network_change]"},
	} {
		doc := `{"id":"x","when":` + tc.when + `,"job_id":"y","target":{"groups":[],"pcs":[],"all":true},"tz":"local","runs_on":"agent","enabled":true}`
		s, err := wire.DecodeSchedule([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", tc.when, err)
		}
		if got := s.When.String(); got != tc.str {
			t.Errorf("%s: String %q, want %q", tc.when, got, tc.str)
		}
		b, _ := wire.Marshal(s)
		if string(b) != doc {
			t.Errorf("round trip:\n got %s\nwant %s", b, doc)
		}
	}
}

func TestScheduleDecodeErrors(t *testing.T) {
	base := func(when string) string {
		return `{"id":"x","when":` + when + `,"job_id":"y","target":{"all":true}}`
	}
	for _, doc := range []string{
		base(`{"per_pc":"onec"}`),                                            // typo'd once: serde rejects
		base(`{"per_pc":{"evry":"6h"}}`),                                     // every missing
		base(`{"per_galaxy":"once"}`),                                        // unknown variant
		base(`{"cron":"0 0 9 * * mon-fri"}`),                                 // retired raw cron
		base(`{"on":["shutdown"]}`),                                          // unknown trigger
		base(`{"per_pc":"once","on":["logon"]}`),                             // two variants
		base(`"per_pc"`),                                                     // not an object
		`{"id":"x","cron":"* * * * * *","job_id":"y","target":{"all":true}}`, // pre-#418 shape: missing when
		`{"id":"x","when":{"per_pc":"once"}}`,                                // missing job_id
		`{"id":"x","when":{"per_pc":"once"},"job_id":"y","tz":"jst"}`,
		`{"id":"x","when":{"per_pc":"once"},"job_id":"y","runs_on":"cloud"}`,
		`{"id":"x","id":"z","when":{"per_pc":"once"},"job_id":"y"}`, // duplicate field
		`{"id":"x","when":{"per_pc":"once"},"job_id":"y","target":{"all":true,"all":false}}`,
	} {
		_, err := wire.DecodeSchedule([]byte(doc))
		if !errors.Is(err, wire.ErrInvalid) {
			t.Errorf("%s: err %v, want ErrInvalid", doc, err)
		}
	}
}

func TestScheduleDefaultsAndUnknownFields(t *testing.T) {
	// No target (serde default: empty, matches nobody), no tz / runs_on /
	// enabled; an unknown field and a case-folded key are ignored (#492).
	s, err := wire.DecodeSchedule([]byte(`{"id":"x","when":{"per_pc":"once"},"job_id":"y","future":1,"ENABLED":false,"JOB_ID":"z"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Enabled || s.Tz != wire.TzLocal || s.RunsOn != wire.RunsOnBackend || s.JobID != "y" {
		t.Errorf("defaults: %+v", s)
	}
	if s.Target.Matches("pc", []string{"g"}) {
		t.Error("an empty target matched")
	}
	for _, tc := range []struct {
		t      wire.Target
		pc     string
		groups []string
		want   bool
	}{
		{wire.Target{All: true}, "any", nil, true},
		{wire.Target{Pcs: []string{"PC1"}}, "PC1", nil, true},
		{wire.Target{Pcs: []string{"PC1"}}, "pc1", nil, false},
		{wire.Target{Groups: []string{"g1"}}, "PC2", []string{"g2", "g1"}, true},
		{wire.Target{Groups: []string{"g1"}}, "PC2", []string{"g2"}, false},
	} {
		if got := tc.t.Matches(tc.pc, tc.groups); got != tc.want {
			t.Errorf("%+v.Matches(%s, %v) = %v", tc.t, tc.pc, tc.groups, got)
		}
	}
}

func TestScheduleValidate(t *testing.T) {
	mk := func(mut func(*wire.Schedule)) *wire.Schedule {
		s := &wire.Schedule{ID: "s", JobID: "j", When: wire.When{PerPc: &wire.PerPolicy{}}, Target: wire.Target{Groups: []string{"g"}},
			Tz: wire.TzUTC, RunsOn: wire.RunsOnAgent, Enabled: true}
		mut(s)
		return s
	}
	if err := mk(func(*wire.Schedule) {}).Validate(); err != nil {
		t.Fatalf("valid: %v", err)
	}
	// A backend schedule may name its targets by rollout waves alone.
	waves := mk(func(s *wire.Schedule) {
		s.RunsOn, s.Target, s.StartingDeadline = wire.RunsOnBackend, wire.Target{}, "1h"
		s.Rollout = json.RawMessage(`{"strategy":"wave","waves":[{"group":"canary","delay":"0s"},{"group":"all","delay":"30m"}]}`)
	})
	if err := waves.Validate(); err != nil {
		t.Errorf("rollout waves: %v", err)
	}
	one := uint32(1)
	for name, mut := range map[string]func(*wire.Schedule){
		"per_target on agent": func(s *wire.Schedule) { s.When = wire.When{PerTarget: &wire.PerPolicy{}} },
		"on on backend":       func(s *wire.Schedule) { s.When = wire.When{On: []string{"startup"}}; s.RunsOn = wire.RunsOnBackend },
		"empty on":            func(s *wire.Schedule) { s.When = wire.When{On: []string{}} },
		"bad every":           func(s *wire.Schedule) { s.When.PerPc.Every = "6x" },
		"bad at":              func(s *wire.Schedule) { s.When = wire.When{Calendar: &wire.CalendarSpec{At: "25:00"}} },
		"dated at with days": func(s *wire.Schedule) {
			s.When = wire.When{Calendar: &wire.CalendarSpec{At: "2026-06-10 09:00", Days: []string{"mon"}}}
		},
		"bad day": func(s *wire.Schedule) {
			s.When = wire.When{Calendar: &wire.CalendarSpec{At: "09:00", Days: []string{"funday"}}}
		},
		"bad nth": func(s *wire.Schedule) {
			s.When = wire.When{Calendar: &wire.CalendarSpec{At: "09:00", Days: []string{"tue#6"}}}
		},
		"bare L": func(s *wire.Schedule) {
			s.When = wire.When{Calendar: &wire.CalendarSpec{At: "09:00", Days: []string{"L"}}}
		},
		"bad jitter":   func(s *wire.Schedule) { s.Jitter = "5x" },
		"bad deadline": func(s *wire.Schedule) { s.StartingDeadline = "soon" },
		"inverted":     func(s *wire.Schedule) { s.Active = &wire.Active{From: "2026-08-01", Until: "2026-07-01"} },
		"bad window":   func(s *wire.Schedule) { s.Constraints = &wire.Constraints{Window: "22:00-22:00"} },
		"bad skip":     func(s *wire.Schedule) { s.Constraints = &wire.Constraints{SkipDates: []string{"2026/01/01"}} },
		"max on agent": func(s *wire.Schedule) { s.Constraints = &wire.Constraints{MaxConcurrent: &one} },
		"require on backend": func(s *wire.Schedule) {
			s.RunsOn = wire.RunsOnBackend
			s.Constraints = &wire.Constraints{Require: &wire.Require{ACPower: true}}
		},
		"retry backoff": func(s *wire.Schedule) {
			s.OnFailure = &wire.OnFailure{Retry: &wire.ScheduleRetry{Max: 3, Backoff: "500ms"}}
		},
		"retry max": func(s *wire.Schedule) {
			s.OnFailure = &wire.OnFailure{Retry: &wire.ScheduleRetry{Max: 11, Backoff: "1m"}}
		},
		// manifest.rs Schedule::validate #917: the fan-out plan.
		"no target on agent":   func(s *wire.Schedule) { s.Target = wire.Target{} },
		"no target on backend": func(s *wire.Schedule) { s.Target = wire.Target{}; s.RunsOn = wire.RunsOnBackend },
		"rollout on agent":     func(s *wire.Schedule) { s.Rollout = json.RawMessage(`{"waves":[{"group":"g","delay":"0s"}]}`) },
		"rollout no waves": func(s *wire.Schedule) {
			s.RunsOn = wire.RunsOnBackend
			s.Rollout = json.RawMessage(`{"strategy":"wave","waves":[]}`)
		},
		"rollout blank group": func(s *wire.Schedule) {
			s.RunsOn = wire.RunsOnBackend
			s.Rollout = json.RawMessage(`{"waves":[{"group":" ","delay":"0s"}]}`)
		},
		"rollout bad delay": func(s *wire.Schedule) {
			s.RunsOn = wire.RunsOnBackend
			s.Rollout = json.RawMessage(`{"waves":[{"group":"g","delay":"later"}]}`)
		},
		"wave past deadline": func(s *wire.Schedule) {
			s.RunsOn, s.StartingDeadline = wire.RunsOnBackend, "30m"
			s.Rollout = json.RawMessage(`{"waves":[{"group":"g","delay":"0s"},{"group":"h","delay":"30m"}]}`)
		},
		"deadline_at set": func(s *wire.Schedule) { at := time.Now(); s.DeadlineAt = &at },
	} {
		if err := mk(mut).Validate(); !errors.Is(err, wire.ErrInvalid) {
			t.Errorf("%s: Validate = %v, want ErrInvalid", name, err)
		}
	}
}

func TestCalendarParse(t *testing.T) {
	for _, at := range []string{"2026-06-10 09:00", "2026-06-10T09:00", "2026/06/10 09:00"} {
		p, err := (&wire.CalendarSpec{At: at}).Parse()
		if err != nil || p.Date.Format(time.DateOnly) != "2026-06-10" || p.Hour != 9 || p.Minute != 0 {
			t.Errorf("%s: %+v %v", at, p, err)
		}
	}
	for _, bad := range []string{"25:00", "09:60", "9", "noon", "2026-13-01 09:00"} {
		if _, err := (&wire.CalendarSpec{At: bad}).Parse(); err == nil || !strings.Contains(err.Error(), "when.at") {
			t.Errorf("%s: %v", bad, err)
		}
	}
	// 2026-06-09 is a Tuesday, the 2nd of June 2026.
	tue2 := time.Date(2026, 6, 9, 0, 0, 0, 0, time.UTC)
	lastFri := time.Date(2026, 6, 26, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		day  string
		date time.Time
		want bool
	}{
		{"tue#2", tue2, true}, {"tue#1", tue2, false}, {"TUE#2", tue2, true},
		{"friL", lastFri, true}, {"fril", lastFri.AddDate(0, 0, -7), false}, {"5L", lastFri, true},
		{"mon-fri", tue2, true}, {"sat-sun", tue2, false}, {"mon-7", tue2.AddDate(0, 0, 5), true}, {"2", tue2, true},
		{"*", tue2, true}, {"0", tue2.AddDate(0, 0, 5), true}, {"7", tue2.AddDate(0, 0, 5), true},
	} {
		p, err := (&wire.CalendarSpec{At: "09:00", Days: []string{tc.day}}).Parse()
		if err != nil {
			t.Fatalf("%s: %v", tc.day, err)
		}
		if got := p.Days[0].Matches(tc.date) || len(p.Days) > 1 && p.Days[1].Matches(tc.date); got != tc.want {
			t.Errorf("%s on %s: %v", tc.day, tc.date.Format("Mon 2006-01-02"), got)
		}
	}
	for _, bad := range []string{"funday", "mon-", "tue#0", "tue#x", "mon-fri#2", "L", "mon-friL", "8L", "*L", "fri L"} {
		if _, err := (&wire.CalendarSpec{At: "09:00", Days: []string{bad}}).Parse(); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestFreezeDecode(t *testing.T) {
	f, err := wire.DecodeFreeze([]byte(`{"until":"2027-01-05","reason":"INC-1234","tz":"utc"}`))
	if err != nil || f.Until != "2027-01-05" || f.Tz != wire.TzUTC {
		t.Fatalf("%+v %v", f, err)
	}
	b, _ := wire.Marshal(f)
	if string(b) != `{"until":"2027-01-05","reason":"INC-1234","tz":"utc"}` {
		t.Errorf("encode %s", b)
	}
	f, err = wire.DecodeFreeze([]byte(`{}`))
	if err != nil || f.Tz != wire.TzLocal {
		t.Errorf("empty freeze: %+v %v", f, err)
	}
	for _, bad := range []string{``, `not json`, `[]`, `{"tz":"mars"}`, `{"from":1}`, `{"from":"a","from":"b"}`} {
		if _, err := wire.DecodeFreeze([]byte(bad)); !errors.Is(err, wire.ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if err := (&wire.Freeze{From: "2027-01-05", Until: "2026-12-20", Tz: wire.TzUTC}).Validate(); err == nil {
		t.Error("inverted freeze validated")
	}
}

func TestJobUpstreamRoundTrip(t *testing.T) {
	for _, doc := range []string{upstreamJobMinimal, upstreamJobFull} {
		j, err := wire.DecodeJob([]byte(doc))
		if err != nil {
			t.Fatalf("decode: %v\n%s", err, doc)
		}
		b, err := wire.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != doc {
			t.Errorf("round trip differs:\n got %s\nwant %s", b, doc)
		}
	}
	j, _ := wire.DecodeJob([]byte(upstreamJobFull))
	if j.Execute.ScriptObject != "collect/0.1.0" || !j.Execute.BypassLocalLimit || j.Execute.RunAs != wire.RunAsUser || j.TimeoutSecs() != 120 ||
		j.Staleness.Mode != wire.StalenessStrict || j.Finalize.Timeout != "30s" {
		t.Errorf("decoded %+v", j)
	}
	f, err := j.LoweredFinalize()
	fin, _ := json.Marshal(f)
	if err != nil || string(fin) != `{"shell":"powershell","script":"Write-Output cleanup","timeout_secs":30,"run_as":"system","on_each_bundle":false}` {
		t.Errorf("lowered finalize %s %v", fin, err)
	}
	if err := j.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestJobDecode(t *testing.T) {
	// Defaults, unknown fields ignored, a bad timeout reads as 60 s.
	j, err := wire.DecodeJob([]byte(`{"id":"j","version":"1","execute":{"shell":"sh","script":"true","timeout":"soon","later":1},"aggregate2":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	if j.Execute.RunAs != wire.RunAsSystem || j.TimeoutSecs() != 60 {
		t.Errorf("%+v", j)
	}
	for _, doc := range []string{
		`{"version":"1","execute":{"shell":"sh","script":"x","timeout":"1s"}}`,
		`{"id":"j","execute":{"shell":"sh","script":"x","timeout":"1s"}}`,
		`{"id":"j","version":"1"}`,
		`{"id":"j","version":"1","execute":{"shell":"sh","script":"x"}}`,
		`{"id":"j","version":"1","execute":{"script":"x","timeout":"1s"}}`,
		`{"id":"j","version":"1","execute":{"shell":"bash","script":"x","timeout":"1s"}}`,
		`{"id":"j","version":"1","execute":{"shell":"sh","script":"x","timeout":"1s","run_as":"root"}}`,
		`{"id":"j","version":"1","execute":{"shell":"sh","script":"x","script":"y","timeout":"1s"}}`,
		`{"id":"j","version":"1","execute":{"shell":"sh","script":"x","timeout":"1s"},"emit":{"type":"lines"}}`,
		`{"id":"j","version":"1","execute":{"shell":"sh","script":"x","timeout":"1s"},"staleness":{"mode":"strict"}}`,
		`{"id":"j","version":"1","execute":{"shell":"sh","script":"x","timeout":1}}`,
	} {
		if _, err := wire.DecodeJob([]byte(doc)); !errors.Is(err, wire.ErrInvalid) {
			t.Errorf("%s: %v", doc, err)
		}
	}
	bad := &wire.Job{ID: "j", Version: "1", Execute: wire.JobExecute{Shell: "sh", Script: "x", ScriptObject: "o/1", Timeout: "1s"}}
	if err := bad.Validate(); err == nil {
		t.Error("two script sources validated")
	}
}

// TestJobValidateUpstreamRules checks Job.Validate against upstream's
// create-time checks (manifest.rs Manifest::validate and
// Execute::validate_script_source).
func TestJobValidateUpstreamRules(t *testing.T) {
	base := `"id":"j","version":"1",`
	good := []string{
		`{` + base + `"execute":{"shell":"powershell","script_object":"collect.v2/0.1.0-rc_1","timeout":"1s"}}`,
		`{` + base + `"execute":{"shell":"powershell","script":"x","timeout":"1s"},"tier":"controller"}`,
		`{` + base + `"execute":{"shell":"powershell","script":"x","timeout":"1s"},"collect":{"name":"c","max_size":"1GiB"},` +
			`"finalize":{"shell":"pwsh","script":"y","on_each_bundle":true}}`,
	}
	for _, doc := range good {
		j, err := wire.DecodeJob([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if err := j.Validate(); err != nil {
			t.Errorf("%s: %v", doc, err)
		}
	}
	bad := map[string]string{
		// A whitespace-only script is unset: no script source at all.
		"blank script":                  `{` + base + `"execute":{"shell":"sh","script":"  \n","timeout":"1s"}}`,
		"script_object without version": `{` + base + `"execute":{"shell":"sh","script_object":"collect","timeout":"1s"}}`,
		"script_object with a space":    `{` + base + `"execute":{"shell":"sh","script_object":"collect/0.1 ","timeout":"1s"}}`,
		"script_object three parts":     `{` + base + `"execute":{"shell":"sh","script_object":"a/b/c","timeout":"1s"}}`,
		"unknown tier":                  `{` + base + `"execute":{"shell":"sh","script":"x","timeout":"1s"},"tier":"controler"}`,
		"finalize sh":                   `{` + base + `"execute":{"shell":"sh","script":"x","timeout":"1s"},"finalize":{"shell":"sh","script":"y"}}`,
		"on_each_bundle without collect": `{` + base + `"execute":{"shell":"sh","script":"x","timeout":"1s"},` +
			`"finalize":{"shell":"pwsh","script":"y","on_each_bundle":true}}`,
		"collect bad max_size":      `{` + base + `"execute":{"shell":"sh","script":"x","timeout":"1s"},"collect":{"name":"c","max_size":"50 parsecs"}}`,
		"collect blank name":        `{` + base + `"execute":{"shell":"sh","script":"x","timeout":"1s"},"collect":{"name":" "}}`,
		"collect blank files_field": `{` + base + `"execute":{"shell":"sh","script":"x","timeout":"1s"},"collect":{"name":"c","files_field":""}}`,
	}
	for name, doc := range bad {
		j, err := wire.DecodeJob([]byte(doc))
		if err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
		if err := j.Validate(); !errors.Is(err, wire.ErrInvalid) {
			t.Errorf("%s: Validate = %v, want ErrInvalid", name, err)
		}
	}
	// A whitespace-only script beside a script_object is one source, as upstream.
	j := &wire.Job{ID: "j", Version: "1", Execute: wire.JobExecute{Shell: "sh", Script: " ", ScriptObject: "o/1", Timeout: "1s"}}
	if err := j.Validate(); err != nil {
		t.Errorf("blank script beside script_object: %v", err)
	}
}

// TestPerPolicyOncePerVersion checks upstream's third PerPolicy variant
// (manifest.rs PerPolicy::OncePerVersion, the bare string
// "once_per_version"): it decodes, encodes back to the same bytes, and
// Validate allows it only on per_pc with runs_on backend, as upstream's
// Schedule::validate.
func TestPerPolicyOncePerVersion(t *testing.T) {
	doc := `{"id":"redist","when":{"per_pc":"once_per_version"},"job_id":"install-app",` +
		`"target":{"groups":["all-pcs"],"pcs":[],"all":false},"tz":"local","runs_on":"backend","enabled":true}`
	s, err := wire.DecodeSchedule([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if p := s.When.PerPc; p == nil || !p.OncePerVersion || p.Once() || s.When.String() != "per_pc once_per_version" {
		t.Fatalf("decoded %+v (%s)", s.When.PerPc, s.When)
	}
	if b, err := wire.Marshal(s); err != nil || string(b) != doc {
		t.Errorf("encoding %s, %v\nwant     %s", b, err, doc)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	s.RunsOn = wire.RunsOnAgent
	if err := s.Validate(); !errors.Is(err, wire.ErrInvalid) {
		t.Errorf("runs_on agent: Validate = %v", err)
	}
	s.RunsOn, s.When = wire.RunsOnBackend, wire.When{PerTarget: &wire.PerPolicy{OncePerVersion: true}}
	if err := s.Validate(); !errors.Is(err, wire.ErrInvalid) {
		t.Errorf("per_target: Validate = %v", err)
	}
	if _, err := wire.DecodeSchedule([]byte(strings.Replace(doc, "once_per_version", "once_per_versoin", 1))); !errors.Is(err, wire.ErrInvalid) {
		t.Errorf("typo decoded: %v", err)
	}
}
