//go:build unix

package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
)

// TestBinaryEmbeddedAndSIGTERM runs the built binary without a NATS URL,
// checks that its embedded server is up and provisioned, then stops it with
// SIGTERM and expects exit code 0.
func TestBinaryEmbeddedAndSIGTERM(t *testing.T) {
	dir := natstest.TempDir(t)
	port := freePort(t)
	cmd := exec.Command(binary(t), "--data-dir", dir, "--embedded-listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--pc-id", "bin-test-pc")
	cmd.Env = cleanEnv()
	var stdout, stderr natstest.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			<-waited
		}
		if t.Failed() {
			t.Logf("stderr:\n%s", stderr.String())
		}
	})

	lc := readLocalConn(t, dir, 30*time.Second)
	waitStreams(t, fmt.Sprintf("nats://127.0.0.1:%d", port), 30*time.Second, nats.Token(lc.Token))
	// The streams exist while the embedded server is still provisioning; stop
	// only once the daemon has moved on to the agent.
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if !strings.Contains(stderr.String(), "embedded single-machine NATS server") {
			return errors.New("no embedded server notice on the console yet")
		}
		return nil
	})

	// The agent itself is up: it answers a ping with its version (the one
	// linked in) and serves the tail of the daemon's log file.
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	nc, err := nats.Connect(url, nats.Token(lc.Token))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ping, _ := subject.Ping("bin-test-pc")
	natstest.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		m, err := nc.Request(ping, nil, time.Second)
		if err != nil {
			return fmt.Errorf("ping: %w", err)
		}
		var hb wire.Heartbeat
		if err := json.Unmarshal(m.Data, &hb); err != nil {
			return err
		}
		if hb.PcID != "bin-test-pc" || hb.AgentVersion != binaryVersion {
			return fmt.Errorf("ping reply %s: want pc_id bin-test-pc, agent_version %s", m.Data, binaryVersion)
		}
		return nil
	})
	logs, _ := subject.LogsFetch("bin-test-pc")
	m, err := nc.Request(logs, []byte(`{"tail_lines":50}`), 5*time.Second)
	if err != nil {
		t.Fatalf("logs.fetch: %v", err)
	}
	if !strings.Contains(string(m.Data), "embedded single-machine NATS server") {
		t.Errorf("logs.fetch reply lacks the daemon's log lines:\n%s", m.Data)
	}
	nc.Close()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		stopped = true
		if err != nil {
			t.Fatalf("after SIGTERM: %v (exit code %d), want exit 0", err, cmd.ProcessState.ExitCode())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("still running 15 s after SIGTERM")
	}
	log, err := os.ReadFile(LogPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"version=" + binaryVersion, "embedded NATS server stopped"} {
		if !strings.Contains(string(log), w) {
			t.Errorf("log file lacks %q", w)
		}
	}
}
