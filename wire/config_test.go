package wire_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

func TestDefaultConfig(t *testing.T) {
	tests := []struct {
		cpus, want int
	}{
		{8, 8}, {1, 1}, {0, 1}, {-3, 1},
	}
	for _, tt := range tests {
		c := wire.DefaultConfig(tt.cpus)
		want := wire.Config{
			MaxLocalConcurrent:  tt.want,
			TargetVersionJitter: 10 * time.Minute,
			HeartbeatInterval:   30 * time.Second,
			HostPerfInterval:    60 * time.Second,
			ProcessPerfTopN:     20,
			InventoryInterval:   6 * time.Hour,
			Floors:              wire.Floors{HeartbeatInterval: 5 * time.Second, HostPerfInterval: 5 * time.Second, InventoryInterval: time.Minute},
		}
		if c != want {
			t.Errorf("DefaultConfig(%d) = %+v, want %+v", tt.cpus, c, want)
		}
	}
}

// decodeScope decodes a hand-written ConfigScope document.
func decodeScope(t *testing.T, doc string) *wire.ConfigScope {
	t.Helper()
	s, err := wire.DecodeConfigScope([]byte(doc))
	if err != nil {
		t.Fatalf("DecodeConfigScope(%s): %v", doc, err)
	}
	return s
}

// TestConfigApplyLayers applies scopes the way the agent must: global, then
// groups in alphabetical order, then the pc; later wins per field.
func TestConfigApplyLayers(t *testing.T) {
	global := `{"max_local_concurrent":2,"target_version":"1.4.0","heartbeat_interval":"20s","inventory_interval":"1h"}`
	groups := map[string]string{
		"zeta":  `{"heartbeat_interval":"50s","host_perf_interval":"5m"}`,
		"alpha": `{"heartbeat_interval":"10s","target_version_jitter":"1m","target_version":"1.5.0-rc1"}`,
		"mid":   `{"target_version":"1.5.0"}`,
	}
	pc := `{"max_local_concurrent":1}`

	c := wire.DefaultConfig(8)
	var errs []error
	apply := func(doc string) {
		var e []error
		c, e = c.Apply(decodeScope(t, doc))
		errs = append(errs, e...)
	}
	apply(global)
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	slices.Sort(names)
	for _, g := range names {
		apply(groups[g])
	}
	apply(pc)
	if len(errs) != 0 {
		t.Fatalf("unexpected problems: %v", errs)
	}
	want := wire.Config{
		MaxLocalConcurrent:  1,                // pc over global
		TargetVersion:       "1.5.0",          // group mid over alpha over global
		TargetVersionJitter: time.Minute,      // group alpha
		HeartbeatInterval:   50 * time.Second, // group zeta, the last in order
		HostPerfInterval:    5 * time.Minute,  // group zeta
		InventoryInterval:   time.Hour,        // global
		ProcessPerfTopN:     20,
		Floors:              wire.DefaultConfig(1).Floors,
	}
	if c != want {
		t.Errorf("effective config\n got %+v\nwant %+v", c, want)
	}
}

func TestConfigApply(t *testing.T) {
	base := wire.DefaultConfig(4)
	tests := []struct {
		name     string
		doc      string
		want     func(c *wire.Config) // edits base into the expected result
		problems []string             // one substring per expected problem
	}{
		{"empty scope changes nothing", `{}`, func(*wire.Config) {}, nil},
		{"every field", configScopeFull, func(c *wire.Config) {
			c.MaxLocalConcurrent, c.TargetVersion, c.TargetVersionJitter = 4, "1.5.0", 30*time.Minute
			c.HeartbeatInterval, c.HostPerfInterval, c.InventoryInterval = 15*time.Second, 2*time.Minute, 12*time.Hour
		}, nil},
		{"explicit empty target version clears it", `{"target_version":""}`, func(*wire.Config) {}, nil},
		{"malformed durations give the built-in default", `{"target_version_jitter":"ten minutes","heartbeat_interval":"30","host_perf_interval":"","inventory_interval":"1 day","target_version":"2.0.0"}`,
			func(c *wire.Config) { c.TargetVersion, c.InventoryInterval = "2.0.0", 24*time.Hour },
			[]string{`target_version_jitter "ten minutes"`, `heartbeat_interval "30"`, `host_perf_interval ""`}},
		{"intervals below the floor are raised", `{"heartbeat_interval":"0s","host_perf_interval":"1ns","inventory_interval":"59s"}`,
			func(c *wire.Config) {
				c.HeartbeatInterval, c.HostPerfInterval, c.InventoryInterval = 5*time.Second, 5*time.Second, time.Minute
			},
			[]string{`heartbeat_interval "0s" is below the minimum 5s`, `host_perf_interval "1ns"`, `inventory_interval "59s"`}},
		{"negative durations are malformed", `{"host_perf_interval":"-1m"}`,
			func(*wire.Config) {}, []string{`host_perf_interval "-1m"`}},
		{"jitter 0s is honoured", `{"target_version_jitter":"0s"}`,
			func(c *wire.Config) { c.TargetVersionJitter = 0 }, nil},
		{"humantime durations accepted", `{"inventory_interval":"1h 30m","target_version_jitter":"1500ms","heartbeat_interval":"1m 30s","host_perf_interval":"2min"}`,
			func(c *wire.Config) {
				c.InventoryInterval, c.TargetVersionJitter = 90*time.Minute, 1500*time.Millisecond
				c.HeartbeatInterval, c.HostPerfInterval = 90*time.Second, 2*time.Minute
			}, nil},
		{"process perf and display name", `{"process_perf_enabled":true,"process_perf_expires_at":"2026-05-24T15:30:00Z","process_perf_top_n":5,"client_display_name":"端末管理支援ツール"}`,
			func(c *wire.Config) {
				c.ProcessPerfEnabled, c.ProcessPerfExpiresAt = true, time.Date(2026, 5, 24, 15, 30, 0, 0, time.UTC)
				c.ProcessPerfTopN, c.ClientDisplayName = 5, "端末管理支援ツール"
			}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := base
			start.TargetVersion = "1.0.0"
			want := start
			if tt.name == "explicit empty target version clears it" {
				want.TargetVersion = ""
			}
			tt.want(&want)
			got, errs := start.Apply(decodeScope(t, tt.doc))
			if got != want {
				t.Errorf("Apply\n got %+v\nwant %+v", got, want)
			}
			if len(errs) != len(tt.problems) {
				t.Fatalf("problems %v, want %d mentioning %q", errs, len(tt.problems), tt.problems)
			}
			for i, err := range errs {
				if !errors.Is(err, wire.ErrInvalid) {
					t.Errorf("problem %q does not wrap ErrInvalid", err)
				}
				if !strings.Contains(err.Error(), tt.problems[i]) {
					t.Errorf("problem %q does not mention %q", err, tt.problems[i])
				}
			}
			if start.TargetVersion != "1.0.0" || start.MaxLocalConcurrent != 4 {
				t.Errorf("Apply modified its receiver: %+v", start)
			}
		})
	}
}

