package cli_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/kanade/kanade-agent/internal/cli"
)

// TestUsageErrors: a bad command line exits 2 with a message naming the
// problem, before any connection is tried (the URL goes nowhere: a
// connection attempt would exit 1).
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		mention string
	}{
		{"no command", nil, nil, "Usage: kanade"},
		{"unknown command", []string{"frobnicate"}, nil, `unknown command "frobnicate"`},
		{"unknown global flag", []string{"--bogus", "ping", "x"}, nil, "unknown flag --bogus"},
		{"command flag before the command", []string{"--pc", "x", "exec", "echo"}, nil, "unknown flag --pc"},
		{"exec without target", []string{"exec", "echo hi"}, nil, "give exactly one target"},
		{"exec with two targets", []string{"exec", "--pc", "a", "--all", "echo hi"}, nil, "give exactly one target"},
		{"exec without script", []string{"exec", "--pc", "a"}, nil, "no script"},
		{"exec blank script", []string{"exec", "--pc", "a", " "}, nil, "no script"},
		{"exec bad shell", []string{"exec", "--pc", "a", "--shell", "bash", "echo"}, nil, `--shell "bash"`},
		{"exec bad pc", []string{"exec", "--pc", "a.b", "echo"}, nil, `invalid pc_id "a.b"`},
		{"exec bad group", []string{"exec", "--group", "g*", "echo"}, nil, `invalid group "g*"`},
		{"exec bad exec id", []string{"exec", "--pc", "a", "--exec-id", "x y", "echo"}, nil, "--exec-id"},
		{"exec zero timeout-secs", []string{"exec", "--pc", "a", "--timeout-secs", "0", "echo"}, nil, "--timeout-secs 0"},
		{"exec bad wait", []string{"exec", "--pc", "a", "--wait", "-1s", "echo"}, nil, "--wait -1s"},
		{"exec wait not a duration", []string{"exec", "--pc", "a", "--wait", "10", "echo"}, nil, "--wait"},
		{"ping without pc", []string{"ping"}, nil, "missing pc id"},
		{"ping two pcs", []string{"ping", "a", "b"}, nil, "want one pc id"},
		{"ping bad pc", []string{"ping", "a>"}, nil, `invalid pc_id "a>"`},
		{"logs negative tail", []string{"logs", "a", "--tail", "-1"}, nil, "--tail -1"},
		{"logs without pc", []string{"logs", "--tail", "5"}, nil, "missing pc id"},
		{"kill without id", []string{"kill"}, nil, "missing exec id"},
		{"kill wildcard", []string{"kill", "*"}, nil, `invalid exec_id "*"`},
		{"provision argument", []string{"provision", "now"}, nil, "takes no arguments"},
		{"consumer without subcommand", []string{"consumer"}, nil, "sync or ls"},
		{"consumer unknown subcommand", []string{"consumer", "rm"}, nil, `unknown consumer subcommand "rm"`},
		{"consumer sync argument", []string{"consumer", "sync", "pc-a"}, nil, "name PCs with --pc"},
		{"consumer sync bad pc", []string{"consumer", "sync", "--pc", "a.b"}, nil, `invalid pc_id "a.b"`},
		{"consumer ls with pc", []string{"consumer", "ls", "--pc", "a"}, nil, "no --pc or --watch"},
		{"keygen without kid", []string{"keygen", "--out", "x"}, nil, "--kid is required"},
		{"keygen without out", []string{"keygen", "--kid", "x"}, nil, "--out is required"},
		{"release without subcommand", []string{"release"}, nil, "put or ls"},
		{"release unknown subcommand", []string{"release", "rm"}, nil, `unknown release subcommand "rm"`},
		{"release put without version", []string{"release", "put", "--file", "x"}, nil, "--version is required"},
		{"release put without file", []string{"release", "put", "--version", "1.0.0"}, nil, "--file is required"},
		{"version argument", []string{"version", "x"}, nil, "no arguments"},
		{"help unknown", []string{"help", "nope"}, nil, `unknown command "nope"`},
		{"bad timeout", []string{"--timeout", "0s", "ping", "a"}, nil, "--timeout 0s must be positive"},
		{"bad timeout after the command", []string{"ping", "a", "--timeout", "x"}, nil, "--timeout"},
		{"bad timeout env", []string{"ping", "a"}, map[string]string{"KANADE_TIMEOUT": "soon"}, "KANADE_TIMEOUT"},
		{"two credentials", []string{"--nats-token", "t", "--nats-user", "u", "ping", "a"}, nil, "at most one of"},
		{"two credentials from env", []string{"ping", "a"}, map[string]string{"KANADE_NATS_TOKEN": "t", "KANADE_NATS_CREDS": "c"}, "at most one of"},
		{"password without user", []string{"--nats-password", "p", "ping", "a"}, nil, "--nats-password needs --nats-user"},
		{"cert without key", []string{"--tls-cert", "c", "ping", "a"}, nil, "--tls-cert and --tls-key"},
		{"empty url", []string{"--nats-url", " , ", "ping", "a"}, nil, "--nats-url is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"KANADE_NATS_URL": "nats://127.0.0.1:1"}
			for k, v := range tt.env {
				env[k] = v
			}
			o := call{args: tt.args, env: env}.run().want(t, cli.ExitUsage)
			mentions(t, "stderr", o.stderr, tt.mention)
			if o.stdout != "" {
				t.Errorf("stdout %q, want nothing", o.stdout)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	o := run("help").want(t, 0)
	for _, c := range []string{"exec", "ping", "logs", "kill", "provision", "keygen", "release", "version", "help", "--nats-url", "KANADE_NATS_URL", "--timeout"} {
		mentions(t, "help", o.stdout, c)
	}
	if o2 := run("-h").want(t, 0); o2.stdout != o.stdout {
		t.Errorf("kanade -h differs from kanade help")
	}
	for _, args := range [][]string{
		{"exec", "-h"}, {"help", "exec"}, {"ping", "--help"}, {"logs", "-h"}, {"kill", "-h"}, {"provision", "-h"},
		{"keygen", "-h"}, {"release", "-h"}, {"release", "put", "-h"}, {"release", "ls", "-h"}, {"help", "release"},
	} {
		o := run(args...).want(t, 0)
		name := args[0]
		if name == "help" {
			name = args[1]
		}
		if len(args) == 3 {
			name += " " + args[1]
		}
		mentions(t, strings.Join(args, " "), o.stdout, "Usage: kanade "+name, "Global flags")
	}
	o = run("logs", "pc-1", "-h").want(t, 0)
	mentions(t, "logs pc-1 -h", o.stdout, "Usage: kanade logs", "--tail N")
	o = run("exec", "-h").want(t, 0)
	mentions(t, "exec -h", o.stdout, "--pc ID", "--timeout-secs N", "--wait D", "--json", "Exit code")
	o = run("release", "put", "-h").want(t, 0)
	mentions(t, "release put -h", o.stdout, "--version V", "--file BINARY", "--key FILE")
}

func TestVersion(t *testing.T) {
	t.Parallel()
	o := run("version").want(t, 0)
	if !strings.HasPrefix(o.stdout, "kanade ") || !strings.Contains(o.stdout, runtime.GOOS+"/"+runtime.GOARCH) {
		t.Errorf("version: %q", o.stdout)
	}
}

// TestGlobalFlagsAnywhere: global flags work before and after the command
// name (here a refused connection shows which URL was used).
func TestGlobalFlagsAnywhere(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--nats-url", "nats://127.0.0.1:2", "ping", "a"},
		{"ping", "--nats-url", "nats://127.0.0.1:2", "a"},
		{"ping", "a", "--nats-url", "nats://127.0.0.1:2"},
		{"release", "--nats-url", "nats://127.0.0.1:2", "ls"},
	} {
		o := call{args: args, env: map[string]string{"KANADE_NATS_URL": "nats://127.0.0.1:1"}}.run().want(t, 1)
		mentions(t, strings.Join(args, " "), o.stderr, "nats://127.0.0.1:2")
	}
	// After "--" everything is positional, even what looks like a flag.
	o := run("--nats-url", "nats://127.0.0.1:2", "kill", "--", "-odd-id").want(t, 1)
	mentions(t, "kill -- -odd-id", o.stderr, "cannot connect")
	o = call{args: []string{"ping", "a"}, env: map[string]string{"KANADE_NATS_URL": "nats://127.0.0.1:3,nats://127.0.0.1:4"}}.run().want(t, 1)
	mentions(t, "env URL list", o.stderr, "nats://127.0.0.1:3,nats://127.0.0.1:4")
}
