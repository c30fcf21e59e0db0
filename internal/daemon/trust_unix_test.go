//go:build unix

package daemon

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kanade/kanade-agent/internal/natstest"
)

// TestUntrustedFilesRefused: a config, token, credentials, nkey, TLS key
// or CA file that other users could change is refused with a clear error;
// one holding a secret (a token, the config file when it holds one, a
// seed, a key) is refused when others can read it too; a private one is
// read.
func TestUntrustedFilesRefused(t *testing.T) {
	type setup func(t *testing.T, path string)
	chmod := func(mode os.FileMode) setup {
		return func(t *testing.T, path string) {
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	openDir := func(t *testing.T, path string) {
		if err := os.Chmod(filepath.Dir(path), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	nobodyOwns := func(t *testing.T, path string) {
		if os.Geteuid() != 0 {
			t.Skip("needs root, to give the file to user nobody (CI runs as root)")
		}
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		if err := os.Chown(path, uid, -1); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		setup setup
		want  string // "" = accepted
		// wantSecret replaces want for a file holding a secret
		// ("-" = same as want).
		wantSecret string
	}{
		{"private file", chmod(0o600), "", "-"},
		{"readable by all", chmod(0o644), "", "secret readable by group or others"},
		{"writable by others", chmod(0o606), "writable by group or others", "-"},
		{"writable by group", chmod(0o660), "writable by group or others", "-"},
		{"in a directory anyone can write", openDir, "directory writable by group or others", "-"},
		{"owned by another user", nobodyOwns, "owned by uid", "-"},
	} {
		// kind: which file is set up, and what the config file says.
		for _, k := range []struct {
			kind, toml, target string
			secret             bool
		}{
			{"config", `nats_token_file = "token"`, "agent.toml", false},
			{"token", `nats_token_file = "token"`, "token", true},
			{"config holding the token", `nats_token = "s3cret"`, "agent.toml", true},
			{"creds", `nats_creds = "agent.creds"`, "agent.creds", true},
			{"nkey", `nats_nkey = "agent.nk"`, "agent.nk", true},
			{"tls key", "nats_token_file = \"token\"\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"", "key.pem", true},
			{"tls ca", "nats_token_file = \"token\"\ntls_ca = \"ca.pem\"", "ca.pem", false},
		} {
			t.Run(tc.name+"/"+k.kind, func(t *testing.T) {
				dir := natstest.TempDir(t)
				for _, f := range []string{"token", "agent.creds", "agent.nk", "cert.pem", "key.pem", "ca.pem"} {
					if err := os.WriteFile(filepath.Join(dir, f), []byte("s3cret"), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				cfgFile := filepath.Join(dir, "agent.toml")
				if err := os.WriteFile(cfgFile, []byte("nats_url = \"nats://x\"\n"+k.toml+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				tc.setup(t, filepath.Join(dir, k.target))
				t.Cleanup(func() { os.Chmod(dir, 0o700) })
				want := tc.want
				if k.secret && tc.wantSecret != "-" {
					want = tc.wantSecret
				}
				cfg, err := load(t, []string{"--config", cfgFile}, nil, "")
				if want == "" {
					if err != nil || cfg.Token != "s3cret" && cfg.CredsFile == "" && cfg.NKeyFile == "" {
						t.Fatalf("load = %v, want the config read", err)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "refused") {
					t.Fatalf("load = %v, want a refusal mentioning %q", err, want)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("the error shows the token: %v", err)
				}
			})
		}
	}
}