// TestConfigApplyBadDurationIsBuiltinDefault checks upstream's rule: a
// malformed duration in a later scope gives the built-in default, not the
// value of the earlier scope (the later string replaced the earlier one).
func TestConfigApplyBadDurationIsBuiltinDefault(t *testing.T) {
	c, errs := wire.DefaultConfig(8).Apply(decodeScope(t, `{"max_local_concurrent":3,"heartbeat_interval":"10s"}`))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	c, errs = c.Apply(decodeScope(t, `{"heartbeat_interval":"never"}`))
	if len(errs) != 1 {
		t.Errorf("problems %v, want 1", errs)
	}
	if c.MaxLocalConcurrent != 3 || c.HeartbeatInterval != wire.DefaultHeartbeatInterval {
		t.Errorf("got %+v, want max_local_concurrent 3 and the built-in heartbeat interval", c)
	}
}

// TestConfigScopeZeroLimitRejectsScope checks that max_local_concurrent 0
// (or out of u32 range) rejects the whole scope, at decoding as upstream's
// NonZeroU32 does, and in Apply for a scope built in Go.
func TestConfigScopeZeroLimitRejectsScope(t *testing.T) {
	for _, doc := range []string{
		`{"max_local_concurrent":0,"heartbeat_interval":"10s"}`,
		`{"max_local_concurrent":-2}`,
		`{"max_local_concurrent":4294967296}`,
		`{"process_perf_top_n":-1}`,
	} {
		s, err := wire.DecodeConfigScope([]byte(doc))
		if s != nil || !errors.Is(err, wire.ErrInvalid) {
			t.Errorf("DecodeConfigScope(%s) = %+v, %v; want an error", doc, s, err)
		}
	}
	zero := 0
	hb := "10s"
	base := wire.DefaultConfig(8)
	c, errs := base.Apply(&wire.ConfigScope{MaxLocalConcurrent: &zero, HeartbeatInterval: &hb})
	if c != base || len(errs) != 1 || !errors.Is(errs[0], wire.ErrInvalid) || !strings.Contains(errs[0].Error(), "max_local_concurrent 0") {
		t.Errorf("Apply = %+v, %v; want the scope rejected whole", c, errs)
	}
}

func TestConfigProcessPerfActive(t *testing.T) {
	now := time.Date(2026, 5, 24, 15, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		enabled bool
		expires time.Time
		want    bool
	}{
		{false, time.Time{}, false},
		{true, time.Time{}, true},
		{true, now.Add(time.Minute), true},
		{true, now, false},
		{true, now.Add(-time.Minute), false},
	} {
		c := wire.Config{ProcessPerfEnabled: tt.enabled, ProcessPerfExpiresAt: tt.expires}
		if got := c.ProcessPerfActiveAt(now); got != tt.want {
			t.Errorf("%+v: ProcessPerfActiveAt = %v, want %v", tt, got, tt.want)
		}
	}
}

func TestConfigApplyNil(t *testing.T) {
	c := wire.DefaultConfig(2)
	got, errs := c.Apply(nil)
	if got != c || errs != nil {
		t.Errorf("Apply(nil) = %+v, %v", got, errs)
	}
}
