package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
)

// load parses args and loads the config with env and, if file is not
// empty, a config file holding it.
func load(t *testing.T, args []string, env map[string]string, file string) (*Config, error) {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env["HOME"]; !ok {
		env["HOME"] = "/home/u"
	}
	if file != "" {
		path := filepath.Join(natstest.TempDir(t), "agent.toml")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		env[configEnv] = path
	}
	f := newFlags(progName)
	if err := f.fs.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return loadConfig(f, testSystem(env))
}

// rootPath makes the slash-separated absolute path p absolute on this OS:
// p itself on Unix, C: and p with backslashes on Windows (where /srv/k
// has no drive and so is not absolute).
func rootPath(p string) string {
	if runtime.GOOS == "windows" {
		return `C:` + filepath.FromSlash(p)
	}
	return p
}

func TestPrecedence(t *testing.T) {
	type layers struct {
		file string
		env  map[string]string
		args []string
	}
	for _, tc := range []struct {
		name string
		in   layers
		get  func(*Config) any
		want any
	}{
		{"level default", layers{}, func(c *Config) any { return c.LogLevel }, slog.LevelInfo},
		{"level file", layers{file: `log_level = "debug"`}, func(c *Config) any { return c.LogLevel }, slog.LevelDebug},
		{"level env over file", layers{file: `log_level = "debug"`, env: map[string]string{"KANADE_LOG_LEVEL": "warn"}},
			func(c *Config) any { return c.LogLevel }, slog.LevelWarn},
		{"level flag over env and file", layers{file: `log_level = "debug"`, env: map[string]string{"KANADE_LOG_LEVEL": "warn"}, args: []string{"--log-level", "error"}},
			func(c *Config) any { return c.LogLevel }, slog.LevelError},
		{"level flag over file", layers{file: `log_level = "debug"`, args: []string{"-log-level=warn"}},
			func(c *Config) any { return c.LogLevel }, slog.LevelWarn},
		{"empty env is unset", layers{file: `log_level = "debug"`, env: map[string]string{"KANADE_LOG_LEVEL": ""}},
			func(c *Config) any { return c.LogLevel }, slog.LevelDebug},

		{"urls default none", layers{}, func(c *Config) any { return c.NATSURLs }, []string(nil)},
		{"urls file string", layers{file: `nats_url = "nats://a:4222, nats://b:4222"`},
			func(c *Config) any { return c.NATSURLs }, []string{"nats://a:4222", "nats://b:4222"}},
		{"urls file array", layers{file: `nats_url = ["nats://a:4222", "nats://b:4222"]`},
			func(c *Config) any { return c.NATSURLs }, []string{"nats://a:4222", "nats://b:4222"}},
		{"urls env over file", layers{file: `nats_url = "nats://a:4222"`, env: map[string]string{"KANADE_NATS_URL": "nats://e:4222"}},
			func(c *Config) any { return c.NATSURLs }, []string{"nats://e:4222"}},
		{"urls empty flag over env selects embedded", layers{env: map[string]string{"KANADE_NATS_URL": "nats://e:4222"}, args: []string{"--nats-url="}},
			func(c *Config) any { return c.NATSURLs }, []string(nil)},

		{"enforce default", layers{}, func(c *Config) any { return c.EnforceSignatures }, false},
		{"enforce file", layers{file: `enforce_signatures = true`}, func(c *Config) any { return c.EnforceSignatures }, true},
		{"enforce env over file", layers{file: `enforce_signatures = true`, env: map[string]string{"KANADE_ENFORCE_SIGNATURES": "false"}},
			func(c *Config) any { return c.EnforceSignatures }, false},
		{"enforce bare flag over env", layers{env: map[string]string{"KANADE_ENFORCE_SIGNATURES": "false"}, args: []string{"--enforce-signatures"}},
			func(c *Config) any { return c.EnforceSignatures }, true},
		{"enforce flag false over file", layers{file: `enforce_signatures = true`, args: []string{"--enforce-signatures=false"}},
			func(c *Config) any { return c.EnforceSignatures }, false},

		{"data dir default", layers{}, func(c *Config) any { return c.DataDir }, "/home/u/.local/state/kanade"},
		{"data dir env", layers{env: map[string]string{"KANADE_DATA_DIR": rootPath("/srv/k")}}, func(c *Config) any { return c.DataDir }, rootPath("/srv/k")},
		{"data dir flag over env", layers{env: map[string]string{"KANADE_DATA_DIR": rootPath("/srv/k")}, args: []string{"--data-dir", rootPath("/opt/k")}},
			func(c *Config) any { return c.DataDir }, rootPath("/opt/k")},

		{"pc id default sanitized host name", layers{}, func(c *Config) any { return c.PcID }, "test-host"},
		{"pc id file", layers{file: `pc_id = "from-file"`}, func(c *Config) any { return c.PcID }, "from-file"},
		{"pc id env over file", layers{file: `pc_id = "from-file"`, env: map[string]string{"KANADE_PC_ID": "from-env"}},
			func(c *Config) any { return c.PcID }, "from-env"},
		{"pc id flag over env", layers{env: map[string]string{"KANADE_PC_ID": "from-env"}, args: []string{"--pc-id", "from-flag"}},
			func(c *Config) any { return c.PcID }, "from-flag"},
		{"pc id flag kept verbatim", layers{args: []string{"--pc-id", "Kanade-PC01_x=1"}}, func(c *Config) any { return c.PcID }, "Kanade-PC01_x=1"},
		{"pc id env kept verbatim", layers{env: map[string]string{"KANADE_PC_ID": "ABC"}}, func(c *Config) any { return c.PcID }, "ABC"},
		{"pc id file kept verbatim", layers{file: `pc_id = "Sales-PC"`}, func(c *Config) any { return c.PcID }, "Sales-PC"},

		{"restart wait default", layers{}, func(c *Config) any { return c.UpdateRestartWait }, 15 * time.Minute},
		{"allow downgrade default", layers{}, func(c *Config) any { return c.AllowDowngrade }, false},
		{"allow downgrade flag", layers{args: []string{"--allow-downgrade"}}, func(c *Config) any { return c.AllowDowngrade }, true},
		{"allow downgrade file", layers{file: `allow_downgrade = true`}, func(c *Config) any { return c.AllowDowngrade }, true},
		{"restart wait file", layers{file: `update_restart_wait = "90s"`}, func(c *Config) any { return c.UpdateRestartWait }, 90 * time.Second},
		{"restart wait flag zero", layers{file: `update_restart_wait = "90s"`, args: []string{"--update-restart-wait", "0"}},
			func(c *Config) any { return c.UpdateRestartWait }, time.Duration(0)},

		{"max store default", layers{}, func(c *Config) any { return c.EmbeddedMaxStore }, int64(0)},
		{"max store file integer", layers{file: `embedded_max_store = 1048576`}, func(c *Config) any { return c.EmbeddedMaxStore }, int64(1 << 20)},
		{"max store env unit", layers{env: map[string]string{"KANADE_EMBEDDED_MAX_STORE": "2GiB"}}, func(c *Config) any { return c.EmbeddedMaxStore }, int64(2 << 30)},
		{"max store flag unit", layers{args: []string{"--embedded-max-store", "512 mib"}}, func(c *Config) any { return c.EmbeddedMaxStore }, int64(512 << 20)},

		{"inbox prefix default", layers{}, func(c *Config) any { return c.InboxPrefix }, ""},
		{"inbox prefix flag", layers{args: []string{"--nats-inbox-prefix", "_INBOX.pc-1"}}, func(c *Config) any { return c.InboxPrefix }, "_INBOX.pc-1"},
		{"js domain file", layers{file: `nats_js_domain = "hub"`}, func(c *Config) any { return c.JSDomain }, "hub"},
		{"exec consumer default", layers{}, func(c *Config) any { return c.ExecConsumer }, "create"},
		{"exec consumer file", layers{file: `exec_consumer = "bind"`}, func(c *Config) any { return c.ExecConsumer }, "bind"},
		{"exec consumer flag over env", layers{env: map[string]string{"KANADE_EXEC_CONSUMER": "bind"}, args: []string{"--exec-consumer", "create"}},
			func(c *Config) any { return c.ExecConsumer }, "create"},

		{"listen default: no TCP port", layers{}, func(c *Config) any { return c.EmbeddedListen }, ""},
		{"listen env", layers{env: map[string]string{"KANADE_EMBEDDED_LISTEN": "127.0.0.1:0"}}, func(c *Config) any { return c.EmbeddedListen }, "127.0.0.1:0"},
		{"format default", layers{}, func(c *Config) any { return c.LogFormat }, "text"},
		{"format file", layers{file: `log_format = "json"`}, func(c *Config) any { return c.LogFormat }, "json"},
		{"token env", layers{env: map[string]string{"KANADE_NATS_TOKEN": "s3cret", "KANADE_NATS_URL": "nats://x"}},
			func(c *Config) any { return c.Token }, "s3cret"},
		{"user and password", layers{file: "nats_url = \"nats://x\"\nnats_user = \"u\"", env: map[string]string{"KANADE_NATS_PASSWORD": "p"}},
			func(c *Config) any { return c.User + ":" + c.Password }, "u:p"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := load(t, tc.in.args, tc.in.env, tc.in.file)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.get(cfg); fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestConfigFlagOverridesConfigEnv(t *testing.T) {
	dir := natstest.TempDir(t)
	a, b := filepath.Join(dir, "a.toml"), filepath.Join(dir, "b.toml")
	os.WriteFile(a, []byte(`pc_id = "from-a"`), 0o600)
	os.WriteFile(b, []byte(`pc_id = "from-b"`), 0o600)
	cfg, err := load(t, []string{"--config", b}, map[string]string{configEnv: a}, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PcID != "from-b" || cfg.ConfigFile != b {
		t.Fatalf("pc id %q from %q, want from-b from %s", cfg.PcID, cfg.ConfigFile, b)
	}
}

func TestFilePathsRelativeToFile(t *testing.T) {
	keyring := rootPath("/abs/keys.json")
	cfg, err := load(t, nil, nil, fmt.Sprintf("data_dir = \"data\"\nkeyring = %q\n", keyring))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(cfg.DataDir) != "data" || filepath.Dir(cfg.DataDir) != filepath.Dir(cfg.ConfigFile) {
		t.Errorf("data dir %q is not next to %q", cfg.DataDir, cfg.ConfigFile)
	}
	if cfg.KeyringFile != keyring {
		t.Errorf("keyring %q", cfg.KeyringFile)
	}
}

func TestRelativeFlagPathIsMadeAbsolute(t *testing.T) {
	cfg, err := load(t, []string{"--data-dir", "rel"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if cfg.DataDir != filepath.Join(wd, "rel") {
		t.Fatalf("data dir %q", cfg.DataDir)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		file string
		want []string // substrings of the error
	}{
		{"unknown key", nil, nil, "pc_id = \"x\"\nnats_urls = \"nats://x\"\n", []string{`unknown key "nats_urls"`, "known keys:", "nats_url"}},
		{"unknown table", nil, nil, "[nats]\nurl = \"nats://x\"\n", []string{`unknown key "nats"`}},
		{"syntax", nil, nil, "pc_id = ", []string{"config file", "agent.toml"}},
		{"bool as string", nil, nil, `enforce_signatures = "yes"`, []string{"key enforce_signatures", "want true or false, got a string"}},
		{"level as number", nil, nil, `log_level = 3`, []string{"key log_level", "want a string, got an integer"}},
		{"url array of numbers", nil, nil, `nats_url = [1]`, []string{"key nats_url", "element 0"}},
		{"bad level file", nil, nil, `log_level = "loud"`, []string{"invalid log-level", "key log_level", `"loud"`, "debug, info, warn or error"}},
		{"bad level env", nil, map[string]string{"KANADE_LOG_LEVEL": "loud"}, "", []string{"invalid log-level (from environment variable KANADE_LOG_LEVEL)"}},
		{"bad level flag", []string{"--log-level", "trace"}, nil, "", []string{"invalid log-level (from flag --log-level)", `"trace"`}},
		{"bad format", []string{"--log-format", "xml"}, nil, "", []string{"invalid log-format", "text or json"}},
		{"bad exec consumer", nil, nil, `exec_consumer = "pull"`, []string{"invalid exec-consumer", "create or bind"}},
		{"bad bool env", nil, map[string]string{"KANADE_ENFORCE_SIGNATURES": "maybe"}, "", []string{"invalid enforce-signatures", "KANADE_ENFORCE_SIGNATURES"}},
		{"bad duration", []string{"--update-restart-wait", "soon"}, nil, "", []string{"invalid update-restart-wait", "90s or 15m"}},
		{"negative duration", nil, map[string]string{"KANADE_UPDATE_RESTART_WAIT": "-1m"}, "", []string{"invalid update-restart-wait", "KANADE_UPDATE_RESTART_WAIT"}},
		{"bad size", []string{"--embedded-max-store", "2GB"}, nil, "", []string{"invalid embedded-max-store", "2GiB"}},
		{"size overflow", []string{"--embedded-max-store", "9999999999TiB"}, nil, "", []string{"invalid embedded-max-store"}},
		{"size as bool", nil, nil, `embedded_max_store = true`, []string{"key embedded_max_store", "want a byte count"}},
		{"inbox prefix wildcard", []string{"--nats-inbox-prefix", "_INBOX.*"}, nil, "", []string{"invalid nats-inbox-prefix", "'*'"}},
		{"inbox prefix empty token", []string{"--nats-inbox-prefix", "_INBOX..x"}, nil, "", []string{"invalid nats-inbox-prefix", "empty"}},
		{"js domain with dot", nil, map[string]string{"KANADE_NATS_JS_DOMAIN": "a.b"}, "", []string{"invalid nats-js-domain", "'.'"}},
		{"bad listen", []string{"--embedded-listen", "localhost"}, nil, "", []string{"invalid embedded-listen", "host:port"}},
		{"bad listen port", []string{"--embedded-listen", "127.0.0.1:99999"}, nil, "", []string{"invalid embedded-listen", "port"}},
		{"empty url in list", []string{"--nats-url", "nats://a,,nats://b"}, nil, "", []string{"invalid nats-url", "empty URL"}},
		{"bad pc id", []string{"--pc-id", "a.b"}, nil, "", []string{"invalid pc-id", "'.'"}},
		{"pc id with a space", []string{"--pc-id", "Sales PC"}, nil, "", []string{"invalid pc-id", `"Sales PC"`}},
		{"pc id with a wildcard", nil, map[string]string{"KANADE_PC_ID": "pc*"}, "", []string{"invalid pc-id (from environment variable KANADE_PC_ID)"}},
		{"pc id too long", []string{"--pc-id", strings.Repeat("P", 129)}, nil, "", []string{"invalid pc-id", "over 128"}},
		{"two credentials", []string{"--nats-url", "nats://x", "--nats-token", "t", "--nats-creds", "/c"}, nil, "", []string{"conflicting NATS credentials", "--nats-token", "--nats-creds"}},
		{"password without user", []string{"--nats-url", "nats://x", "--nats-password", "p"}, nil, "", []string{"--nats-password needs --nats-user"}},
		{"cert without key", []string{"--nats-url", "nats://x", "--tls-cert", "/c"}, nil, "", []string{"--tls-cert and --tls-key"}},
		{"creds without url", []string{"--nats-creds", "/c"}, nil, "", []string{"--nats-creds set but no --nats-url", "embedded"}},
		{"tls without url", nil, map[string]string{"KANADE_TLS_CA": "/ca.pem"}, "", []string{"--tls-ca set but no --nats-url"}},
		{"missing config file", []string{"--config", rootPath("/nonexistent/agent.toml")}, nil, "", []string{rootPath("/nonexistent/agent.toml")}},
		{"missing creds file", []string{"--nats-url", "nats://x", "--nats-creds", rootPath("/nonexistent/agent.creds")}, nil, "", []string{"--nats-creds " + rootPath("/nonexistent/agent.creds") + ": no such file"}},
		{"missing CA file", []string{"--nats-url", "nats://x", "--nats-token", "t", "--tls-ca", rootPath("/nonexistent/ca.pem")}, nil, "", []string{"--tls-ca " + rootPath("/nonexistent/ca.pem") + ": no such file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.args, tc.env, tc.file)
			if err == nil {
				t.Fatal("no error")
			}
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Errorf("%T is not a *UsageError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestSecretNotEchoed(t *testing.T) {
	// A check failure on a secret setting must not print the secret; today no
	// secret has a check, so make sure of that instead.
	for _, s := range settings {
		if s.kind == kindSecret && s.check != nil {
			t.Errorf("secret %s has a check; make sure its error does not echo the value", s.flag)
		}
	}
}

func TestEverySettingHasEnvAndKey(t *testing.T) {
	var envs, keys []string
	for _, s := range settings {
		if !strings.HasPrefix(s.env, "KANADE_") || s.key() == "" || s.usage == "" {
			t.Errorf("setting %+v is incomplete", s)
		}
		envs, keys = append(envs, s.env), append(keys, s.key())
	}
	slices.Sort(envs)
	slices.Sort(keys)
	if len(slices.Compact(envs)) != len(settings) || len(slices.Compact(keys)) != len(settings) {
		t.Error("duplicate environment variable or key")
	}
}

func TestServiceArgs(t *testing.T) {
	f := newFlags(progName)
	if err := f.fs.Parse([]string{"--log-level", "debug", "--data-dir", "rel", "--config", "agent.toml"}); err != nil {
		t.Fatal(err)
	}
	got, err := f.serviceArgs()
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	want := []string{"--config=" + filepath.Join(wd, "agent.toml"), "--data-dir=" + filepath.Join(wd, "rel"), "--log-level=debug"}
	if !slices.Equal(got, want) {
		t.Fatalf("serviceArgs = %q, want %q", got, want)
	}
}
