package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// env is one test's server, client connection and agents.
type env struct {
	t   *testing.T
	srv *natstest.Server
	nc  *nats.Conn
	js  jetstream.JetStream
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.URL())
	return &env{t: t, srv: srv, nc: nc, js: natstest.JetStream(t, nc)}
}

// running is an agent started by env.start.
type running struct {
	*agent.Agent
	dir    string
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // Run's error, once done is closed
}

// stop stops the agent and waits for Run to return.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("agent Run: %v", r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not stop within 30 s")
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// start runs an agent with pc id pcID and data dir dir (a new temp dir when
// empty) until the test ends, and waits until it is ready.
func (e *env) start(pcID, dir string, tweak func(*agent.Options)) *running {
	e.t.Helper()
	if dir == "" {
		dir = e.t.TempDir()
	}
	o := agent.Options{
		PcID: pcID, DataDir: dir, Servers: []string{e.srv.URL()},
		Logger: testLogger(e.t), KillGrace: 500 * time.Millisecond, DisableInventory: true,
	}
	if tweak != nil {
		tweak(&o)
	}
	a, err := agent.New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Agent: a, dir: dir, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = a.Run(ctx)
		close(r.done)
	}()
	e.t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			e.t.Error("agent did not stop")
		}
	})
	select {
	case <-a.Ready():
	case <-r.done:
		e.t.Fatalf("agent stopped before ready: %v", r.err)
	case <-time.After(20 * time.Second):
		e.t.Fatal("agent not ready within 20 s")
	}
	return r
}

// cmd returns a command running script with sh.
func cmd(script string) wire.Command {
	return wire.Command{ID: wire.AdhocID, RequestID: uuid.NewString(), Shell: wire.ShellSh, Script: script, TimeoutSecs: 60}
}

func (e *env) publish(subj string, c wire.Command) {
	e.t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		e.t.Fatal(err)
	}
	e.publishRaw(subj, b)
}

func (e *env) publishRaw(subj string, b []byte) {
	e.t.Helper()
	if err := e.nc.Publish(subj, b); err != nil {
		e.t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		e.t.Fatal(err)
	}
}

func pcSubject(pcID string) string {
	s, err := subject.CommandsPC(pcID)
	if err != nil {
		panic(err)
	}
	return s
}

// results returns every result stored for requestID.
func (e *env) results(requestID string) ([]wire.ExecResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	subj, err := subject.Result(requestID)
	if err != nil {
		return nil, err
	}
	c, err := e.js.OrderedConsumer(ctx, subject.StreamResults, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		return nil, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, err
	}
	n := int(info.NumPending)
	var out []wire.ExecResult
	for len(out) < n {
		batch, err := c.FetchNoWait(n - len(out))
		if err != nil {
			return nil, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			r, err := wire.DecodeExecResult(m.Data())
			if err != nil {
				return nil, err
			}
			out = append(out, *r)
		}
		if got == 0 {
			break
		}
	}
	return out, nil
}

// waitResult waits for the result of requestID and returns it.
func (e *env) waitResult(requestID string, within time.Duration) wire.ExecResult {
	e.t.Helper()
	var res wire.ExecResult
	natstest.CheckFor(e.t, within, 20*time.Millisecond, func() error {
		rs, err := e.results(requestID)
		if err != nil {
			return err
		}
		if len(rs) == 0 {
			return fmt.Errorf("no result for %s yet", requestID)
		}
		res = rs[0]
		return nil
	})
	return res
}

func (e *env) kvPut(bucket, key string, v any) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := e.js.KeyValue(ctx, bucket)
	if err != nil {
		e.t.Fatal(err)
	}
	var b []byte
	switch v := v.(type) {
	case string:
		b = []byte(v)
	default:
		if b, err = json.Marshal(v); err != nil {
			e.t.Fatal(err)
		}
	}
	if _, err := kv.Put(ctx, key, b); err != nil {
		e.t.Fatal(err)
	}
}

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

