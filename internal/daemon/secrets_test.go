package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/embedded"
	"github.com/kanade/kanade-agent/internal/natstest"
)

func TestServiceArgsRefuseSecrets(t *testing.T) {
	for _, args := range [][]string{
		{"--nats-url", "nats://x", "--nats-token", "s3cret"},
		{"--nats-url", "nats://x", "--nats-user", "u", "--nats-password", "s3cret"},
	} {
		f := newFlags(progName)
		if err := f.fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		got, err := f.serviceArgs()
		var ue *UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--nats-token-file") || !strings.Contains(err.Error(), RegistryTokenPath) {
			t.Fatalf("%q: serviceArgs = %q, %v; want a usage error pointing to the token file and the registry", args, got, err)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("the error echoes the secret: %v", err)
		}
	}
	f := newFlags(progName)
	if err := f.fs.Parse([]string{"--nats-url", "nats://x", "--nats-token-file", "tok"}); err != nil {
		t.Fatal(err)
	}
	got, err := f.serviceArgs()
	wd, _ := os.Getwd()
	if err != nil || len(got) != 2 || got[1] != "--nats-token-file="+filepath.Join(wd, "tok") {
		t.Fatalf("serviceArgs with a token file = %q, %v", got, err)
	}
}

func TestTokenFile(t *testing.T) {
	dir := natstest.TempDir(t)
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("  s3cret-token \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := []string{"--nats-url", "nats://x:4222"}

	cfg, err := load(t, append(url, "--nats-token-file", tok), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Token != "s3cret-token" || cfg.TokenFile != tok {
		t.Fatalf("flag: token %q, file %q", cfg.Token, cfg.TokenFile)
	}
	cfg, err = load(t, url, map[string]string{"KANADE_NATS_TOKEN_FILE": tok}, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Token != "s3cret-token" {
		t.Fatalf("env: token %q", cfg.Token)
	}
	// A relative path in the config file is relative to the file.
	cfgDir := natstest.TempDir(t)
	if err := os.WriteFile(filepath.Join(cfgDir, "tok"), []byte("from-config-dir"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(cfgDir, "agent.toml")
	if err := os.WriteFile(cfgFile, []byte("nats_url = \"nats://x\"\nnats_token_file = \"tok\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = load(t, []string{"--config", cfgFile}, nil, "")
	if err != nil {
		t.Fatalf("config file: %v", err)
	}
	if cfg.Token != "from-config-dir" {
		t.Fatalf("config file: token %q", cfg.Token)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"with a token", append(url, "--nats-token-file", tok, "--nats-token", "t"), "--nats-token, --nats-token-file"},
		{"empty", append(url, "--nats-token-file", empty), "is empty"},
		{"missing", append(url, "--nats-token-file", filepath.Join(dir, "nope")), "--nats-token-file"},
		{"without a URL", []string{"--nats-token-file", tok}, "no --nats-url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.args, nil, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cret-token") {
				t.Fatalf("error %v, want one containing %q (and not the token)", err, tc.want)
			}
		})
	}
}

// TestRegistryToken: on Windows the registry value NatsToken is the token
// unless a token flag says otherwise, ahead of KANADE_NATS_TOKEN, as
// upstream. The registry is faked here, so this runs everywhere.
func TestRegistryToken(t *testing.T) {
	old := readRegistryToken
	t.Cleanup(func() { readRegistryToken = old })
	reg, regErr := "from-registry", error(nil)
	readRegistryToken = func() (string, error) { return reg, regErr }
	url := []string{"--nats-url", "nats://x:4222"}
	tokFile := filepath.Join(natstest.TempDir(t), "tok")
	if err := os.WriteFile(tokFile, []byte("from-file"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		file string
		want string
	}{
		{"alone", url, nil, "", "from-registry"},
		{"over the environment", url, map[string]string{"KANADE_NATS_TOKEN": "from-env"}, "", "from-registry"},
		{"over the config file", url, nil, `nats_token = "from-config"`, "from-registry"},
		{"over a token file from the environment", url, map[string]string{"KANADE_NATS_TOKEN_FILE": tokFile}, "", "from-registry"},
		{"under the token flag", append(url, "--nats-token", "from-flag"), nil, "", "from-flag"},
		{"under the token file flag", append(url, "--nats-token-file", tokFile), nil, "", "from-file"},
		{"not with a user", append(url, "--nats-user", "u"), nil, "", ""},
		{"not for the embedded server", nil, nil, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := load(t, tc.args, tc.env, tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Token != tc.want {
				t.Fatalf("token %q, want %q", cfg.Token, tc.want)
			}
		})
	}
	reg = ""
	if cfg, err := load(t, url, map[string]string{"KANADE_NATS_TOKEN": "from-env"}, ""); err != nil {
		t.Fatal(err)
	} else if cfg.Token != "from-env" {
		t.Fatalf("empty registry value: token %q; want the environment's", cfg.Token)
	}
	regErr = errors.New("access denied")
	if _, err := load(t, url, nil, ""); err == nil || !strings.Contains(err.Error(), RegistryTokenPath) {
		t.Fatalf("unreadable registry: %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":        "nats://127.0.0.1:4222",
		"nats://tok3n@h:4222":          "nats://redacted@h:4222",
		"nats://u:pa55@h:4222":         "nats://redacted@h:4222",
		"tls://u:p%40ss@h":             "tls://redacted@h",
		"u:pa55@h:4222":                "redacted@h:4222",
		"nats://a:1,nats://u:pa55@b:2": "nats://a:1,nats://redacted@b:2",
	} {
		if got := redactURLs(in); got != want {
			t.Errorf("redactURLs(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestURLSecretsNotLogged: a token written into --nats-url reaches neither
// the log file (which logs.fetch serves) nor the console.
func TestURLSecretsNotLogged(t *testing.T) {
	const secret = "tok3n-SECRET"
	srv, err := embedded.Start(context.Background(), embedded.Options{StoreDir: natstest.TempDir(t), Listen: "127.0.0.1:-1", Token: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	url := strings.Replace(srv.ClientURL(), "nats://", "nats://"+secret+"@", 1)
	dir := natstest.TempDir(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan string, 1)
	go func() {
		_, _, stderr := runMain(t, ctx, map[string]string{"HOME": "/home/u"}, "--data-dir", dir, "--nats-url", url, "--pc-id", "redact-pc")
		done <- stderr
	}()
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		b, _ := os.ReadFile(LogPath(dir))
		if !strings.Contains(string(b), "agent ready") {
			return errors.New("agent not ready yet")
		}
		return nil
	})
	cancel()
	var console string
	select {
	case console = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Main did not return")
	}
	log, _ := os.ReadFile(LogPath(dir))
	if strings.Contains(string(log), secret) || strings.Contains(console, secret) {
		t.Fatalf("the token is logged:\n%s", log)
	}
	if !strings.Contains(string(log), "redacted@") {
		t.Fatalf("no redacted URL in the log:\n%s", log)
	}
}
