//go:build unix

package agent_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// The shell of the Unix tests; see helpers_test.go.
const (
	testShell        = wire.ShellSh
	unsupportedShell = wire.ShellCmd // cmd.exe exists on Windows only
	nl               = "\n"
	noopScript       = "true"
)

func sleepScript(secs int) string { return fmt.Sprintf("sleep %d", secs) }

func TestCommandResult(t *testing.T) {
	e := newEnv(t)
	e.start("pc-1", "", nil)
	tests := []struct {
		name, script string
		code         int32
		stdout       string
		stderr       string
	}{
		{"ok", "echo hello", 0, "hello\n", ""},
		{"exit code", "echo oops >&2; exit 3", 3, "", "oops\n"},
		{"utf8", "printf 'caf\\303\\251 \\377'", 0, "café \uFFFD", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cmd(tc.script)
			e.publish(pcSubject("pc-1"), c)
			r := e.waitResult(c.RequestID, 20*time.Second)
			if r.ExitCode != tc.code || r.Stdout != tc.stdout || r.Stderr != tc.stderr || r.Skipped {
				t.Fatalf("result %+v, want exit %d stdout %q stderr %q", r, tc.code, tc.stdout, tc.stderr)
			}
			if r.PcID != "pc-1" || r.RequestID != c.RequestID || uuid.Validate(r.ResultID) != nil {
				t.Fatalf("ids: %+v", r)
			}
			if r.FinishedAt.Before(r.StartedAt) {
				t.Fatalf("finished %v before started %v", r.FinishedAt, r.StartedAt)
			}
		})
	}
}

func TestEventStartedAndEmit(t *testing.T) {
	e := newEnv(t)
	e.start("pc-emit", "", nil)
	c := cmd(`echo '{"at":"2026-01-02T03:04:05Z","kind":"logon","source":"test:emit","payload":{"user":"bob"}}'; echo 'not json'`)
	c.ExecID = "exec-emit-1"
	c.Emit = &wire.Emit{Type: wire.EmitEvents}
	e.publish(pcSubject("pc-emit"), c)
	r := e.waitResult(c.RequestID, 20*time.Second)
	if r.Stdout != "" || !strings.Contains(r.Stderr, "1 of 2 lines") || r.ExitCode != 0 {
		t.Fatalf("emit result: %+v", r)
	}
	ctx := context.Background()
	s, _ := e.js.Stream(ctx, subject.StreamEvents)
	m, err := s.GetLastMsgForSubject(ctx, "events.started.exec-emit-1.pc-emit")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := wire.DecodeEventStarted(m.Data)
	if err != nil || ev.ResultID != r.ResultID || ev.RequestID != c.RequestID {
		t.Fatalf("event started %+v (err %v), result id %s", ev, err, r.ResultID)
	}
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		obs, _ := e.js.Stream(ctx, subject.StreamObs)
		info, err := obs.Info(ctx, jetstream.WithSubjectFilter("obs.pc-emit"))
		if err != nil {
			return err
		}
		// agent_online plus the emitted logon.
		if info.State.Msgs < 2 {
			return fmt.Errorf("%d obs events", info.State.Msgs)
		}
		return nil
	})
}

func TestTimeoutKillsGrandchildren(t *testing.T) {
	e := newEnv(t)
	e.start("pc-t", "", nil)
	pidfile := filepath.Join(natstest.TempDir(t), "pid")
	c := cmd("sh -c 'sleep 300 & echo $! > " + pidfile + "; wait' ; sleep 300")
	c.TimeoutSecs = 1
	e.publish(pcSubject("pc-t"), c)
	r := e.waitResult(c.RequestID, 30*time.Second)
	if r.ExitCode != wire.ExitKilled || !strings.Contains(r.Stderr, "timeout after 1s") {
		t.Fatalf("%+v", r)
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if _, err := os.Stat("/proc/" + pid); err == nil {
			st, _ := os.ReadFile("/proc/" + pid + "/stat")
			if !strings.Contains(string(st), ") Z ") {
				return fmt.Errorf("grandchild %s still alive", pid)
			}
		}
		return nil
	})
}

