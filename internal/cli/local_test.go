package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/embedded"
	"github.com/kanade/kanade-agent/internal/cli"
	"github.com/kanade/kanade-agent/internal/natstest"
)

// localAgent starts an embedded server with a token and a TCP port (and a
// local socket where the OS has them), an agent connected to it in process,
// and writes the credentials file a kanade-agent would into a data
// directory, which it returns with the server.
func localAgent(t *testing.T, pcID string) (string, *embedded.Server, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := embedded.Start(ctx, embedded.Options{StoreDir: natstest.TempDir(t), Listen: "127.0.0.1:-1", Token: "local-s3cret-token"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	startAgent(t, embedded.InProcessURL, pcID, func(o *agent.Options) { o.NATSOptions = srv.ConnectOptions() })
	dir, err := os.MkdirTemp("", "kc") // short: a socket path is limited to about 100 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := ""
	if err := srv.ServeLocal(filepath.Join(dir, "nats.sock")); err == nil {
		sock = filepath.Join(dir, "nats.sock")
	} else if runtime.GOOS != "windows" {
		t.Fatal(err)
	}
	return dir, srv, sock
}

func writeLocalConn(t *testing.T, dir string, v map[string]string) {
	t.Helper()
	b, _ := json.Marshal(v)
	writeFile(t, dir, cli.LocalConnFile, string(b))
}

// TestLocalAgentWithoutURL: without --nats-url, kanade reaches the local
// agent's embedded server named by the credentials file in --data-dir (or
// KANADE_DATA_DIR), through its socket or its TCP port, with its token.
func TestLocalAgentWithoutURL(t *testing.T) {
	dir, srv, sock := localAgent(t, "local-pc")
	if sock != "" {
		writeLocalConn(t, dir, map[string]string{"token": "local-s3cret-token", "socket": sock})
		o := run("--data-dir", dir, "exec", "--pc", "local-pc", "echo hi").want(t, 0)
		if o.stdout != "hi"+nl {
			t.Fatalf("through the socket: stdout %q", o.stdout)
		}
	}
	writeLocalConn(t, dir, map[string]string{"token": "local-s3cret-token", "url": srv.ClientURL()})
	o := call{args: []string{"exec", "--pc", "local-pc", "echo hi"}, env: map[string]string{"KANADE_DATA_DIR": dir}}.run().want(t, 0)
	if o.stdout != "hi"+nl {
		t.Fatalf("through the TCP port: stdout %q", o.stdout)
	}
	// --nats-url naming the file's address: its token is used too.
	call{args: []string{"--nats-url", srv.ClientURL(), "ping", "local-pc"}, env: map[string]string{"KANADE_DATA_DIR": dir}}.run().want(t, 0)
	// Without the file the port refuses the CLI.
	o = call{args: []string{"--nats-url", srv.ClientURL(), "--timeout", "5s", "ping", "local-pc"}, env: map[string]string{"KANADE_DATA_DIR": natstest.TempDir(t)}}.run().want(t, 1)
	mentions(t, "stderr", o.stderr, "uthorization")
	// A --data-dir without the file is an error, not a silent fallback.
	o = run("--data-dir", natstest.TempDir(t), "ping", "local-pc").want(t, 1)
	mentions(t, "stderr", o.stderr, cli.LocalConnFile)
	// A file that is not a credentials file is named.
	writeFile(t, dir, cli.LocalConnFile, "garbage")
	o = run("--data-dir", dir, "ping", "local-pc").want(t, 1)
	mentions(t, "stderr", o.stderr, "not a kanade-agent credentials file")
}

// TestHelpSaysHowToReachTheLocalAgent: kanade help tells where the
// credentials are read from and who may read them.
func TestHelpSaysHowToReachTheLocalAgent(t *testing.T) {
	o := run("help").want(t, 0)
	mentions(t, "kanade help", o.stdout, "--data-dir", "KANADE_DATA_DIR", cli.LocalConnFile, "run kanade as root", "local socket")
}

// TestTokenFileAndRegistry: --nats-token-file reads the token from a file;
// on Windows the registry value NatsToken (faked here) is the token for
// --nats-url ahead of KANADE_NATS_TOKEN, not ahead of the flags.
func TestTokenFileAndRegistry(t *testing.T) {
	_, srv, _ := localAgent(t, "tok-pc")
	url := srv.ClientURL()
	dir := natstest.TempDir(t)
	good := writeFile(t, dir, "good", " local-s3cret-token\n")
	empty := writeFile(t, dir, "empty", "\n")
	noLocal := natstest.TempDir(t)
	env := func(kv ...string) map[string]string {
		m := map[string]string{"KANADE_DATA_DIR": noLocal, "KANADE_TIMEOUT": "5s"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	call{args: []string{"--nats-url", url, "--nats-token-file", good, "ping", "tok-pc"}, env: env()}.run().want(t, 0)
	call{args: []string{"--nats-url", url, "ping", "tok-pc"}, env: env("KANADE_NATS_TOKEN_FILE", good)}.run().want(t, 0)
	o := call{args: []string{"--nats-url", url, "--nats-token-file", empty, "ping", "tok-pc"}, env: env()}.run().want(t, 2)
	mentions(t, "stderr", o.stderr, "is empty")
	o = call{args: []string{"--nats-url", url, "--nats-token-file", good, "--nats-token", "x", "ping", "tok-pc"}, env: env()}.run().want(t, 2)
	mentions(t, "stderr", o.stderr, "only one of --nats-token and --nats-token-file")

	restore := cli.SetRegistryToken(func() (string, error) { return "local-s3cret-token", nil })
	defer restore()
	call{args: []string{"--nats-url", url, "ping", "tok-pc"}, env: env()}.run().want(t, 0)
	call{args: []string{"--nats-url", url, "ping", "tok-pc"}, env: env("KANADE_NATS_TOKEN", "wrong")}.run().want(t, 0)
	o = call{args: []string{"--nats-url", url, "--nats-token", "wrong", "ping", "tok-pc"}, env: env()}.run().want(t, 1)
	mentions(t, "stderr", o.stderr, "uthorization")
}
