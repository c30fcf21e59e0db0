package agent_test

// Integration tests of the agent's reporting: heartbeats, ping, logs.fetch,
// the startup event and the effective configuration.

import (
	"fmt"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
)

// waitConfig waits until the agent's effective config satisfies ok.
func waitConfig(t *testing.T, a *running, ok func(wire.Config) bool) wire.Config {
	t.Helper()
	var c wire.Config
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if c = a.Config(); !ok(c) {
			return fmt.Errorf("config %+v", c)
		}
		return nil
	})
	return c
}

// TestConfigRejectedScopeKeepsPrevious: a scope that does not decode, or
// that upstream refuses (max_local_concurrent 0), is ignored whole, and its
// key keeps its previous value, as upstream's config supervisor does.
func TestConfigRejectedScopeKeepsPrevious(t *testing.T) {
	e := newEnv(t)
	a := e.start("pc-rej", "", nil)
	e.kvPut(subject.BucketConfig, "pcs.pc-rej", `{"max_local_concurrent":2,"target_version_jitter":"3m"}`)
	waitConfig(t, a, func(c wire.Config) bool { return c.MaxLocalConcurrent == 2 && c.TargetVersionJitter == 3*time.Minute })
	for i, bad := range []string{

		`{garbage`,
		`{"max_local_concurrent":"2"}`,
	} {
		e.kvPut(subject.BucketConfig, "pcs.pc-rej", bad)
		// The agent_config watch delivers in bucket order: once this later
		// put shows, the bad one was handled.
		marker := fmt.Sprintf("1.0.%d", i)
		e.kvPut(subject.BucketConfig, "global", wire.ConfigScope{TargetVersion: &marker})
		c := waitConfig(t, a, func(c wire.Config) bool { return c.TargetVersion == marker })
		if c.MaxLocalConcurrent != 2 || c.TargetVersionJitter != 3*time.Minute {
			t.Fatalf("after the rejected scope %s: config %+v, want the previous pcs scope still in force", bad, c)
		}
	}
	// A good scope on the same key still applies.
	e.kvPut(subject.BucketConfig, "pcs.pc-rej", `{"max_local_concurrent":5}`)
	waitConfig(t, a, func(c wire.Config) bool {
		return c.MaxLocalConcurrent == 5 && c.TargetVersionJitter == wire.DefaultTargetVersionJitter
	})
}
