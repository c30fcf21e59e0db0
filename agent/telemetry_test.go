package agent_test

// Integration tests of the agent's reporting: heartbeats, ping, logs.fetch,
// the startup event and the effective configuration.

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/signing"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
		`{"max_local_concurrent":0,"target_version_jitter":"1h"}`,
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

// fastDefaults returns the built-in config with the interval floors removed
// and the heartbeat every hb, for tests that need quick heartbeats.
func fastDefaults(hb time.Duration) func(*agent.Options) {
	return func(o *agent.Options) {
		d := wire.DefaultConfig(runtime.NumCPU())
		d.Floors = wire.Floors{}
		d.HeartbeatInterval = hb
		o.Defaults = &d
	}
}

// beats collects the raw heartbeats of pcID until the test ends.
type beats struct {
	ch chan []byte
}

func (e *env) watchHeartbeats(pcID string) *beats {
	e.t.Helper()
	b := &beats{ch: make(chan []byte, 100000)}
	sub, err := e.nc.Subscribe("heartbeat."+pcID, func(m *nats.Msg) {
		select {
		case b.ch <- m.Data:
		default:
		}
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = sub.Unsubscribe() })
	return b
}

// next returns the next heartbeat, decoded and as a JSON object.
func (b *beats) next(t *testing.T, within time.Duration) (*wire.Heartbeat, map[string]json.RawMessage) {
	t.Helper()
	select {
	case m := <-b.ch:
		h, err := wire.DecodeHeartbeat(m)
		if err != nil {
			t.Fatalf("heartbeat %s: %v", m, err)
		}
		raw := map[string]json.RawMessage{}
		if err := json.Unmarshal(m, &raw); err != nil {
			t.Fatal(err)
		}
		return h, raw
	case <-time.After(within):
		t.Fatalf("no heartbeat within %v", within)
		return nil, nil
	}
}

// count drains the heartbeats that arrive during d and returns how many.
// It observes an interval; it does not wait for a condition.
func (b *beats) count(d time.Duration) int {
	n := 0
	end := time.After(d)
	for {
		select {
		case <-b.ch:
			n++
		case <-end:
			return n
		}
	}
}

// drain drops the heartbeats received so far.
func (b *beats) drain() {
	for {
		select {
		case <-b.ch:
		default:
			return
		}
	}
}

// TestHeartbeatFields: the periodic heartbeat carries upstream's fields:
// no agent_cpu_pct on the first one (no baseline yet) and one on the next,
// the agent's RSS and cumulative disk bytes, os_family as upstream names it,
// command_protocols, and the last logon only where the system records it.
func TestHeartbeatFields(t *testing.T) {
	e := newEnv(t)
	hbs := e.watchHeartbeats("pc-hb")
	e.start("pc-hb", "", fastDefaults(300*time.Millisecond))
	first, raw := hbs.next(t, 20*time.Second)
	if _, ok := raw["agent_cpu_pct"]; ok || first.AgentCPUPct != nil {
		t.Fatalf("first heartbeat has agent_cpu_pct: %s", raw["agent_cpu_pct"])
	}
	want := map[string]string{"os_family": `"` + wire.OSFamily(runtime.GOOS) + `"`, "command_protocols": `["legacy","kanade.command.v2","` + signing.AlgEd25519Subject + `"]`,
		"command_keys": `[]`, "enforcing": `false`, "pc_id": `"pc-hb"`}
	for k, v := range want {
		if string(raw[k]) != v {
			t.Errorf("first heartbeat %s = %s, want %s", k, raw[k], v)
		}
	}
	if first.AgentRSSBytes == 0 {
		t.Errorf("first heartbeat: no agent_rss_bytes")
	}
	if runtime.GOOS == "linux" && (first.AgentDiskReadBytes == nil || first.AgentDiskWrittenBytes == nil) {
		t.Errorf("first heartbeat: no agent disk bytes: %+v", first)
	}
	if runtime.GOOS != "windows" {
		for _, k := range []string{"last_logon_user", "last_logon_display_name"} {
			if _, ok := raw[k]; ok {
				t.Errorf("%s sent on %s: %s", k, runtime.GOOS, raw[k])
			}
		}
	}
	second, raw := hbs.next(t, 20*time.Second)
	if second.AgentCPUPct == nil || *second.AgentCPUPct < 0 {
		t.Fatalf("second heartbeat agent_cpu_pct %s, want a figure", raw["agent_cpu_pct"])
	}
	if first.AgentDiskWrittenBytes != nil && (second.AgentDiskWrittenBytes == nil || *second.AgentDiskWrittenBytes < *first.AgentDiskWrittenBytes) {
		t.Fatalf("agent_disk_written_bytes went from %d to %v: it is cumulative", *first.AgentDiskWrittenBytes, second.AgentDiskWrittenBytes)
	}
}

