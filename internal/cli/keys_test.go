package cli_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/cli"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/signing"
)

func TestKeygenLoadKeyRoundTrip(t *testing.T) {
	t.Parallel()
	dir := natstest.TempDir(t)
	key := filepath.Join(dir, "ops.key")
	o := run("keygen", "--kid", "ops-2026", "--out", key, "--label", "ops team", "--max-age-secs", "600").want(t, 0)
	mentions(t, "stderr", o.stderr, "wrote the private key ops-2026 to "+key)

	// stdout is one keyring entry, as the agent's keyring holds them.
	var e signing.Entry
	if err := json.Unmarshal([]byte(o.stdout), &e); err != nil {
		t.Fatalf("stdout is not a keyring entry: %v\n%s", err, o.stdout)
	}
	if e.Kid != "ops-2026" || e.Label != "ops team" || e.MaxAgeSecs == nil || *e.MaxAgeSecs != 600 {
		t.Errorf("entry %+v", e)
	}
	kr, err := signing.ParseKeyring([]byte("[" + strings.TrimSpace(o.stdout) + "]"))
	if err != nil {
		t.Fatalf("the printed entry is not a valid keyring entry: %v", err)
	}

	kid, priv, err := cli.LoadKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if kid != "ops-2026" || len(priv) != ed25519.PrivateKeySize {
		t.Fatalf("LoadKey = %q, %d bytes", kid, len(priv))
	}
	k, ok := kr.Lookup(kid)
	if !ok || !k.PublicKey.Equal(priv.Public()) {
		t.Fatalf("the printed public key does not match the key file")
	}
	// A command signed with the loaded key verifies against the printed entry.
	body := []byte(`{"id":"adhoc-run"}`)
	now := time.Now()
	hdr, err := signing.Sign(priv, kid, "commands.all", now, body)
	if err != nil {
		t.Fatal(err)
	}
	d := signing.NewVerifier(kr, true).Check("commands.all", hdr, body, now)
	if !d.Allowed || d.Outcome != signing.OutcomeVerified {
		t.Fatalf("signature check: %+v", d)
	}
}

func TestKeygenRefusesToOverwrite(t *testing.T) {
	t.Parallel()
	dir := natstest.TempDir(t)
	key := filepath.Join(dir, "k.key")
	run("keygen", "--kid", "k", "--out", key).want(t, 0)
	before, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	o := run("keygen", "--kid", "k", "--out", key).want(t, 1)
	mentions(t, "stderr", o.stderr, "already exists", "--force")
	if o.stdout != "" {
		t.Errorf("stdout %q, want nothing", o.stdout)
	}
	after, _ := os.ReadFile(key)
	if !bytes.Equal(before, after) {
		t.Fatal("the refused keygen changed the key file")
	}
	run("keygen", "--kid", "k2", "--out", key, "--force").want(t, 0)
	kid, _, err := cli.LoadKey(key)
	if err != nil || kid != "k2" {
		t.Fatalf("after --force: LoadKey = %q, %v", kid, err)
	}
}

func TestKeygenBadKid(t *testing.T) {
	t.Parallel()
	dir := natstest.TempDir(t)
	for _, kid := range []string{"", "a\x01b", "tab\there", strings.Repeat("k", signing.MaxKidLen+1), "bad\xffutf8"} {
		key := filepath.Join(dir, "k.key")
		o := run("keygen", "--kid", kid, "--out", key).want(t, cli.ExitUsage)
		mentions(t, "stderr", o.stderr, "--kid")
		if _, err := os.Stat(key); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("kid %q: a key file was written", kid)
		}
	}
	// The keyring's rules allow any other UTF-8, spaces and dots included.
	run("keygen", "--kid", "ops key.2026 – 東京", "--out", filepath.Join(dir, "ok.key")).want(t, 0)
}

func TestLoadKey(t *testing.T) {
	t.Parallel()
	dir := natstest.TempDir(t)
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	full := ed25519.NewKeyFromSeed(seed)
	damaged := bytes.Clone(full)
	damaged[63] ^= 1
	tests := []struct {
		name, content string
		errs          []string // empty: loads
	}{
		{"full key", `{"kid":"a","private_key":"` + b64(full) + `"}`, nil},
		{"seed", `{"kid":"a","private_key":"` + b64(seed) + `"}`, nil},
		{"BOM and spaces", "\ufeff" + `{"kid":"a","private_key":" ` + b64(full) + ` ","comment":"x"}`, nil},
		{"not JSON", `kid=a`, []string{"is not JSON", "kanade keygen"}},
		{"no kid", `{"private_key":"` + b64(full) + `"}`, []string{"has no kid"}},
		{"bad kid", `{"kid":"a\u0007","private_key":"` + b64(full) + `"}`, []string{"kid", "control character"}},
		{"no key", `{"kid":"a"}`, []string{"has no private_key"}},
		{"not base64", `{"kid":"a","private_key":"***"}`, []string{"not standard base64"}},
		{"wrong size", `{"kid":"a","private_key":"` + b64(full[:40]) + `"}`, []string{"decodes to 40 bytes, want 64", "or 32"}},
		{"damaged", `{"kid":"a","private_key":"` + b64(damaged) + `"}`, []string{"damaged"}},
		{"huge", strings.Repeat(" ", 70<<10), []string{"over"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, dir, strings.ReplaceAll(tt.name, " ", "_")+".key", tt.content)
			kid, priv, err := cli.LoadKey(path)
			if len(tt.errs) == 0 {
				if err != nil || kid != "a" || !priv.Equal(full) {
					t.Fatalf("LoadKey = %q, %v; want a and the key", kid, err)
				}
				return
			}
			if err == nil {
				t.Fatal("LoadKey succeeded")
			}
			mentions(t, "error", err.Error(), append(tt.errs, path)...)
		})
	}
	if _, _, err := cli.LoadKey(filepath.Join(dir, "missing.key")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want os.ErrNotExist", err)
	}
}
