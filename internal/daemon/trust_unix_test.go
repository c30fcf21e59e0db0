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

// TestUntrustedFilesRefused: a config file or token file that other users
// could change is refused with a clear error; a private one is read.
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
	}{
		{"private file", chmod(0o600), ""},
		{"readable by all", chmod(0o644), ""},
		{"writable by others", chmod(0o606), "writable by group or others"},
		{"writable by group", chmod(0o660), "writable by group or others"},
		{"in a directory anyone can write", openDir, "directory writable by group or others"},
		{"owned by another user", nobodyOwns, "owned by uid"},
	} {
		for _, kind := range []string{"config", "token"} {
			t.Run(tc.name+"/"+kind, func(t *testing.T) {
				dir := natstest.TempDir(t)
				tok := filepath.Join(dir, "token")
				cfgFile := filepath.Join(dir, "agent.toml")
				if err := os.WriteFile(tok, []byte("s3cret"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(cfgFile, []byte("nats_url = \"nats://x\"\nnats_token_file = \"token\"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				target := cfgFile
				if kind == "token" {
					target = tok
				}
				tc.setup(t, target)
				t.Cleanup(func() { os.Chmod(dir, 0o700) })
				cfg, err := load(t, []string{"--config", cfgFile}, nil, "")
				if tc.want == "" {
					if err != nil || cfg.Token != "s3cret" {
						t.Fatalf("load = %v, want the token read", err)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "refused") {
					t.Fatalf("load = %v, want a refusal mentioning %q", err, tc.want)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("the error shows the token: %v", err)
				}
			})
		}
	}
}
