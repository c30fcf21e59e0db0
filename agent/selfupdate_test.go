package agent_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/internal/update"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// runUntilDone runs an agent; the returned channel yields Run's error.
func runUntilDone(t *testing.T, o agent.Options) (*agent.Agent, context.CancelFunc, <-chan error) {
	t.Helper()
	a, err := agent.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- a.Run(ctx)
		close(stopped)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(30 * time.Second):
			t.Error("agent did not stop")
		}
	})
	return a, cancel, done
}

// releaseSetup writes an "old binary" and a release keyring to a temp
// dir and stores release 2.0.0 (signed) and 6.6.6 (unsigned) in
// agent_releases. It returns the data dir and the agent options for a
// running version.
func releaseSetup(t *testing.T, e *env, pcID string) (exe, data string, opts func(version string) agent.Options) {
	t.Helper()
	dir := natstest.TempDir(t)
	exe = filepath.Join(dir, "kanade-agent.exe")
	if err := os.WriteFile(exe, []byte("old binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(nil)
	keyring := filepath.Join(dir, "releases.json")
	kr, _ := json.Marshal([]wire.KeyringEntry{{Kid: "rel-1", PublicKey: base64.StdEncoding.EncodeToString(pub)}})
	if err := os.WriteFile(keyring, kr, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store, err := e.js.ObjectStore(ctx, subject.ObjectReleases)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := update.PutRelease(ctx, store, "2.0.0", []byte("new binary"), priv, "rel-1", update.Flags{}); err != nil {
		t.Fatal(err)
	}
	// An unsigned release is refused: it is never installed.
	if _, err := update.PutRelease(ctx, store, "6.6.6", []byte("evil binary"), nil, "", update.Flags{}); err != nil {
		t.Fatal(err)
	}
	data = filepath.Join(dir, "data")
	return exe, data, func(version string) agent.Options {
		return agent.Options{PcID: pcID, DataDir: data, Servers: []string{e.srv.URL()}, Logger: testLogger(t),
			DisableInventory: true, Version: version, SelfUpdate: true, Exe: exe, ReleaseKeyringFile: keyring,
			KillGrace: 500 * time.Millisecond}
	}
}

// updateTo2 sets target_version 2.0.0 and waits until Run (whose error
// done yields) returns ErrRestart with exit code 64.
func updateTo2(t *testing.T, e *env, done <-chan error) {
	t.Helper()
	e.kvPut(subject.BucketConfig, "global", wire.ConfigScope{TargetVersion: ptr("2.0.0"), TargetVersionJitter: ptr("1ms")})
	select {
	case err := <-done:
		if !errors.Is(err, agent.ErrRestart) {
			t.Fatalf("Run returned %v, want ErrRestart", err)
		}
		var ec interface{ ExitCode() int }
		if !errors.As(err, &ec) || ec.ExitCode() != 64 {
			t.Fatalf("restart error %v has no exit code 64", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no restart after target_version 2.0.0")
	}
}

// TestSelfUpdate follows target_version end to end: a signed release in
// agent_releases replaces the binary, Run returns ErrRestart (exit 64), and
// the next start as the new version reports agent_update.
func TestSelfUpdate(t *testing.T) {
	e := newEnv(t)
	exe, data, opts := releaseSetup(t, e, "pc-up")
	ctx := context.Background()

	a, _, done := runUntilDone(t, opts("1.0.0"))
	<-a.Ready()
	e.kvPut(subject.BucketConfig, "global", wire.ConfigScope{TargetVersion: ptr("6.6.6"), TargetVersionJitter: ptr("1ms")})
	// The refused release leaves the binary alone and the agent running.
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if a.Config().TargetVersion != "6.6.6" {
			return fmt.Errorf("config not applied yet")
		}
		return nil
	})
	updateTo2(t, e, done)
	if b, _ := os.ReadFile(exe); string(b) != "new binary" {
		t.Fatalf("binary after the update: %q", b)
	}
	if b, _ := os.ReadFile(exe + ".old"); string(b) != "old binary" {
		t.Fatalf("previous binary kept as .old: %q", b)
	}

	// The daemon's boot check, then the new version starts and says so.
	if _, err := update.Boot(filepath.Join(data, "update"), exe); err != nil {
		t.Fatal(err)
	}
	b, _, _ := runUntilDone(t, opts("2.0.0"))
	<-b.Ready()
	natstest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		s, err := e.js.Stream(ctx, subject.StreamObs)
		if err != nil {
			return err
		}
		c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"obs.pc-up"}})
		if err != nil {
			return err
		}
		batch, err := c.FetchNoWait(100)
		if err != nil {
			return err
		}
		for m := range batch.Messages() {
			ev, err := wire.DecodeObsEvent(m.Data())
			if err == nil && ev.Kind == wire.KindAgentUpdate && ev.Source == wire.SourceSelfUpdate {
				var p update.UpdatePayload
				if err := json.Unmarshal(ev.Payload, &p); err != nil || p.From != "1.0.0" || p.To != "2.0.0" {
					return fmt.Errorf("agent_update payload %s (%v)", ev.Payload, err)
				}
				return nil
			}
		}
		return fmt.Errorf("no agent_update event yet")
	})
}

