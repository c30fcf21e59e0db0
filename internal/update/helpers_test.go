package update_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/internal/update"
	"github.com/kanade/kanade-agent/signing"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var (
	oldBinary = []byte("old binary 1.0.0\x00\x01\x02")
	newBinary = bytes.Repeat([]byte("new binary 1.2.0 "), 20000) // ~340 KiB: several chunks
)

// env is one test's world: a JetStream server with agent_releases, an
// executable in a temp dir, and a state dir.
type env struct {
	js       jetstream.JetStream
	obs      jetstream.ObjectStore
	dir      string
	exe      string
	stateDir string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	obs, err := js.ObjectStore(context.Background(), subject.ObjectReleases)
	if err != nil {
		t.Fatal(err)
	}
	dir := natstest.TempDir(t)
	e := &env{js: js, obs: obs, dir: dir, exe: filepath.Join(dir, "kanade-agent.exe"), stateDir: filepath.Join(dir, "data", "update")}
	if err := os.WriteFile(e.exe, oldBinary, 0o755); err != nil {
		t.Fatal(err)
	}
	return e
}

// updater returns an Updater for e running version cur, with no waits:
// the backoff and jitter sleeps return at once unless mod replaces them.
func (e *env) updater(t *testing.T, cur string, mod func(*update.Options)) *update.Updater {
	t.Helper()
	o := update.Options{
		Exe:            e.exe,
		StateDir:       e.stateDir,
		CurrentVersion: cur,
		JetStream:      e.js,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&o)
	}
	u, err := update.New(o)
	if err != nil {
		t.Fatal(err)
	}
	update.SetSleep(u, func(ctx context.Context, _ time.Duration) error { return ctx.Err() })
	return u
}

func (e *env) put(t *testing.T, version string, data []byte, priv ed25519.PrivateKey, kid string) *jetstream.ObjectInfo {
	t.Helper()
	return e.putFlags(t, version, data, priv, kid, update.Flags{})
}

func (e *env) putFlags(t *testing.T, version string, data []byte, priv ed25519.PrivateKey, kid string, flags update.Flags) *jetstream.ObjectInfo {
	t.Helper()
	info, err := update.PutRelease(context.Background(), e.obs, version, data, priv, kid, flags)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// rewriteMeta publishes a replacement meta message for object name, as a
// tampering publisher could, after edit changes it.
func (e *env) rewriteMeta(t *testing.T, name string, edit func(*jetstream.ObjectInfo)) {
	t.Helper()
	ctx := context.Background()
	info, err := e.obs.GetInfo(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	edit(info)
	b, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(fmt.Sprintf("$O.%s.M.%s", subject.ObjectReleases, base64.URLEncoding.EncodeToString([]byte(name))))
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	m.Data = b
	if _, err := e.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
}

func cfg(target string) wire.Config {
	return wire.Config{TargetVersion: target}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantFile fails unless the file at p holds want.
func wantFile(t *testing.T, p string, want []byte) {
	t.Helper()
	if got := readFile(t, p); !bytes.Equal(got, want) {
		t.Fatalf("%s holds %d bytes %.20q, want %d bytes %.20q", filepath.Base(p), len(got), got, len(want), want)
	}
}

// wantNoFile fails unless nothing exists at p.
func wantNoFile(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !os.IsNotExist(err) {
		t.Fatalf("%s exists (err %v), want it absent", filepath.Base(p), err)
	}
}

// wantNoStaging fails if a staging file or <exe>.new is left beside the exe.
func (e *env) wantNoStaging(t *testing.T) {
	t.Helper()
	ents, err := os.ReadDir(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ents {
		if n := d.Name(); strings.Contains(n, ".staging-") || strings.HasSuffix(n, ".new") {
			t.Fatalf("stray file %s", n)
		}
	}
}

// keyPair returns a deterministic ed25519 key from a one-byte seed.
func keyPair(seed byte) (ed25519.PublicKey, ed25519.PrivateKey) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	return priv.Public().(ed25519.PublicKey), priv
}

func keyring(t *testing.T, kid string, pub ed25519.PublicKey) *signing.Keyring {
	t.Helper()
	k, err := signing.NewKeyring([]signing.Entry{{Kid: kid, PublicKey: base64.StdEncoding.EncodeToString(pub)}})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// stateJSON returns the decoded state file.
func (e *env) stateJSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readFile(t, filepath.Join(e.stateDir, update.StateFile)), &m); err != nil {
		t.Fatal(err)
	}
	return m
}