func TestHugeOutputOffloaded(t *testing.T) {
	e := newEnv(t)
	e.start("pc-h", "", nil)
	c := cmd("head -c 1073741824 /dev/zero | tr '\\0' x")
	c.TimeoutSecs = 300
	// Watch the heap of this process (agent, server and test) while the
	// script prints 1 GiB: it must stay bounded, not grow with the output.
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapInuse, ms.HeapInuse
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
	}()
	e.publish(pcSubject("pc-h"), c)
	r := e.waitResult(c.RequestID, 240*time.Second)
	close(stop)
	<-sampled
	t.Logf("heap in use: %.1f MiB before, %.1f MiB peak while 1 GiB was printed", float64(base)/(1<<20), float64(peak)/(1<<20))
	if peak-base > 96<<20 {
		t.Fatalf("heap grew by %d MiB while the script printed 1 GiB", (peak-base)>>20)
	}
	if r.ExitCode != 0 || !r.StdoutTruncated || r.Stdout != "" || r.StdoutObject == "" {
		t.Fatalf("result: exit %d truncated %v inline %d object %q stderr %q", r.ExitCode, r.StdoutTruncated, len(r.Stdout), r.StdoutObject, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "of 1073741824 bytes") {
		t.Fatalf("stderr note: %q", r.Stderr)
	}
	ctx := context.Background()
	store, err := e.js.ObjectStore(ctx, subject.ObjectResultOutput)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := store.Get(ctx, r.StdoutObject)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, obj)
	if err != nil || n != 4<<20 {
		t.Fatalf("offloaded %d bytes (err %v), want %d", n, err, 4<<20)
	}
}

func TestHostileCommands(t *testing.T) {
	e := newEnv(t)
	a := e.start("pc-x", "", nil)
	subj := pcSubject("pc-x")
	e.publishRaw(subj, []byte("{not json"))
	e.publishRaw(subj, []byte(`{"request_id":"a.b","shell":"sh","script":"true"}`))
	e.publishRaw(subj, []byte(`{"request_id":"`+strings.Repeat("r", 500)+`","shell":"sh","script":"true"}`))
	e.publishRaw(subj, nil)
	e.publishRaw(subj, []byte(`null`))
	e.publishRaw(subj, []byte(`[1,2,3]`))

	cases := []struct {
		name string
		c    wire.Command
		note string
	}{
		{"unknown shell", wire.Command{Shell: "bash", Script: "true"}, "unsupported"},
		{"no script", wire.Command{Shell: "sh"}, "neither script"},
		{"bad exec id", wire.Command{Shell: "sh", Script: "true", ExecID: "x*y"}, "exec_id"},
		{"bad run_as", wire.Command{Shell: "sh", Script: "true", RunAs: "root"}, "run_as"},
	}
	for _, tc := range cases {
		tc.c.RequestID = uuid.NewString()
		e.publish(subj, tc.c)
		r := e.waitResult(tc.c.RequestID, 20*time.Second)
		if r.ExitCode != wire.ExitUnsupported || !r.Skipped || !strings.Contains(r.Stderr, tc.note) {
			t.Fatalf("%s: %+v", tc.name, r)
		}
	}
	// A huge script still runs (the server's max payload bounds it).
	big := cmd(": " + strings.Repeat("x", 900<<10) + "\necho big")
	e.publish(subj, big)
	if r := e.waitResult(big.RequestID, 20*time.Second); r.ExitCode != 0 || r.Stdout != "big\n" {
		t.Fatalf("big script: %+v", r)
	}
	// And the agent keeps serving.
	ok := cmd("echo alive")
	e.publish(subj, ok)
	if r := e.waitResult(ok.RequestID, 20*time.Second); r.Stdout != "alive\n" {
		t.Fatalf("after hostile input: %+v", r)
	}
	// Every hostile message was counted: 6 raw ones and 4 refused commands.
	if st := a.Stats(); st.Malformed < 10 || st.Results < 6 || st.Outbox["results"].Stuck != 0 {
		t.Fatalf("stats %+v", st)
	}
}
