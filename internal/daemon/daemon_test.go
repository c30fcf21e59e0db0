package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// runMain runs the command line in process with environment env.
func runMain(t *testing.T, ctx context.Context, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut natstest.Buffer
	code = mainContext(ctx, args, testSystem(env), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestVersionCommand(t *testing.T) {
	old := agent.Version
	agent.Version = "1.2.3-test"
	t.Cleanup(func() { agent.Version = old })
	code, out, _ := runMain(t, context.Background(), nil, "version")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	want := fmt.Sprintf("kanade-agent 1.2.3-test (%s %s/%s)\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if out != want {
		t.Fatalf("version printed %q, want %q", out, want)
	}
}

func TestVersionFallback(t *testing.T) {
	old := agent.Version
	agent.Version = "dev"
	t.Cleanup(func() { agent.Version = old })
	// A test binary has no module version, so the fallback is "dev".
	if v := Version(); v != "dev" {
		t.Fatalf("Version() = %q, want dev", v)
	}
	agent.Version = ""
	if v := Version(); v != "dev" {
		t.Fatalf("Version() with an empty agent.Version = %q, want dev", v)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		code, out, _ := runMain(t, context.Background(), nil, args...)
		if code != 0 {
			t.Errorf("%q: exit %d", args, code)
		}
		for _, s := range settings {
			for _, w := range []string{"--" + s.flag, s.env, s.key()} {
				if !strings.Contains(out, w) {
					t.Errorf("%q: usage lacks %q", args, w)
				}
			}
		}
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"unknown flag", nil, []string{"--nope"}, "flag provided but not defined: -nope"},
		{"unknown command", nil, []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"two commands", nil, []string{"version", "inventory"}, `unexpected argument "inventory"`},
		{"bad log level", nil, []string{"--log-level", "loud"}, "invalid log-level (from flag --log-level)"},
		{"bad log level env", map[string]string{"KANADE_LOG_LEVEL": "loud"}, nil, "KANADE_LOG_LEVEL"},
		{"bad log level for inventory", nil, []string{"inventory", "--log-level", "loud"}, "invalid log-level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runMain(t, context.Background(), tc.env, tc.args...)
			if code != ExitUsage {
				t.Errorf("exit %d, want %d", code, ExitUsage)
			}
			if !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "kanade-agent -h") {
				t.Errorf("stderr %q does not contain %q and the usage hint", stderr, tc.want)
			}
		})
	}
}

func TestServiceCommandsOutsideWindows(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("install and uninstall are real on Windows")
	}
	for _, cmd := range []string{"install", "uninstall"} {
		code, _, stderr := runMain(t, context.Background(), map[string]string{"HOME": "/home/u"}, cmd)
		if code != ExitUsage || !strings.Contains(stderr, "Windows service") {
			t.Errorf("%s: exit %d, stderr %q", cmd, code, stderr)
		}
	}
}

func TestInventoryCommand(t *testing.T) {
	code, out, stderr := runMain(t, context.Background(), map[string]string{"HOME": "/home/u"}, "inventory", "--pc-id", "pc-inv")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	var cats []string
	for dec.More() {
		var r wire.InventoryReport
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		if r.PcID != "pc-inv" || r.Hash == "" || len(r.Data) == 0 {
			t.Fatalf("report %+v", r)
		}
		cats = append(cats, r.Category)
	}
	if !slices.Equal(cats, wire.Categories) {
		t.Fatalf("categories %v, want %v", cats, wire.Categories)
	}
}

func TestInventoryHook(t *testing.T) {
	old := inventoryCmd
	t.Cleanup(func() { inventoryCmd = old })
	var gotPC string
	inventoryCmd = func(ctx context.Context, pcID string, w io.Writer) error {
		gotPC = pcID
		_, err := io.WriteString(w, `{"ok":true}`+"\n")
		return err
	}
	code, out, stderr := runMain(t, context.Background(), map[string]string{"HOME": "/home/u"}, "inventory", "--pc-id", "pc-7")
	if code != 0 || out != "{\"ok\":true}\n" || gotPC != "pc-7" {
		t.Fatalf("exit %d, stdout %q, stderr %q, pc id %q", code, out, stderr, gotPC)
	}
	inventoryCmd = func(context.Context, string, io.Writer) error { return errors.New("wmi broke") }
	code, _, stderr = runMain(t, context.Background(), map[string]string{"HOME": "/home/u"}, "inventory")
	if code != ExitFailure || !strings.Contains(stderr, "wmi broke") {
		t.Fatalf("failing collector: exit %d, stderr %q", code, stderr)
	}
}

type restartErr struct{}

func (restartErr) Error() string { return "agent: restart requested" }
func (restartErr) ExitCode() int { return 64 }