// TestSelfUpdateWaitsForCommands: once the binary is swapped, the restart
// waits for a running command, which finishes with its own exit code;
// with a negative UpdateRestartWait the restart kills it.
func TestSelfUpdateWaitsForCommands(t *testing.T) {
	for _, tc := range []struct {
		name string
		wait time.Duration
		secs int
		code int32
	}{
		{"waits", time.Minute, 2, 0},
		{"at-once", -1, 60, wire.ExitKilled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			_, _, opts := releaseSetup(t, e, "pc-wait")
			o := opts("1.0.0")
			o.UpdateRestartWait = tc.wait
			a, _, done := runUntilDone(t, o)
			<-a.Ready()
			c := cmd(sleepScript(tc.secs))
			e.publish(pcSubject("pc-wait"), c)
			natstest.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
				if s := a.Stats(); s.Running != 1 {
					return fmt.Errorf("%d commands running", s.Running)
				}
				return nil
			})
			updateTo2(t, e, done)
			if r := e.waitResult(c.RequestID, 20*time.Second); r.ExitCode != tc.code {
				t.Fatalf("command result: exit %d (%q), want %d", r.ExitCode, r.Stderr, tc.code)
			}
		})
	}
}

// TestSelfUpdateRefusals: the self-update refuses what an attacker with
// write access to agent_releases and agent_config could use to replace the
// binary: an unsigned release on an agent that enforces command
// signatures, any release with an empty ([]) release keyring, and a
// signed release older than the running version (unless the operator
// allows downgrades). Each refusal is recorded in the update state and the
// agent keeps running its binary.
func TestSelfUpdateRefusals(t *testing.T) {
	for _, tc := range []struct {
		name    string
		running string
		target  string
		tweak   func(t *testing.T, dir string, o *agent.Options)
		install bool
	}{
		{"enforcing without a release keyring", "1.0.0", "6.6.6", func(t *testing.T, dir string, o *agent.Options) {
			o.ReleaseKeyringFile = ""
			o.KeyringFile, o.Enforcing = commandKeyring(t, dir), true
		}, false},
		{"empty release keyring", "1.0.0", "6.6.6", func(t *testing.T, dir string, o *agent.Options) {
			o.ReleaseKeyringFile = filepath.Join(dir, "empty.json")
			if err := os.WriteFile(o.ReleaseKeyringFile, []byte("[]"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"signed downgrade", "3.0.0", "2.0.0", nil, false},
		{"signed downgrade allowed by the operator", "3.0.0", "2.0.0", func(t *testing.T, dir string, o *agent.Options) {
			o.AllowDowngrade = true
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			exe, data, opts := releaseSetup(t, e, "pc-refuse")
			o := opts(tc.running)
			if tc.tweak != nil {
				tc.tweak(t, filepath.Dir(data), &o)
			}
			a, _, done := runUntilDone(t, o)
			<-a.Ready()
			e.kvPut(subject.BucketConfig, "global", wire.ConfigScope{TargetVersion: ptr(tc.target), TargetVersionJitter: ptr("1ms")})
			if tc.install {
				select {
				case err := <-done:
					if !errors.Is(err, agent.ErrRestart) {
						t.Fatalf("Run returned %v, want ErrRestart", err)
					}
				case <-time.After(60 * time.Second):
					t.Fatal("the allowed downgrade was not installed")
				}
				if b, _ := os.ReadFile(exe); string(b) != "new binary" {
					t.Fatalf("binary after the allowed downgrade: %q", b)
				}
				return
			}
			natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
				b, err := os.ReadFile(filepath.Join(data, "update", update.StateFile))
				if err != nil {
					return err
				}
				var st struct {
					Refused *struct{ Version, Reason string } `json:"refused"`
				}
				if err := json.Unmarshal(b, &st); err != nil {
					return err
				}
				if st.Refused == nil || st.Refused.Version != tc.target {
					return fmt.Errorf("no refusal of %s recorded yet: %s", tc.target, b)
				}
				return nil
			})
			if b, _ := os.ReadFile(exe); string(b) != "old binary" {
				t.Fatalf("binary replaced by refused release %s: %q", tc.target, b)
			}
			select {
			case err := <-done:
				t.Fatalf("agent stopped after a refused release: %v", err)
			default:
			}
		})
	}
}

// commandKeyring writes a command keyring with one fresh key to dir.
func commandKeyring(t *testing.T, dir string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal([]wire.KeyringEntry{{Kid: "cmd-1", PublicKey: base64.StdEncoding.EncodeToString(pub)}})
	p := filepath.Join(dir, "commands.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
