package cli_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
)

// TestKillSigned: an agent that enforces signatures ignores an unsigned
// kill, and obeys 'kill --key', which signs the kill for its own subject.
func TestKillSigned(t *testing.T) {
	t.Parallel()
	dir := natstest.TempDir(t)
	key, entry := keygen(t, dir, "ops-k")
	keyring := writeFile(t, dir, "keyring.json", "["+entry+"]")
	srv := natstest.RunServer(t)
	a := startAgent(t, srv.URL(), "pc-k", func(o *agent.Options) { o.KeyringFile, o.Enforcing = keyring, true })
	k := kanade(srv.URL())

	const execID = "kill-signed"
	done := make(chan out, 1)
	go func() {
		done <- k("exec", "--pc", "pc-k", "--shell", testShell, "--exec-id", execID, "--key", key, "--wait", "60s", sleepScript(30))
	}()
	// The started event is written before the script starts, after the
	// agent subscribed to kill.<exec_id>.
	js := natstest.JetStream(t, natstest.Connect(t, srv.URL()))
	started, _ := subject.EventStarted(execID, "pc-k")
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, subject.StreamEvents)
		if err != nil {
			return err
		}
		_, err = st.GetLastMsgForSubject(ctx, started)
		return err
	})

	// Unsigned: sent, and ignored by the enforcing agent.
	o := k("kill", execID).want(t, 0)
	mentions(t, "stdout", o.stdout, "sent kill."+execID)
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if s := a.Stats(); s.KillsRefused < 1 {
			return fmt.Errorf("unsigned kill not refused yet: %+v", s)
		}
		return nil
	})
	select {
	case e := <-done:
		t.Fatalf("an unsigned kill stopped the command: exit %d, stderr %s", e.code, e.stderr)
	default:
	}

	// Signed for kill.<exec_id>: obeyed.
	o = k("kill", "--key", key, execID).want(t, 0)
	mentions(t, "stdout", o.stdout, "sent kill."+execID)
	mentions(t, "stderr", o.stderr, "signed as ops-k")
	if strings.Contains(o.stderr, "no agent listens") {
		t.Errorf("kill says nobody listens while the command runs: %s", o.stderr)
	}
	var e out
	select {
	case e = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("exec did not return after the signed kill")
	}
	e.want(t, 1)
	mentions(t, "exec stderr", e.stderr, "killed by remote signal (kill."+execID+")", "pc pc-k: exit -1")
}

// TestKillBadKey: 'kill --key' with a key file that cannot be read fails
// before anything is sent.
func TestKillBadKey(t *testing.T) {
	t.Parallel()
	dir := natstest.TempDir(t)
	bad := writeFile(t, dir, "bad.key", "not a key")
	o := run("--nats-url", "nats://127.0.0.1:1", "kill", "--key", bad, "x").want(t, 1)
	mentions(t, "stderr", o.stderr, "key file", "bad.key")
	if o.stdout != "" {
		t.Errorf("stdout %q, want nothing sent", o.stdout)
	}
}

// TestLogsSigned: an agent that enforces signatures refuses an unsigned
// logs request (logs exits 1 and names the refusal) and answers
// 'logs --key', which signs the request for logs.fetch.<pc>.
func TestLogsSigned(t *testing.T) {
	t.Parallel()
	dir := natstest.TempDir(t)
	key, entry := keygen(t, dir, "ops-l")
	keyring := writeFile(t, dir, "keyring.json", "["+entry+"]")
	logf := writeFile(t, dir, "agent.log", "line 1\nline 2\nline 3\n")
	srv := natstest.RunServer(t)
	startAgent(t, srv.URL(), "pc-l", func(o *agent.Options) { o.KeyringFile, o.Enforcing, o.LogFile = keyring, true, logf })
	k := kanade(srv.URL())

	o := k("logs", "pc-l").want(t, 1)
	mentions(t, "stderr", o.stderr, "pc pc-l answered: logs.fetch refused: ")
	if strings.Contains(o.stdout, "line") {
		t.Errorf("unsigned request got the log: %q", o.stdout)
	}
	o = k("logs", "--key", key, "--tail", "2", "pc-l").want(t, 0)
	if o.stdout != "line 2\nline 3\n" {
		t.Errorf("signed request: stdout %q, want the last two lines", o.stdout)
	}
}
