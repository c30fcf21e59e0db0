package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// consumers returns the number of JetStream consumers on the server.
func (e *env) consumers() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ai, err := e.js.AccountInfo(ctx)
	if err != nil {
		return 0, err
	}
	return ai.Consumers, nil
}

// kvPurge purges key and removes its purge marker at once, as if the
// marker had aged out: no message of the key is left in the bucket.
func (e *env) kvPurge(bucket, key string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := e.js.KeyValue(ctx, bucket)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := kv.Purge(ctx, key); err != nil {
		e.t.Fatal(err)
	}
	if err := kv.PurgeDeletes(ctx, jetstream.DeleteMarkersOlderThan(-1)); err != nil {
		e.t.Fatal(err)
	}
}

// waitConfig waits until the agent's effective config satisfies ok.
func waitCfg(t *testing.T, a *running, within time.Duration, ok func(wire.Config) error) {
	t.Helper()
	natstest.CheckFor(t, within, 10*time.Millisecond, func() error { return ok(a.Config()) })
}

// gateResult runs a command with id and version and returns its exit code.
func (e *env) gateResult(pc, id, version string) int32 {
	e.t.Helper()
	c := cmd(noopScript)
	c.ID, c.Version = id, version
	e.publish(pcSubject(pc), c)
	return e.waitResult(c.RequestID, 20*time.Second).ExitCode
}

// TestStateOneConsumerPerAgent: an agent following its config, groups and
// gate buckets holds one JetStream consumer on the server, its durable
// EXEC replay consumer; the KV buckets are followed with core
// subscriptions (the consumers of the snapshot walks are deleted once they
// are done).
func TestStateOneConsumerPerAgent(t *testing.T) {
	e := newEnv(t)
	e.kvPut(subject.BucketGroups, "pc-k1", wire.Groups{Groups: []string{"lab"}})
	e.kvPut(subject.BucketConfig, "groups.lab", wire.ConfigScope{ClientDisplayName: ptr("lab")})
	e.kvPut(subject.BucketScriptStatus, "job", wire.ScriptRevoked)
	var agents []*running
	for _, pc := range []string{"pc-k1", "pc-k2", "pc-k3"} {
		agents = append(agents, e.start(pc, "", nil))
	}
	waitCfg(t, agents[0], 10*time.Second, func(c wire.Config) error {
		if c.ClientDisplayName != "lab" {
			return fmt.Errorf("display name %q", c.ClientDisplayName)
		}
		return nil
	})
	if code := e.gateResult("pc-k2", "job", "v1"); code != wire.ExitRevoked {
		t.Fatalf("revoked job: exit %d", code)
	}
	natstest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		n, err := e.consumers()
		if err != nil {
			return err
		}
		if n != len(agents) {
			return fmt.Errorf("%d consumers for %d agents, want one each", n, len(agents))
		}
		return nil
	})
}

// TestStateResyncAfterReconnect: what changes while an agent is
// disconnected is read in full when it reconnects, deletions included, even
// when no delete marker is left in the bucket: a config scope, the group
// list (and with it the group's scope and subject) and a revocation that
// were purged are forgotten, a new version pin is followed. Live updates
// keep arriving after the reconnect.
func TestStateResyncAfterReconnect(t *testing.T) {
	e := newEnv(t)
	proxy := natstest.NewProxy(t, e.srv.Addr(), 0)
	const pc = "pc-rs"
	e.kvPut(subject.BucketConfig, "pcs."+pc, wire.ConfigScope{ClientDisplayName: ptr("mine")})
	e.kvPut(subject.BucketConfig, "groups.lab", wire.ConfigScope{MaxLocalConcurrent: ptr(7)})
	e.kvPut(subject.BucketGroups, pc, wire.Groups{Groups: []string{"lab"}})
	e.kvPut(subject.BucketScriptStatus, "job", wire.ScriptRevoked)
	e.kvPut(subject.BucketScriptCurrent, "pinned", "v1")
	a := e.start(pc, "", func(o *agent.Options) { o.Servers = []string{proxy.URL()} })
	waitCfg(t, a, 10*time.Second, func(c wire.Config) error {
		if c.ClientDisplayName != "mine" || c.MaxLocalConcurrent != 7 {
			return fmt.Errorf("config %+v", c)
		}
		return nil
	})
	if code := e.gateResult(pc, "job", "v1"); code != wire.ExitRevoked {
		t.Fatalf("revoked job before: exit %d", code)
	}
	if code := e.gateResult(pc, "pinned", "v2"); code != wire.ExitVersionPin {
		t.Fatalf("pinned v2 before: exit %d", code)
	}

	proxy.Pause()
	proxy.Cut()
	e.kvPurge(subject.BucketConfig, "pcs."+pc)
	e.kvPurge(subject.BucketGroups, pc)
	e.kvPurge(subject.BucketScriptStatus, "job")
	e.kvPut(subject.BucketScriptCurrent, "pinned", "v2")
	proxy.Resume()

	def := wire.DefaultConfig(1)
	waitCfg(t, a, 20*time.Second, func(c wire.Config) error {
		if c.ClientDisplayName != "" || c.MaxLocalConcurrent == 7 {
			return fmt.Errorf("config after reconnect %+v, want the purged scopes gone (display %q, limit %d)",
				c, def.ClientDisplayName, c.MaxLocalConcurrent)
		}
		return nil
	})
	natstest.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		if code := e.gateResult(pc, "pinned", "v2"); code != 0 {
			return fmt.Errorf("pinned v2 after: exit %d", code)
		}
		return nil
	})
	if code := e.gateResult(pc, "job", "v1"); code != 0 {
		t.Fatalf("job revoked then purged: exit %d, want it to run", code)
	}
	// Still live.
	e.kvPut(subject.BucketConfig, "global", wire.ConfigScope{ClientDisplayName: ptr("again")})
	waitCfg(t, a, 10*time.Second, func(c wire.Config) error {
		if c.ClientDisplayName != "again" {
			return fmt.Errorf("display %q after a live put", c.ClientDisplayName)
		}
		return nil
	})
}