func TestExitCode(t *testing.T) {
	live := context.Background()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want int
	}{
		{"nil", live, nil, 0},
		{"nil after stop", canceled, nil, 0},
		{"canceled after stop", canceled, fmt.Errorf("agent: %w", context.Canceled), 0},
		{"canceled without stop", live, context.Canceled, 1},
		{"failure", live, errors.New("boom"), 1},
		{"failure after stop", canceled, errors.New("boom"), 1},
		{"restart request", live, fmt.Errorf("wrapped: %w", restartErr{}), 64},
		{"restart request after stop", canceled, restartErr{}, 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := exitCode(tc.ctx, tc.err); got != tc.want {
				t.Fatalf("exitCode = %d, want %d", got, tc.want)
			}
		})
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// readLocalConn reads the embedded server's token from dataDir's
// LocalConnFile, waiting for the daemon to write it.
func readLocalConn(t *testing.T, dataDir string, within time.Duration) LocalConn {
	t.Helper()
	var lc LocalConn
	natstest.CheckFor(t, within, 20*time.Millisecond, func() error {
		b, err := os.ReadFile(LocalConnPath(dataDir))
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &lc)
	})
	return lc
}

// waitStreams polls the server at url until the protocol's streams exist,
// connecting with opts.
func waitStreams(t *testing.T, url string, within time.Duration, opts ...nats.Option) {
	t.Helper()
	natstest.CheckFor(t, within, 50*time.Millisecond, func() error {
		nc, err := nats.Connect(url, append([]nats.Option{nats.Timeout(time.Second)}, opts...)...)
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		for _, name := range []string{"EXEC", "RESULTS", "EVENTS", "OBS_EVENTS", "INVENTORY"} {
			if _, err := js.Stream(ctx, name); err != nil {
				return fmt.Errorf("stream %s: %w", name, err)
			}
		}
		return nil
	})
}

func TestRunEmbeddedInProcess(t *testing.T) {
	dir := natstest.TempDir(t)
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errOut := runMain(t, ctx, map[string]string{"HOME": "/home/u"},
			"--data-dir", dir, "--embedded-listen", fmt.Sprintf("127.0.0.1:%d", port), "--pc-id", "inproc-pc",
			"--embedded-max-store", "1GiB")
		done <- result{code, out, errOut}
	}()
	lc := readLocalConn(t, dir, 20*time.Second)
	waitStreams(t, fmt.Sprintf("nats://127.0.0.1:%d", port), 20*time.Second, nats.Token(lc.Token))
	// The streams exist while the embedded server is still provisioning; stop
	// only once the daemon has moved on to the agent.
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		b, _ := os.ReadFile(LogPath(dir))
		if !strings.Contains(string(b), "embedded single-machine NATS server") {
			return errors.New("no embedded server notice in the log file yet")
		}
		return nil
	})
	cancel()
	var r result
	select {
	case r = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Main did not return 15 s after the stop")
	}
	if r.code != 0 {
		t.Errorf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	log, err := os.ReadFile(LogPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"embedded single-machine NATS server", "pc_id=inproc-pc", "embedded NATS server stopped",
		"stream limits are scaled down", "store_limit_bytes=1073741824"} {
		if !strings.Contains(string(log), w) {
			t.Errorf("log file lacks %q:\n%s", w, log)
		}
	}
	if !strings.Contains(r.stderr, "embedded single-machine NATS server") {
		t.Errorf("console log lacks the embedded server notice:\n%s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(EmbeddedStoreDir(dir), "jetstream")); err != nil {
		t.Errorf("embedded store: %v", err)
	}
}

func TestRunEmbeddedPortBusy(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	code, _, stderr := runMain(t, context.Background(), map[string]string{"HOME": "/home/u"},
		"--data-dir", natstest.TempDir(t), "--embedded-listen", l.Addr().String())
	if code != ExitFailure || !strings.Contains(stderr, "embedded NATS server failed to start") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
}

func TestRunJSONLogs(t *testing.T) {
	dir := natstest.TempDir(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // stop at once: only the startup logs matter
	code, _, stderr := runMain(t, ctx, map[string]string{"HOME": "/home/u", "KANADE_LOG_FORMAT": "json"},
		"--data-dir", dir, "--embedded-listen", "127.0.0.1:0")
	if code != 0 {
		t.Errorf("a stop during startup: exit %d, want 0", code)
	}
	first, _, _ := strings.Cut(stderr, "\n")
	if !strings.HasPrefix(first, `{"time":`) || !strings.Contains(first, `"msg":"kanade-agent starting"`) {
		t.Fatalf("first console line is not JSON: %q", first)
	}
	log, err := os.ReadFile(LogPath(dir))
	if err != nil || !strings.HasPrefix(string(log), `{"time":`) {
		t.Fatalf("log file is not JSON: %q, %v", log, err)
	}
}
