package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// TestStalenessZeroMaxCacheAge: as upstream, strict staleness with
// max_cache_age "0s" (humantime) runs when the agent's gate state is live
// now, applying the version pin and revocation, and is skipped with 127
// when it is not (here: the gate buckets never existed, so the state was
// never read and cannot be read now). "5min" parses too; a max_cache_age
// that does not parse fails closed, like "0s".
func TestStalenessZeroMaxCacheAge(t *testing.T) {
	t.Run("live", func(t *testing.T) {
		e := newEnv(t)
		e.kvPut(subject.BucketScriptCurrent, "job", "v2")
		e.start("pc-st0", "", nil)
		for _, tc := range []struct {
			version, maxAge string
			code            int32
		}{
			{"v2", "0s", 0},
			{"v2", "5min", 0},
			{"v2", "1h 30m", 0},
			{"v2", "soon", 0}, // read as 0s: the state is live, so it runs
			{"v1", "0s", wire.ExitVersionPin},
		} {
			c := cmd("echo ran")
			c.ID, c.Version = "job", tc.version
			c.Staleness = &wire.Staleness{Mode: wire.StalenessStrict, MaxCacheAge: tc.maxAge}
			e.publish(pcSubject("pc-st0"), c)
			if r := e.waitResult(c.RequestID, 20*time.Second); r.ExitCode != tc.code {
				t.Fatalf("%s max_cache_age %q: %+v, want exit %d", tc.version, tc.maxAge, r, tc.code)
			}
		}
	})
	t.Run("stale", func(t *testing.T) {
		srv := natstest.RunBareServer(t)
		nc := natstest.Connect(t, srv.URL())
		js := natstest.JetStream(t, nc)
		if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: subject.StreamResults, Subjects: []string{subject.ResultsWildcard}}); err != nil {
			t.Fatal(err)
		}
		e := &env{t: t, srv: srv, nc: nc, js: js}
		e.start("pc-st1", "", nil)
		for _, maxAge := range []string{"0s", "5min", "not a duration"} {
			c := cmd("echo ran")
			c.ID, c.Version = "job", "v1"
			c.Staleness = &wire.Staleness{Mode: wire.StalenessStrict, MaxCacheAge: maxAge}
			e.publish(pcSubject("pc-st1"), c)
			if r := e.waitResult(c.RequestID, 20*time.Second); r.ExitCode != wire.ExitStale || !r.Skipped || r.ManifestID != "job" {
				t.Fatalf("max_cache_age %q: %+v, want 127", maxAge, r)
			}
		}
		// cached and unchecked run on whatever state there is.
		for _, mode := range []string{wire.StalenessCached, wire.StalenessUnchecked} {
			c := cmd("echo ran")
			c.ID, c.Version = "job", "v1"
			c.Staleness = &wire.Staleness{Mode: mode}
			e.publish(pcSubject("pc-st1"), c)
			if r := e.waitResult(c.RequestID, 20*time.Second); r.ExitCode != 0 {
				t.Fatalf("%s: %+v", mode, r)
			}
		}
	})
}
