package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/signing"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
)

// fakeEtc makes signingSources read under a temporary root for the test
// and returns the keyring and enforcement file paths there.
func fakeEtc(t *testing.T) (keys, enforce string) {
	t.Helper()
	root := natstest.TempDir(t)
	src := signing.DefaultSourcesAt(root)
	if err := os.MkdirAll(filepath.Dir(src.EnforceFile), 0o755); err != nil {
		t.Fatal(err)
	}
	old := signingSources
	signingSources = func(string) signing.Sources { return src }
	t.Cleanup(func() { signingSources = old })
	return src.KeysFile, src.EnforceFile
}

// TestSigningDefaults: the keyring defaults to upstream's file, and the
// machine's enforcement switch turns enforcement on, which no setting can
// turn off.
func TestSigningDefaults(t *testing.T) {
	keys, enforce := fakeEtc(t)
	write := func(content string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(enforce, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(enforce, mode); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := load(t, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.KeyringFile != keys || cfg.EnforceSignatures || cfg.EnforceErr != nil {
		t.Fatalf("no switch: keyring %q, enforcing %v (%v); want %q, off", cfg.KeyringFile, cfg.EnforceSignatures, cfg.EnforceErr, keys)
	}
	if cfg, err := load(t, []string{"--keyring", rootPath("/srv/keys.json")}, nil, ""); err != nil || cfg.KeyringFile != rootPath("/srv/keys.json") {
		t.Fatalf("--keyring: %v", err)
	}
	if cfg, err := load(t, []string{"--enforce-signatures"}, nil, ""); err != nil || !cfg.EnforceSignatures || cfg.EnforceFrom != "setting" {
		t.Fatalf("--enforce-signatures: %v", err)
	}

	for _, tc := range []struct {
		name    string
		content string
		args    []string
		want    bool
	}{
		{"yes", "yes\n", nil, true},
		{"1", " 1 ", nil, true},
		{"TRUE", "TRUE", nil, true},
		{"0", "0", nil, false},
		{"no", "no", nil, false},
		{"on although the flag says false", "1", []string{"--enforce-signatures=false"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			write(tc.content, 0o644)
			cfg, err := load(t, tc.args, map[string]string{"KANADE_ENFORCE_SIGNATURES": "false"}, "")
			if err != nil {
				t.Fatal(err)
			}
			if cfg.EnforceSignatures != tc.want {
				t.Fatalf("enforcing %v, want %v", cfg.EnforceSignatures, tc.want)
			}
			if tc.want && cfg.EnforceFrom != "file "+enforce {
				t.Fatalf("enforce from %q", cfg.EnforceFrom)
			}
		})
	}
	if runtime.GOOS != "windows" {
		// A switch others could write is not believed off: enforcing.
		write("0", 0o666)
		cfg, err := load(t, nil, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		if !cfg.EnforceSignatures || cfg.EnforceErr == nil || !strings.Contains(cfg.EnforceErr.Error(), "writable") {
			t.Fatalf("untrusted switch: enforcing %v, err %v; want on, with the reason", cfg.EnforceSignatures, cfg.EnforceErr)
		}
	}
}

// TestHelpNamesSigningDefaults: kanade-agent help names upstream's keyring
// and enforcement sources.
func TestHelpNamesSigningDefaults(t *testing.T) {
	code, out, _ := runMain(t, t.Context(), nil, "help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, w := range []string{signing.DefaultKeysFile, signing.DefaultEnforceFile, signing.RegistryKeysValue, signing.RegistryEnforceValue} {
		if !strings.Contains(out, w) {
			t.Errorf("help lacks %q", w)
		}
	}
}

// TestEnforceSwitchReachesTheAgent: with the machine's switch on, the
// running agent enforces (its ping reply says so) and logs where from.
func TestEnforceSwitchReachesTheAgent(t *testing.T) {
	_, enforce := fakeEtc(t)
	if err := os.WriteFile(enforce, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := natstest.TempDir(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		code, _, _ := runMain(t, ctx, map[string]string{"HOME": "/home/u"}, "--data-dir", dir, "--pc-id", "enf-pc", "--embedded-listen", "127.0.0.1:0")
		done <- code
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("Main did not return")
		}
	}()
	lc := readLocalConn(t, dir, 30*time.Second)
	nc, err := nats.Connect(lc.URL, nats.Token(lc.Token))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ping, _ := subject.Ping("enf-pc")
	natstest.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		m, err := nc.Request(ping, nil, time.Second)
		if err != nil {
			return err
		}
		var hb wire.Heartbeat
		if err := json.Unmarshal(m.Data, &hb); err != nil {
			return err
		}
		if !hb.Enforcing {
			return fmt.Errorf("ping reply %s: not enforcing", m.Data)
		}
		return nil
	})
	log, _ := os.ReadFile(LogPath(dir))
	// (The text log quotes the path, doubling Windows backslashes.)
	if !strings.Contains(string(log), "enforce_from=\"file ") || !strings.Contains(string(log), "require-signed-commands") {
		t.Errorf("the log does not say where enforcement comes from:\n%s", log)
	}
}