// TestPingReply: a ping is answered with a heartbeat without the periodic
// fields, as upstream's ping responder does; it does not sample the
// agent's CPU, so the periodic heartbeat's interval stays whole.
func TestPingReply(t *testing.T) {
	e := newEnv(t)
	e.start("pc-pr", "", func(o *agent.Options) { o.Version = "2.3.4" })
	ping, _ := subject.Ping("pc-pr")
	for range 2 {
		m, err := e.nc.Request(ping, nil, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		raw := map[string]json.RawMessage{}
		if err := json.Unmarshal(m.Data, &raw); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"agent_cpu_pct", "agent_rss_bytes", "agent_disk_read_bytes", "agent_disk_written_bytes",
			"quarantined_versions", "last_logon_user", "last_logon_display_name", "command_protocols"} {
			if v, ok := raw[k]; ok {
				t.Errorf("ping reply has %s: %s", k, v)
			}
		}
		if string(raw["agent_version"]) != `"2.3.4"` || string(raw["pc_id"]) != `"pc-pr"` || string(raw["os_family"]) != `"`+wire.OSFamily(runtime.GOOS)+`"` {
			t.Errorf("ping reply %s", m.Data)
		}
	}
}

// TestHeartbeatIntervalHumantime: heartbeat_interval "1m 30s" is 90 s, as
// upstream's humantime reads it: after the change (which sends one
// heartbeat at once, as upstream's new ticker does) no other heartbeat
// comes for a while, where "1s" gives one a second.
func TestHeartbeatIntervalHumantime(t *testing.T) {
	e := newEnv(t)
	hbs := e.watchHeartbeats("pc-ht")
	a := e.start("pc-ht", "", fastDefaults(time.Hour))
	e.kvPut(subject.BucketConfig, "global", wire.ConfigScope{HeartbeatInterval: ptr("1s")})
	waitConfig(t, a, func(c wire.Config) bool { return c.HeartbeatInterval == time.Second })
	if n := hbs.count(4500 * time.Millisecond); n < 3 {
		t.Fatalf("%d heartbeats in 4.5 s at heartbeat_interval 1s, want at least 3", n)
	}
	e.kvPut(subject.BucketConfig, "global", wire.ConfigScope{HeartbeatInterval: ptr("1m 30s")})
	waitConfig(t, a, func(c wire.Config) bool { return c.HeartbeatInterval == 90*time.Second })
	// At most one heartbeat of the old cadence and the one the change sends.
	if n := hbs.count(4500 * time.Millisecond); n > 2 {
		t.Fatalf("%d heartbeats in 4.5 s at heartbeat_interval \"1m 30s\", want at most 2", n)
	}
}

// TestHeartbeatTinyIntervalClamped: heartbeat_interval "1ns" (or "0s")
// cannot make the agent spin: the interval is raised to
// wire.MinHeartbeatInterval and the heartbeats keep that pace.
func TestHeartbeatTinyIntervalClamped(t *testing.T) {
	e := newEnv(t)
	hbs := e.watchHeartbeats("pc-tiny")
	a := e.start("pc-tiny", "", nil)
	for _, v := range []string{"1ns", "0s"} {
		e.kvPut(subject.BucketConfig, "pcs.pc-tiny", wire.ConfigScope{HeartbeatInterval: &v, HostPerfInterval: &v})
		c := waitConfig(t, a, func(c wire.Config) bool { return c.HeartbeatInterval == wire.MinHeartbeatInterval })
		if c.HostPerfInterval != wire.MinHostPerfInterval {
			t.Fatalf("host_perf_interval %q: %v, want %v", v, c.HostPerfInterval, wire.MinHostPerfInterval)
		}
		// The change itself sends one; the clamped rate allows one more in 3 s.
		if n := hbs.count(3 * time.Second); n > 2 {
			t.Fatalf("heartbeat_interval %q: %d heartbeats in 3 s, want at most 2 (one per %v)", v, n, wire.MinHeartbeatInterval)
		}
		// Back to the default, so that the next value is a change.
		e.kvPut(subject.BucketConfig, "pcs.pc-tiny", wire.ConfigScope{})
		waitConfig(t, a, func(c wire.Config) bool { return c.HeartbeatInterval == wire.DefaultHeartbeatInterval })
		hbs.drain()
	}
}

