package cli_test

// Helpers shared by the tests of every OS. Each OS's test file
// (cli_unix_test.go, cli_windows_test.go) defines:
//
//	testShell       the shell exec uses in tests: sh on Unix, cmd on Windows
//	nl              the line ending of echo: "\n", or "\r\n" under cmd
//	outErrScript    prints "out" on stdout, "err" on stderr, exits 3
//	sleepScript(n)  a script that runs for about n seconds

import (
	"context"
	"encoding/base64"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/cli"
	"github.com/kanade/kanade-agent/internal/natstest"
)

// out is what one run of the command line gave.
type out struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// call describes one run: arguments, stdin and environment.
type call struct {
	args  []string
	stdin string
	env   map[string]string
}

// run runs the command line in process with an empty environment.
func run(args ...string) out {
	return call{args: args}.run()
}

func (c call) run() out {
	var stdout, stderr natstest.Buffer
	env := cli.Env{
		Stdin:  strings.NewReader(c.stdin),
		Stdout: &stdout,
		Stderr: &stderr,
		Getenv: func(k string) string { return c.env[k] },
	}
	start := time.Now()
	code := cli.Run(context.Background(), c.args, env)
	return out{code: code, stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
}

// want fails t unless o exited with code.
func (o out) want(t *testing.T, code int) out {
	t.Helper()
	if o.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", o.code, code, o.stdout, o.stderr)
	}
	return o
}

// mentions fails t unless s holds each of subs.
func mentions(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not mention %q:\n%s", what, sub, s)
		}
	}
}

// kanade returns a function running the command line against url.
func kanade(url string) func(args ...string) out {
	return func(args ...string) out {
		return run(append([]string{"--nats-url", url}, args...)...)
	}
}

// startAgent runs an agent with pc id pcID against url until the test
// ends, and waits until it is ready.
func startAgent(t *testing.T, url, pcID string, tweak func(*agent.Options)) *agent.Agent {
	t.Helper()
	o := agent.Options{
		PcID: pcID, DataDir: natstest.TempDir(t), Servers: []string{url},
		Logger: slog.New(slog.DiscardHandler), KillGrace: 500 * time.Millisecond, DisableInventory: true,
	}
	if testing.Verbose() {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("pc", pcID)
	}
	if tweak != nil {
		tweak(&o)
	}
	a, err := agent.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent %s Run: %v", pcID, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("agent %s did not stop within 30 s", pcID)
		}
	})
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("agent %s stopped before ready: %v", pcID, err)
	case <-time.After(20 * time.Second):
		t.Fatalf("agent %s not ready within 20 s", pcID)
	}
	return a
}

// keygen makes a key with the CLI in dir and returns the key file and the
// printed keyring entry.
func keygen(t *testing.T, dir, kid string) (keyFile, entry string) {
	t.Helper()
	keyFile = filepath.Join(dir, kid+".key")
	o := run("keygen", "--kid", kid, "--out", keyFile).want(t, 0)
	return keyFile, strings.TrimSpace(o.stdout)
}

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// silentServer listens on 127.0.0.1, accepts connections and never
// answers, as a hung server would; it returns host:port.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}