// TestStateAfterServerRestart: after the server restarts, the agent's gate
// state is live again (strict staleness with max_cache_age 0s runs), and
// changes reach it live.
func TestStateAfterServerRestart(t *testing.T) {
	e := newEnv(t)
	const pc = "pc-rr"
	e.kvPut(subject.BucketScriptStatus, "job", wire.ScriptRevoked)
	a := e.start(pc, "", nil)
	if code := e.gateResult(pc, "job", "v1"); code != wire.ExitRevoked {
		t.Fatalf("revoked job: exit %d", code)
	}
	e.srv.Restart()
	e.nc = natstest.Connect(t, e.srv.URL())
	e.js = natstest.JetStream(t, e.nc)
	e.kvPut(subject.BucketScriptStatus, "job", "ACTIVE")
	e.kvPut(subject.BucketConfig, "pcs."+pc, wire.ConfigScope{ClientDisplayName: ptr("after")})
	waitCfg(t, a, 30*time.Second, func(c wire.Config) error {
		if c.ClientDisplayName != "after" {
			return fmt.Errorf("display %q", c.ClientDisplayName)
		}
		return nil
	})
	natstest.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		c := cmd(noopScript)
		c.ID, c.Version = "job", "v1"
		c.Staleness = &wire.Staleness{Mode: wire.StalenessStrict, MaxCacheAge: "0s"}
		e.publish(pcSubject(pc), c)
		if r := e.waitResult(c.RequestID, 20*time.Second); r.ExitCode != 0 {
			return fmt.Errorf("strict 0s after restart: %+v", r)
		}
		return nil
	})
}

// TestConfigBurstEndsInLastState: bursts of changes to the config scopes
// and both group lists, written at once from three writers, end in the
// effective config of the last state on every agent, whatever the order
// the three buckets' changes arrive in: the config is computed and applied
// in one place, in order, never from a stale state.
func TestConfigBurstEndsInLastState(t *testing.T) {
	e := newEnv(t)
	var agents []*running
	for i := range 4 {
		agents = append(agents, e.start("pc-burst"+strconv.Itoa(i), "", nil))
	}
	groups := []string{"a", "b", "c", "d"}
	const rounds = 80
	var wg sync.WaitGroup
	write := func(f func(i int)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				f(i)
			}
		}()
	}
	kv := func(bucket string) jetstream.KeyValue {
		k, err := e.js.KeyValue(context.Background(), bucket)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	put := func(k jetstream.KeyValue, key string, v any) {
		b, _ := json.Marshal(v)
		if _, err := k.Put(context.Background(), key, b); err != nil {
			t.Error(err)
		}
	}
	gkv, dkv, ckv := kv(subject.BucketGroups), kv(subject.BucketGroupsDerived), kv(subject.BucketConfig)
	write(func(i int) {
		for _, a := range agents {
			put(gkv, a.PcID(), wire.Groups{Groups: []string{groups[i%4]}})
		}
	})
	write(func(i int) {
		for _, a := range agents {
			put(dkv, a.PcID(), wire.Groups{Groups: []string{groups[(i+1)%4]}})
		}
	})
	write(func(i int) {
		put(ckv, "groups."+groups[i%4], wire.ConfigScope{MaxLocalConcurrent: ptr(100 + i)})
	})
	wg.Wait()
	// Last state: groups d (79%4=3) and a (derived, 80%4=0); the last write
	// to groups.a was at i=76 (limit 176), to groups.d at i=79 (179). d
	// sorts after a: its scope wins.
	for _, a := range agents {
		waitCfg(t, a, 20*time.Second, func(c wire.Config) error {
			if c.MaxLocalConcurrent != 179 {
				return fmt.Errorf("%s: limit %d, want 179", a.PcID(), c.MaxLocalConcurrent)
			}
			return nil
		})
	}
	// And each agent is subscribed to exactly its groups' subjects.
	for _, a := range agents {
		natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
			got, err := e.groupSubjects(a.PcID())
			if err != nil {
				return err
			}
			if want := []string{"commands.group.a", "commands.group.d"}; !slices.Equal(got, want) {
				return fmt.Errorf("%s subscribed to %v, want %v", a.PcID(), got, want)
			}
			return nil
		})
	}
}

// groupSubjects lists the commands.group.* subjects the connection of
// agent pc subscribes to on the server, sorted.
func (e *env) groupSubjects(pc string) ([]string, error) {
	cz, err := e.srv.NATS().Connz(&server.ConnzOptions{Subscriptions: true, Limit: 1000})
	if err != nil {
		return nil, err
	}
	for _, c := range cz.Conns {
		if c.Name != "kanade-agent/"+pc {
			continue
		}
		var out []string
		for _, s := range c.Subs {
			if strings.HasPrefix(s, "commands.group.") {
				out = append(out, s)
			}
		}
		slices.Sort(out)
		return out, nil
	}
	return nil, fmt.Errorf("no connection of %s", pc)
}