// onlineEvents returns the agent_online events stored for pcID, in stream
// order.
func (e *env) onlineEvents(pcID string) ([]wire.ObsEvent, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, subject.StreamObs)
	if err != nil {
		return nil, err
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"obs." + pcID}})
	if err != nil {
		return nil, err
	}
	batch, err := c.FetchNoWait(1000)
	if err != nil {
		return nil, err
	}
	var out []wire.ObsEvent
	for m := range batch.Messages() {
		ev, err := wire.DecodeObsEvent(m.Data())
		if err != nil {
			return nil, fmt.Errorf("obs event %s: %w", m.Data(), err)
		}
		if ev.Kind == wire.KindAgentOnline {
			out = append(out, *ev)
		}
	}
	return out, batch.Error()
}

var startupID = regexp.MustCompile(`^startup_[0-9a-f]{32}$`)

// TestStartupEvent: every start records agent_online as upstream's startup
// event: source agent:startup, event_record_id startup_<uuid> (new for every
// start), payload {"agent_version", "boot_time"} with the boot time in epoch
// seconds.
func TestStartupEvent(t *testing.T) {
	e := newEnv(t)
	dir := natstest.TempDir(t)
	for i := 1; i <= 2; i++ {
		r := e.start("pc-up1", dir, func(o *agent.Options) { o.Version = "4.5.6" })
		var evs []wire.ObsEvent
		natstest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
			var err error
			if evs, err = e.onlineEvents("pc-up1"); err != nil {
				return err
			}
			if len(evs) != i {
				return fmt.Errorf("%d agent_online events, want %d", len(evs), i)
			}
			return nil
		})
		ev := evs[i-1]
		if ev.Source != "agent:startup" || !startupID.MatchString(ev.EventRecordID) || ev.PcID != "pc-up1" {
			t.Fatalf("agent_online %+v", ev)
		}
		if i == 2 && ev.EventRecordID == evs[0].EventRecordID {
			t.Fatalf("two starts share event_record_id %s", ev.EventRecordID)
		}
		var p map[string]json.RawMessage
		if err := json.Unmarshal(ev.Payload, &p); err != nil || len(p) != 2 || string(p["agent_version"]) != `"4.5.6"` {
			t.Fatalf("payload %s (%v), want agent_version and boot_time only", ev.Payload, err)
		}
		var boot int64
		if err := json.Unmarshal(p["boot_time"], &boot); err != nil || boot <= 0 || boot > time.Now().Unix() || time.Since(time.Unix(boot, 0)) > 100*365*24*time.Hour {
			t.Fatalf("boot_time %s (%v)", p["boot_time"], err)
		}
		r.stop(t)
	}
}

// signedLogsRequest returns a logs.fetch request for pcID signed with priv as
// kid at the time at, in the subject-bound form for the subject subj.
func signedLogsRequest(t *testing.T, pcID, subj string, priv ed25519.PrivateKey, kid string, at time.Time) *nats.Msg {
	t.Helper()
	to, _ := subject.LogsFetch(pcID)
	body := []byte(`{"tail_lines":2}`)
	h, err := signing.Sign(priv, kid, subj, at, body)
	if err != nil {
		t.Fatal(err)
	}
	return &nats.Msg{Subject: to, Data: body, Header: h}
}