func TestGates(t *testing.T) {
	e := newEnv(t)
	e.kvPut(subject.BucketScriptCurrent, "inv", "v2")
	e.kvPut(subject.BucketScriptStatus, "bad", wire.ScriptRevoked)
	e.start("pc-g", "", nil)
	past := time.Now().Add(-time.Minute)
	tests := []struct {
		name  string
		edit  func(*wire.Command)
		code  int32
		note  string
		skips bool
	}{
		{"version pin", func(c *wire.Command) { c.ID, c.Version = "inv", "v1" }, wire.ExitVersionPin, "version pin", true},
		{"pin matches", func(c *wire.Command) { c.ID, c.Version = "inv", "v2" }, 0, "", false},
		{"revoked", func(c *wire.Command) { c.ID, c.Version = "bad", "v1" }, wire.ExitRevoked, "revoked", true},
		{"deadline", func(c *wire.Command) { c.DeadlineAt = &past }, wire.ExitDeadline, "deadline", true},
		{"unchecked skips pin", func(c *wire.Command) {
			c.ID, c.Version, c.Staleness = "inv", "v1", &wire.Staleness{Mode: wire.StalenessUnchecked}
		}, 0, "", false},
		{"unsupported shell", func(c *wire.Command) { c.Shell = "cmd" }, wire.ExitUnsupported, "unsupported", true},
		{"run_as user", func(c *wire.Command) { c.RunAs = wire.RunAsUser }, wire.ExitUnsupported, "unsupported", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cmd("echo ran")
			tc.edit(&c)
			// The gate state is watched; wait until the agent has it.
			e.publish(pcSubject("pc-g"), c)
			r := e.waitResult(c.RequestID, 20*time.Second)
			if r.ExitCode != tc.code || r.Skipped != tc.skips || !strings.Contains(r.Stderr, tc.note) {
				t.Fatalf("result %+v, want exit %d skipped %v note %q", r, tc.code, tc.skips, tc.note)
			}
		})
	}
}

func TestStalenessStrict(t *testing.T) {
	// A server with only the RESULTS stream: the gate buckets never exist,
	// so the agent's cache is never synced and cannot be refreshed.
	srv := natstest.RunBareServer(t)
	nc := natstest.Connect(t, srv.URL())
	js := natstest.JetStream(t, nc)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: subject.StreamResults, Subjects: []string{subject.ResultsWildcard}}); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: srv, nc: nc, js: js}
	e.start("pc-s", "", nil)
	strict := cmd("echo ran")
	strict.ID, strict.Version = "job", "v1"
	strict.Staleness = &wire.Staleness{Mode: wire.StalenessStrict, MaxCacheAge: "1m"}
	e.publish(pcSubject("pc-s"), strict)
	if r := e.waitResult(strict.RequestID, 20*time.Second); r.ExitCode != wire.ExitStale || !r.Skipped {
		t.Fatalf("strict: %+v", r)
	}
	cached := cmd("echo ran")
	cached.ID, cached.Version = "job", "v1"
	e.publish(pcSubject("pc-s"), cached)
	if r := e.waitResult(cached.RequestID, 20*time.Second); r.ExitCode != 0 || r.Stdout != "ran\n" {
		t.Fatalf("cached: %+v", r)
	}
}

