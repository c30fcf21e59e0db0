package agent_test

// Integration tests of the agent's reporting: heartbeats, ping, logs.fetch,
// the startup event and the effective configuration.

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/signing"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
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
