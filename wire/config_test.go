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
			InventoryInterval:   6 * time.Hour,
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
		{"max_local_concurrent 0 ignored", `{"max_local_concurrent":0,"heartbeat_interval":"5s"}`,
			func(c *wire.Config) { c.HeartbeatInterval = 5 * time.Second }, []string{"max_local_concurrent 0"}},
		{"max_local_concurrent negative ignored", `{"max_local_concurrent":-2}`,
			func(*wire.Config) {}, []string{"max_local_concurrent -2"}},
		{"malformed durations ignored", `{"target_version_jitter":"ten minutes","heartbeat_interval":"30","host_perf_interval":"","inventory_interval":"1d","target_version":"2.0.0"}`,
			func(c *wire.Config) { c.TargetVersion = "2.0.0" },
			[]string{`target_version_jitter "ten minutes"`, `heartbeat_interval "30"`, `host_perf_interval ""`, `inventory_interval "1d"`}},
		{"zero and negative durations ignored", `{"heartbeat_interval":"0s","host_perf_interval":"-1m"}`,
			func(*wire.Config) {}, []string{`heartbeat_interval "0s"`, `host_perf_interval "-1m"`}},
		{"compound durations accepted", `{"inventory_interval":"1h30m","target_version_jitter":"1500ms"}`,
			func(c *wire.Config) {
				c.InventoryInterval, c.TargetVersionJitter = 90*time.Minute, 1500*time.Millisecond
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

// TestConfigApplyBadFieldKeepsLowerLayer checks that a bad value in a later
// scope leaves the value of the earlier scope, not the default.
func TestConfigApplyBadFieldKeepsLowerLayer(t *testing.T) {
	c, errs := wire.DefaultConfig(8).Apply(decodeScope(t, `{"max_local_concurrent":3,"heartbeat_interval":"10s"}`))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	c, errs = c.Apply(decodeScope(t, `{"max_local_concurrent":0,"heartbeat_interval":"never"}`))
	if len(errs) != 2 {
		t.Errorf("problems %v, want 2", errs)
	}
	if c.MaxLocalConcurrent != 3 || c.HeartbeatInterval != 10*time.Second {
		t.Errorf("got %+v, want the global values kept", c)
	}
}

func TestConfigApplyNil(t *testing.T) {
	c := wire.DefaultConfig(2)
	got, errs := c.Apply(nil)
	if got != c || errs != nil {
		t.Errorf("Apply(nil) = %+v, %v", got, errs)
	}
}