func countLines(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

func TestDedupAcrossRestartAndReplay(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	marker := filepath.Join(t.TempDir(), "runs")
	c := cmd("echo run >> " + marker)

	// Published while no agent runs: EXEC keeps it for the replay.
	e.publish(pcSubject("pc-d"), c)
	a := e.start("pc-d", dir, nil)
	e.waitResult(c.RequestID, 20*time.Second)
	a.stop(t)

	// After a restart the same command, live and replayed, must not run again.
	e.start("pc-d", dir, nil)
	e.publish(pcSubject("pc-d"), c)
	sentinel := cmd("true")
	e.publish(pcSubject("pc-d"), sentinel)
	e.waitResult(sentinel.RequestID, 20*time.Second)
	if n := countLines(t, marker); n != 1 {
		t.Fatalf("command ran %d times, want 1", n)
	}
	rs, err := e.results(c.RequestID)
	if err != nil || len(rs) != 1 {
		t.Fatalf("%d results (err %v), want 1", len(rs), err)
	}
}

func TestKill(t *testing.T) {
	e := newEnv(t)
	e.kvPut(subject.BucketConfig, "pcs.pc-k", wire.ConfigScope{MaxLocalConcurrent: ptr(1)})
	a := e.start("pc-k", "", nil)
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := a.Config().MaxLocalConcurrent; n != 1 {
			return fmt.Errorf("limit %d", n)
		}
		return nil
	})
	kill := func(execID string) {
		s, _ := subject.Kill(execID)
		e.publishRaw(s, nil)
	}
	started := func(execID string) {
		natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
			s, _ := e.js.Stream(context.Background(), subject.StreamEvents)
			_, err := s.GetLastMsgForSubject(context.Background(), "events.started."+execID+".pc-k")
			return err
		})
	}
	// Running: the slot holder.
	run := cmd("sleep 60")
	run.ExecID = "x-run"
	e.publish(pcSubject("pc-k"), run)
	started("x-run")
	// Queued behind it.
	queued := cmd("echo should-not-run")
	queued.ExecID = "x-queued"
	e.publish(pcSubject("pc-k"), queued)
	// Waiting in jitter.
	jit := cmd("echo should-not-run")
	jit.ExecID, jit.JitterSecs, jit.BypassLocalLimit = "x-jitter", 3600, true
	e.publish(pcSubject("pc-k"), jit)
	// Both reach their waits before the kills (handled in order on one subscription).
	ping, _ := subject.Ping("pc-k")
	if _, err := e.nc.Request(ping, nil, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, c := range []wire.Command{jit, queued, run} {
		kill(c.ExecID)
		r := e.waitResult(c.RequestID, 20*time.Second)
		want := "killed by remote signal (kill." + c.ExecID + ")"
		if r.ExitCode != wire.ExitKilled || !strings.Contains(r.Stderr, want) || strings.Contains(r.Stdout, "should-not-run") {
			t.Fatalf("%s: %+v", c.ExecID, r)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestTimeoutKillsGrandchildren(t *testing.T) {
	e := newEnv(t)
	e.start("pc-t", "", nil)
	pidfile := filepath.Join(t.TempDir(), "pid")
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
	e.publish(pcSubject("pc-h"), c)
	r := e.waitResult(c.RequestID, 240*time.Second)
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
	e.start("pc-x", "", nil)
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
}

func TestConfigAndGroupsLive(t *testing.T) {
	e := newEnv(t)
	a := e.start("pc-c", "", nil)
	hb := make(chan wire.Heartbeat, 64)
	sub, err := e.nc.Subscribe("heartbeat.pc-c", func(m *nats.Msg) {
		if h, err := wire.DecodeHeartbeat(m.Data); err == nil {
			select {
			case hb <- *h:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	e.kvPut(subject.BucketConfig, "global", wire.ConfigScope{HeartbeatInterval: ptr("100ms"), MaxLocalConcurrent: ptr(3)})
	e.kvPut(subject.BucketConfig, "groups.lab", wire.ConfigScope{MaxLocalConcurrent: ptr(5)})
	e.kvPut(subject.BucketConfig, "groups.zoo", wire.ConfigScope{MaxLocalConcurrent: ptr(7)})
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if c := a.Config(); c.MaxLocalConcurrent != 3 || c.HeartbeatInterval != 100*time.Millisecond {
			return fmt.Errorf("config %+v", c)
		}
		return nil
	})
	// Heartbeats now come every 100 ms and carry the outbox stats.
	deadline := time.After(10 * time.Second)
	for i := 0; i < 3; i++ {
		select {
		case h := <-hb:
			if _, ok := h.Outbox["results"]; !ok || h.CommandKeys == nil || h.AgentRSSBytes == 0 {
				t.Fatalf("heartbeat %+v", h)
			}
		case <-deadline:
			t.Fatal("heartbeats did not speed up")
		}
	}
	// Groups from both buckets: zoo (derived) wins over lab alphabetically.
	e.kvPut(subject.BucketGroups, "pc-c", wire.Groups{Groups: []string{"lab"}})
	e.kvPut(subject.BucketGroupsDerived, "pc-c", wire.Groups{Groups: []string{"zoo", "bad.name"}})
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if c := a.Config(); c.MaxLocalConcurrent != 7 {
			return fmt.Errorf("limit %d, want 7", c.MaxLocalConcurrent)
		}
		return nil
	})
	for _, g := range []string{"lab", "zoo"} {
		c := cmd("echo " + g)
		natstest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
			s, _ := subject.CommandsGroup(g)
			e.publish(s, c)
			rs, err := e.results(c.RequestID)
			if err != nil || len(rs) == 0 {
				return fmt.Errorf("no result for group %s (err %v)", g, err)
			}
			return nil
		})
	}
	// Leaving a group stops its commands; a pc scope wins over everything.
	e.kvPut(subject.BucketGroups, "pc-c", wire.Groups{Groups: []string{}})
	e.kvPut(subject.BucketConfig, "pcs.pc-c", wire.ConfigScope{MaxLocalConcurrent: ptr(2)})
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if c := a.Config(); c.MaxLocalConcurrent != 2 {
			return fmt.Errorf("limit %d, want 2", c.MaxLocalConcurrent)
		}
		return nil
	})
	// A malformed scope does not disturb the rest.
	e.kvPut(subject.BucketConfig, "global", "{garbage")
	e.kvPut(subject.BucketConfig, "pcs.pc-c", wire.ConfigScope{MaxLocalConcurrent: ptr(4), HeartbeatInterval: ptr("soon")})
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if c := a.Config(); c.MaxLocalConcurrent != 4 || c.HeartbeatInterval != wire.DefaultHeartbeatInterval {
			return fmt.Errorf("config %+v", c)
		}
		return nil
	})
}