// unboundLogsRequest returns a logs.fetch request on subj signed in
// upstream's unbound form, valid on any subject.
func unboundLogsRequest(t *testing.T, subj string, priv ed25519.PrivateKey) *nats.Msg {
	t.Helper()
	body := []byte(`{"tail_lines":2}`)
	h, err := signing.SignUnbound(priv, "k1", time.Now(), body)
	if err != nil {
		t.Fatal(err)
	}
	return &nats.Msg{Subject: subj, Data: body, Header: h}
}

// TestLogsFetchSignature: while the agent enforces command signatures, it
// answers logs.fetch only when the request is signed by a keyring key, bound
// to its subject and fresh; anything else gets a one-line refusal and no
// log line.
func TestLogsFetchSignature(t *testing.T) {
	e := newEnv(t)
	pub, priv, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	keyring := filepath.Join(natstest.TempDir(t), "keyring.json")
	kr, _ := json.Marshal([]wire.KeyringEntry{{Kid: "k1", PublicKey: base64.StdEncoding.EncodeToString(pub)}})
	if err := os.WriteFile(keyring, kr, 0o600); err != nil {
		t.Fatal(err)
	}
	logf := filepath.Join(natstest.TempDir(t), "agent.log")
	if err := os.WriteFile(logf, []byte("secret 1\nsecret 2\nsecret 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.start("pc-ls", "", func(o *agent.Options) { o.KeyringFile, o.Enforcing, o.LogFile = keyring, true, logf })
	subj, _ := subject.LogsFetch("pc-ls")
	now := time.Now()
	for _, tc := range []struct {
		name string
		msg  *nats.Msg
	}{
		{"unsigned", &nats.Msg{Subject: subj, Data: []byte(`{"tail_lines":2}`)}},
		{"empty unsigned", &nats.Msg{Subject: subj}},
		{"unknown key", signedLogsRequest(t, "pc-ls", subj, other, "k2", now)},
		{"wrong key", signedLogsRequest(t, "pc-ls", subj, other, "k1", now)},
		{"stale", signedLogsRequest(t, "pc-ls", subj, priv, "k1", now.Add(-10*time.Minute))},
		{"signed for another pc", signedLogsRequest(t, "pc-ls", "logs.fetch.pc-other", priv, "k1", now)},
		{"signed for a command subject", signedLogsRequest(t, "pc-ls", pcSubject("pc-ls"), priv, "k1", now)},
		{"unbound", unboundLogsRequest(t, subj, priv)},
	} {
		m, err := e.nc.RequestMsg(tc.msg, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := string(m.Data); !strings.HasPrefix(got, "kanade-agent: logs.fetch refused: ") || strings.Contains(got, "secret") || strings.Count(got, "\n") > 0 {
			t.Errorf("%s request answered %q, want a one-line refusal", tc.name, got)
		}
	}
	m, err := e.nc.RequestMsg(signedLogsRequest(t, "pc-ls", subj, priv, "k1", time.Now()), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(m.Data); got != "secret 2\nsecret 3\n" {
		t.Fatalf("signed request answered %q", got)
	}
}

// TestHeartbeatRefreshesKeyring: every heartbeat re-reads the keyring before
// reporting it, as upstream does, so a key removed from the file stops being
// trusted (and reported) within a heartbeat, with no command to trigger a
// reload.
func TestHeartbeatRefreshesKeyring(t *testing.T) {
	e := newEnv(t)
	keyring := filepath.Join(natstest.TempDir(t), "keyring.json")
	write := func(kid string) string {
		pub, _, _ := ed25519.GenerateKey(nil)
		kr, _ := json.Marshal([]wire.KeyringEntry{{Kid: kid, PublicKey: base64.StdEncoding.EncodeToString(pub)}})
		if err := os.WriteFile(keyring+".tmp", kr, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(keyring+".tmp", keyring); err != nil {
			t.Fatal(err)
		}
		return kid + ":" + signing.Fingerprint(pub)
	}
	old := write("old")
	hbs := e.watchHeartbeats("pc-kr")
	fast := fastDefaults(200 * time.Millisecond)
	e.start("pc-kr", "", func(o *agent.Options) { fast(o); o.KeyringFile = keyring })
	if h, _ := hbs.next(t, 20*time.Second); len(h.CommandKeys) != 1 || h.CommandKeys[0] != old {
		t.Fatalf("command_keys %q, want [%s]", h.CommandKeys, old)
	}
	replaced := write("new")
	deadline := time.Now().Add(20 * time.Second)
	for {
		h, _ := hbs.next(t, 20*time.Second)
		if len(h.CommandKeys) == 1 && h.CommandKeys[0] == replaced {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("command_keys still %q, want [%s]", h.CommandKeys, replaced)
		}
	}
}

// TestConfigUpstreamFields: the ConfigScope fields upstream added are
// merged layer by layer like the others and exposed by Config.
func TestConfigUpstreamFields(t *testing.T) {
	e := newEnv(t)
	a := e.start("pc-uf", "", nil)
	if c := a.Config(); c.ProcessPerfEnabled || c.ProcessPerfTopN != wire.DefaultProcessPerfTopN || c.ClientDisplayName != "" {
		t.Fatalf("defaults %+v", c)
	}
	e.kvPut(subject.BucketConfig, "global", `{"process_perf_enabled":true,"process_perf_expires_at":"2030-01-02T03:04:05Z",`+
		`"process_perf_top_n":7,"client_display_name":"端末管理支援ツール","heartbeat_interval":"2min"}`)
	e.kvPut(subject.BucketConfig, "pcs.pc-uf", `{"process_perf_top_n":3}`)
	expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	// Both keys applied (the pcs scope may be applied before global: each
	// key is read when announced).
	c := waitConfig(t, a, func(c wire.Config) bool { return c.ProcessPerfTopN == 3 && c.ClientDisplayName != "" })
	if !c.ProcessPerfEnabled || !c.ProcessPerfExpiresAt.Equal(expires) || c.ClientDisplayName != "端末管理支援ツール" ||
		c.HeartbeatInterval != 2*time.Minute || !c.ProcessPerfActiveAt(expires.Add(-time.Second)) || c.ProcessPerfActiveAt(expires) {
		t.Fatalf("config %+v", c)
	}
}

// TestHostPerfFirstSample: the first host_perf goes out at start without
// cpu_pct and rates (nothing to diff against yet), as upstream's; the next
// carries them.
func TestHostPerfFirstSample(t *testing.T) {
	e := newEnv(t)
	got := make(chan []byte, 100)
	sub, err := e.nc.Subscribe("host_perf.pc-hpf", func(m *nats.Msg) {
		select {
		case got <- m.Data:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	e.start("pc-hpf", "", func(o *agent.Options) {
		d := wire.DefaultConfig(runtime.NumCPU())
		d.Floors, d.HostPerfInterval = wire.Floors{}, 300*time.Millisecond
		o.Defaults = &d
	})
	rates := []string{"cpu_pct", "disk_read_bytes_per_sec", "disk_written_bytes_per_sec", "net_rx_bytes_per_sec", "net_tx_bytes_per_sec"}
	for i, wantRates := range []bool{false, true} {
		var m []byte
		select {
		case m = <-got:
		case <-time.After(20 * time.Second):
			t.Fatalf("no host_perf %d", i+1)
		}
		raw := map[string]json.RawMessage{}
		if err := json.Unmarshal(m, &raw); err != nil {
			t.Fatal(err)
		}
		for _, k := range rates {
			if _, ok := raw[k]; ok != wantRates {
				t.Errorf("host_perf %d: %s present %v, want %v: %s", i+1, k, ok, wantRates, m)
			}
		}
		if string(raw["pc_id"]) != `"pc-hpf"` || string(raw["mem_total_bytes"]) == "0" {
			t.Errorf("host_perf %d: %s", i+1, m)
		}
	}
}

// TestHeartbeatHostname: the heartbeat's hostname is %COMPUTERNAME% (then
// $HOSTNAME) verbatim, as upstream sends it, not the DNS host name.
func TestHeartbeatHostname(t *testing.T) {
	t.Setenv("COMPUTERNAME", "PC-TOKYO-0042")
	e := newEnv(t)
	e.start("pc-hn", "", nil)
	ping, _ := subject.Ping("pc-hn")
	m, err := e.nc.Request(ping, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if h, err := wire.DecodeHeartbeat(m.Data); err != nil || h.Hostname != "PC-TOKYO-0042" {
		t.Fatalf("hostname %q (err %v), want %%COMPUTERNAME%%", h.Hostname, err)
	}
}
