package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
)

// publishObs stores an obs event as an agent's outbox does.
func publishObs(t *testing.T, nc *nats.Conn, pc, kind, rid string) {
	t.Helper()
	b, err := json.Marshal(wire.ObsEvent{PcID: pc, At: time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC), Kind: kind,
		Source: "winlog:Security", EventRecordID: rid, Payload: json.RawMessage(`{ "user" : "alice" }`)})
	if err != nil {
		t.Fatal(err)
	}
	js := natstest.JetStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, "obs."+pc, b); err != nil {
		t.Fatal(err)
	}
}

// TestObsTail: obs tail prints one line per event of stream OBS_EVENTS,
// only the PC's with --pc, from --since back, and follows new events live.
func TestObsTail(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	k := kanade(srv.URL())
	nc := natstest.Connect(t, srv.URL())
	publishObs(t, nc, "pc-a", "logon", "101")
	publishObs(t, nc, "pc-b", "lock", "")
	if err := nc.Publish("obs.pc-a", []byte(`{"pc_id":1}`)); err != nil { // not an ObsEvent
		t.Fatal(err)
	}
	publishObs(t, nc, "pc-a", "logoff", "102")

	o := k("obs", "tail", "--pc", "pc-a", "--since", "1h", "--count", "2").want(t, 0)
	want := "2026-12-03T08:00:00Z pc-a logon winlog:Security 101 {\"user\":\"alice\"}\n" +
		"2026-12-03T08:00:00Z pc-a logoff winlog:Security 102 {\"user\":\"alice\"}\n"
	if o.stdout != want {
		t.Fatalf("obs tail --pc pc-a:\n%s\nwant:\n%s", o.stdout, want)
	}
	mentions(t, "stderr", o.stderr, "skipping a malformed event on obs.pc-a")
	o = k("obs", "tail", "--since", "1h", "--count", "3", "--json").want(t, 0)
	if lines := strings.Split(strings.TrimSpace(o.stdout), "\n"); len(lines) != 3 || !strings.Contains(lines[1], `"kind":"lock"`) || !strings.Contains(lines[1], `"event_record_id":null`) {
		t.Fatalf("obs tail --json:\n%s", o.stdout)
	}

	// Live: without --since only what comes after the start is printed.
	done := make(chan out, 1)
	go func() { done <- k("obs", "tail", "--pc", "pc-b", "--count", "1") }()
	var got out
	natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		publishObs(t, nc, "pc-b", "unlock", "")
		select {
		case got = <-done:
			return nil
		default:
			return fmt.Errorf("obs tail has not printed an event yet")
		}
	})
	if got.code != 0 || got.stdout != "2026-12-03T08:00:00Z pc-b unlock winlog:Security - {\"user\":\"alice\"}\n" {
		t.Fatalf("live obs tail: %+v", got)
	}
	k("obs").want(t, 2)
	k("obs", "tail", "--pc", "a.b").want(t, 2)
}

// gateScript prints first on stdout, waits until path exists, then prints
// last on stderr.
func gateScript(path, first, last string) string {
	if runtime.GOOS == "windows" {
		return fmt.Sprintf("echo %s\r\n:w\r\nif not exist \"%s\" (ping -n 1 127.0.0.1 >NUL & goto w)\r\necho %s 1>&2", first, path, last)
	}
	return fmt.Sprintf("echo %s; while [ ! -f '%s' ]; do sleep 0.05; done; echo %s >&2", first, path, last)
}

// TestTail: kanade tail prints a running command's output so far; with
// --follow it prints what is new until the command ends; an unknown
// result_id exits 1.
func TestTail(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	k := kanade(srv.URL())
	startAgent(t, srv.URL(), "pc-tail", nil)
	nc := natstest.Connect(t, srv.URL())
	gate := filepath.Join(natstest.TempDir(t), "go")
	execID := uuid.NewString()
	started := make(chan string, 1)
	sub, err := nc.Subscribe("events.started."+execID+".pc-tail", func(m *nats.Msg) {
		if ev, err := wire.DecodeEventStarted(m.Data); err == nil {
			started <- ev.ResultID
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	exec := make(chan out, 1)
	go func() {
		exec <- k("exec", "--pc", "pc-tail", "--shell", testShell, "--exec-id", execID, "--wait", "60s", gateScript(gate, "first-line", "last-line"))
	}()
	var rid string
	select {
	case rid = <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("no events.started")
	}

	natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		o := k("tail", "pc-tail", rid)
		if o.code != 0 || !strings.Contains(o.stdout, "first-line") || !strings.Contains(o.stderr, rid+" running") {
			return fmt.Errorf("tail: %+v", o)
		}
		return nil
	})
	follow := make(chan out, 1)
	go func() { follow <- k("tail", "--follow", "--every", "100ms", "pc-tail", rid) }()
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var o out
	select {
	case o = <-follow:
	case <-time.After(60 * time.Second):
		t.Fatal("tail --follow did not end with the command")
	}
	if o.code != 0 || strings.Count(o.stdout, "first-line") != 1 || !strings.Contains(o.stderr, "last-line") || !strings.Contains(o.stderr, "finished") {
		t.Fatalf("tail --follow: %+v", o)
	}
	<-exec
	o = k("tail", "pc-tail", "no-such-result").want(t, 1)
	mentions(t, "stderr", o.stderr, "holds no live output for result_id no-such-result")
	k("tail", "pc-tail").want(t, 2)
}

// TestIssue9CommandsHelp: the new commands are listed and have usage.
func TestIssue9CommandsHelp(t *testing.T) {
	t.Parallel()
	o := run("help").want(t, 0)
	for _, c := range []string{"schedule", "job", "obs", "tail"} {
		mentions(t, "help", o.stdout, c)
		o := run(c, "-h").want(t, 0)
		mentions(t, c+" -h", o.stdout, "kanade "+c)
	}
}