func TestPingAndLogs(t *testing.T) {
	e := newEnv(t)
	logf := filepath.Join(t.TempDir(), "agent.log")
	var lines []string
	for i := range 50 {
		lines = append(lines, fmt.Sprintf("line %d", i))
	}
	if err := os.WriteFile(logf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.start("pc-p", "", func(o *agent.Options) { o.LogFile = logf; o.Version = "1.2.3" })
	ping, _ := subject.Ping("pc-p")
	m, err := e.nc.Request(ping, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h, err := wire.DecodeHeartbeat(m.Data)
	if err != nil || h.PcID != "pc-p" || h.AgentVersion != "1.2.3" || h.OSFamily == "" {
		t.Fatalf("ping: %+v %v", h, err)
	}
	raw := map[string]any{}
	_ = json.Unmarshal(m.Data, &raw)
	for _, k := range []string{"command_keys", "enforcing", "outbox"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("heartbeat lacks %q: %s", k, m.Data)
		}
	}
	logs, _ := subject.LogsFetch("pc-p")
	m, err = e.nc.Request(logs, []byte(`{"tail_lines":3}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(m.Data); got != "line 47\nline 48\nline 49\n" {
		t.Fatalf("logs tail %q", got)
	}
}

func TestTwoAgentsInOneProcess(t *testing.T) {
	e := newEnv(t)
	ma := filepath.Join(t.TempDir(), "a")
	e.start("pc-a", "", nil)
	e.start("pc-b", "", nil)
	only := cmd("echo a >> " + ma)
	e.publish(pcSubject("pc-a"), only)
	e.waitResult(only.RequestID, 20*time.Second)
	all := cmd("echo $$")
	e.publish(subject.CommandsAll, all)
	var rs []wire.ExecResult
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		var err error
		if rs, err = e.results(all.RequestID); err != nil || len(rs) != 2 {
			return fmt.Errorf("%d results, err %v", len(rs), err)
		}
		return nil
	})
	if rs[0].PcID == rs[1].PcID || rs[0].ResultID == rs[1].ResultID {
		t.Fatalf("results not from two agents: %+v", rs)
	}
	only2 := cmd("true")
	e.publish(pcSubject("pc-b"), only2)
	e.waitResult(only2.RequestID, 20*time.Second)
	if n := countLines(t, ma); n != 1 {
		t.Fatalf("pc-a command ran %d times", n)
	}
	if rs, _ := e.results(only.RequestID); len(rs) != 1 || rs[0].PcID != "pc-a" {
		t.Fatalf("pc-a results %+v", rs)
	}
}

var _ sync.Mutex

// TestMain lets the test binary act as a crashing agent child process.
func TestMain(m *testing.M) {
	if os.Getenv("KANADE_AGENT_CHILD") == "1" {
		runChild()
		return
	}
	os.Exit(m.Run())
}

// runChild runs an agent configured by the environment until it is killed.
func runChild() {
	a, err := agent.New(agent.Options{
		PcID: os.Getenv("KANADE_PC_ID"), DataDir: os.Getenv("KANADE_DATA_DIR"),
		Servers: []string{os.Getenv("KANADE_NATS_URL")}, DisableInventory: true,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := a.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func TestSIGKILLMidCommandReports121(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "KANADE_AGENT_CHILD=1", "KANADE_PC_ID=pc-crash",
		"KANADE_DATA_DIR="+dir, "KANADE_NATS_URL="+e.srv.URL())
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	c := cmd("sleep 300")
	c.ExecID = "exec-crash"
	// Keep publishing until the child is subscribed and announces the start.
	natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		s, _ := e.js.Stream(context.Background(), subject.StreamEvents)
		if _, err := s.GetLastMsgForSubject(context.Background(), "events.started.exec-crash.pc-crash"); err != nil {
			e.publish(pcSubject("pc-crash"), c)
			return err
		}
		return nil
	})
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	e.start("pc-crash", dir, nil)
	r := e.waitResult(c.RequestID, 20*time.Second)
	if r.ExitCode != wire.ExitRestarted || r.ExecID != "exec-crash" {
		t.Fatalf("after restart: %+v", r)
	}
	// The replay of the same command must not run it again.
	sentinel := cmd("true")
	e.publish(pcSubject("pc-crash"), sentinel)
	e.waitResult(sentinel.RequestID, 20*time.Second)
	if rs, _ := e.results(c.RequestID); len(rs) != 1 {
		t.Fatalf("%d results for the crashed command, want 1", len(rs))
	}
}
