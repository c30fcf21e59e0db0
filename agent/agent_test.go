package agent_test

// Integration tests that run on every OS: their scripts (echo, >>) mean
// the same to sh and to cmd. OS-specific tests are in agent_unix_test.go
// and agent_windows_test.go.

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/provision"
	"github.com/kanade/kanade-agent/signing"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestGates(t *testing.T) {
	e := newEnv(t)
	e.kvPut(subject.BucketScriptCurrent, "inv", "v2")
	e.kvPut(subject.BucketScriptStatus, "bad", wire.ScriptRevoked)
	e.start("pc-g", "", nil)
	past := time.Now().Add(-time.Minute)
	type gateCase struct {
		name  string
		edit  func(*wire.Command)
		code  int32
		note  string
		skips bool
	}
	tests := []gateCase{
		{"version pin", func(c *wire.Command) { c.ID, c.Version = "inv", "v1" }, wire.ExitVersionPin, "version pin", true},
		{"pin matches", func(c *wire.Command) { c.ID, c.Version = "inv", "v2" }, 0, "", false},
		{"revoked", func(c *wire.Command) { c.ID, c.Version = "bad", "v1" }, wire.ExitRevoked, "revoked", true},
		{"deadline", func(c *wire.Command) { c.DeadlineAt = &past }, wire.ExitDeadline, "deadline", true},
		// As upstream, unchecked still applies the version pin and revocation.
		{"unchecked keeps pin", func(c *wire.Command) {
			c.ID, c.Version, c.Staleness = "inv", "v1", &wire.Staleness{Mode: wire.StalenessUnchecked}
		}, wire.ExitVersionPin, "version pin", true},
		{"unchecked keeps revoke", func(c *wire.Command) {
			c.ID, c.Version, c.Staleness = "bad", "v1", &wire.Staleness{Mode: wire.StalenessUnchecked}
		}, wire.ExitRevoked, "revoked", true},
		{"unsupported shell", func(c *wire.Command) { c.Shell = unsupportedShell }, wire.ExitUnsupported, "unsupported", true},
	}
	if runtime.GOOS != "windows" { // where run_as user runs in the interactive user's session
		tests = append(tests, gateCase{"run_as user", func(c *wire.Command) { c.RunAs = wire.RunAsUser }, wire.ExitUnsupported, "unsupported", true})
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
	if r := e.waitResult(cached.RequestID, 20*time.Second); r.ExitCode != 0 || r.Stdout != "ran"+nl {
		t.Fatalf("cached: %+v", r)
	}
}

func TestDedupAcrossRestartAndReplay(t *testing.T) {
	e := newEnv(t)
	dir := natstest.TempDir(t)
	marker := filepath.Join(natstest.TempDir(t), "runs")
	c := cmd("echo run >> " + marker)

	// Published while no agent runs: EXEC keeps it for the replay.
	e.publish(pcSubject("pc-d"), c)
	a := e.start("pc-d", dir, nil)
	e.waitResult(c.RequestID, 20*time.Second)
	a.stop(t)

	// After a restart the same command, live and replayed, must not run again.
	e.start("pc-d", dir, nil)
	e.publish(pcSubject("pc-d"), c)
	sentinel := cmd(noopScript)
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
	run := cmd(sleepScript(60))
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
		// The kill subscription exists once the agent has accepted the
		// command; send the kill until its result shows up.
		natstest.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
			kill(c.ExecID)
			if rs, err := e.results(c.RequestID); err != nil || len(rs) == 0 {
				return fmt.Errorf("no result for %s (err %v)", c.ExecID, err)
			}
			return nil
		})
		r := e.waitResult(c.RequestID, time.Second)
		want := "killed by remote signal (kill." + c.ExecID + ")"
		if r.ExitCode != wire.ExitKilled || !strings.Contains(r.Stderr, want) || strings.Contains(r.Stdout, "should-not-run") {
			t.Fatalf("%s: %+v", c.ExecID, r)
		}
	}
}

func TestConfigAndGroupsLive(t *testing.T) {
	e := newEnv(t)
	a := e.start("pc-c", "", noFloors)
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
	logf := filepath.Join(natstest.TempDir(t), "agent.log")
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

// TestRequestFlood: a flood of pings and log fetches (which anyone who may
// publish on the agent's subjects can send) is answered only up to the
// rate limits, the rest is counted and left unanswered, and the agent
// answers again once the flood is over.
func TestRequestFlood(t *testing.T) {
	e := newEnv(t)
	logf := filepath.Join(natstest.TempDir(t), "agent.log")
	if err := os.WriteFile(logf, []byte(strings.Repeat("a log line\n", 20000)), 0o600); err != nil {
		t.Fatal(err)
	}
	a := e.start("pc-fl", "", func(o *agent.Options) { o.LogFile = logf })
	ping, _ := subject.Ping("pc-fl")
	logs, _ := subject.LogsFetch("pc-fl")
	inbox := nats.NewInbox()
	var replies atomic.Int64
	sub, err := e.nc.Subscribe(inbox, func(*nats.Msg) { replies.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	const pings, fetches = 2000, 200
	start := time.Now()
	for i := range pings + fetches {
		subj, body := ping, []byte(nil)
		if i%((pings+fetches)/fetches) == 0 {
			subj, body = logs, []byte(`{"tail_lines":0}`)
		}
		if err := e.nc.PublishRequest(subj, inbox, body); err != nil {
			t.Fatal(err)
		}
	}
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if got := replies.Load() + a.Stats().RequestsDropped; got != pings+fetches {
			return fmt.Errorf("%d of %d requests answered or dropped", got, pings+fetches)
		}
		return nil
	})
	took := time.Since(start)
	// At most the bursts plus what the rates allow over the flood.
	limit := int64(20+10) + int64(took/(100*time.Millisecond)) + int64(took/time.Second) + 2
	if n := replies.Load(); n > limit {
		t.Errorf("%d of %d requests answered in %v, want at most %d", n, pings+fetches, took, limit)
	}
	t.Logf("%d of %d requests answered in %v; dropped %d", replies.Load(), pings+fetches, took, a.Stats().RequestsDropped)
	natstest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		_, err := e.nc.Request(ping, nil, time.Second)
		return err
	})
}

func TestTwoAgentsInOneProcess(t *testing.T) {
	e := newEnv(t)
	ma := filepath.Join(natstest.TempDir(t), "a")
	e.start("pc-a", "", nil)
	e.start("pc-b", "", nil)
	only := cmd("echo a >> " + ma)
	e.publish(pcSubject("pc-a"), only)
	e.waitResult(only.RequestID, 20*time.Second)
	all := cmd("echo all")
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
	only2 := cmd(noopScript)
	e.publish(pcSubject("pc-b"), only2)
	e.waitResult(only2.RequestID, 20*time.Second)
	if n := countLines(t, ma); n != 1 {
		t.Fatalf("pc-a command ran %d times", n)
	}
	if rs, _ := e.results(only.RequestID); len(rs) != 1 || rs[0].PcID != "pc-a" {
		t.Fatalf("pc-a results %+v", rs)
	}
}

// TestMain lets the test binary act as a crashing agent child process.
func TestMain(m *testing.M) {
	if os.Getenv("KANADE_AGENT_CHILD") == "1" {
		runChild()
		return
	}
	os.Exit(m.Run())
}

// runChild runs an agent configured by the environment until it is killed
// (or, with KANADE_CRASH_AFTER_RESULT=1, until it has stored a result: it
// exits 3 before recording the command finished).
func runChild() {
	if os.Getenv("KANADE_CRASH_AFTER_RESULT") == "1" {
		agent.SetAfterResultStored(func() { os.Exit(3) })
	}
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

// TestSIGKILLMidCommandReports121 kills an agent child process (SIGKILL on
// Unix, TerminateProcess on Windows) while its command runs; the restarted
// agent reports exit 121 for it and does not run its replay again.
func TestSIGKILLMidCommandReports121(t *testing.T) {
	e := newEnv(t)
	dir := natstest.TempDir(t)
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "KANADE_AGENT_CHILD=1", "KANADE_PC_ID=pc-crash",
		"KANADE_DATA_DIR="+dir, "KANADE_NATS_URL="+e.srv.URL())
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	c := cmd(sleepScript(300))
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
	// SIGKILL on Unix, TerminateProcess on Windows: no chance to clean up.
	if err := child.Process.Kill(); err != nil {
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

// TestCrashAfterResultStoredNo121: an agent that dies between storing a
// result and recording its command finished delivers that result after the
// restart, and no 121 besides.
func TestCrashAfterResultStoredNo121(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// Without the RESULTS stream the stored result stays in the outbox.
	if err := e.js.DeleteStream(ctx, subject.StreamResults); err != nil {
		t.Fatal(err)
	}
	dir := natstest.TempDir(t)
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "KANADE_AGENT_CHILD=1", "KANADE_CRASH_AFTER_RESULT=1", "KANADE_PC_ID=pc-crash2",
		"KANADE_DATA_DIR="+dir, "KANADE_NATS_URL="+e.srv.URL())
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	c := cmd(noopScript)
	// Keep publishing (one request id: it runs once) until the child has
	// stored the result and died.
	var werr error
	natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		select {
		case werr = <-exited:
			return nil
		default:
			e.publish(pcSubject("pc-crash2"), c)
			return errors.New("child still running")
		}
	})
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("child ended with %v, want exit 3 from the crash hook", werr)
	}
	if err := provision.Ensure(ctx, e.js); err != nil {
		t.Fatal(err)
	}
	e.start("pc-crash2", dir, nil)
	if r := e.waitResult(c.RequestID, 20*time.Second); r.ExitCode != 0 {
		t.Fatalf("after restart: %+v, want the real result", r)
	}
	sentinel := cmd(noopScript)
	e.publish(pcSubject("pc-crash2"), sentinel)
	e.waitResult(sentinel.RequestID, 20*time.Second)
	if rs, _ := e.results(c.RequestID); len(rs) != 1 {
		t.Fatalf("%d results for the command, want 1: %+v", len(rs), rs)
	}
}

func TestQueueFullRefusesWithoutClaiming(t *testing.T) {
	e := newEnv(t)
	one := wire.DefaultConfig(1)
	e.start("pc-q", "", func(o *agent.Options) { o.MaxQueued = 2; o.Defaults = &one })
	for i := range 2 {
		c := cmd(sleepScript(60))
		c.ExecID = fmt.Sprintf("q-%d", i)
		e.publish(pcSubject("pc-q"), c)
	}
	over := cmd(noopScript)
	e.publish(pcSubject("pc-q"), over)
	r := e.waitResult(over.RequestID, 20*time.Second)
	if r.ExitCode != wire.ExitKilled || !r.Skipped || !strings.Contains(r.Stderr, "already waiting or running") {
		t.Fatalf("over the queue limit: %+v", r)
	}
	// Not claimed: once there is room, the same command runs.
	for i := range 2 {
		s, _ := subject.Kill(fmt.Sprintf("q-%d", i))
		e.publishRaw(s, nil)
	}
	natstest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		e.publish(pcSubject("pc-q"), over)
		rs, err := e.results(over.RequestID)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if !r.Skipped && r.ExitCode == 0 {
				return nil
			}
		}
		return fmt.Errorf("%d results, none ran", len(rs))
	})
}

func TestDeadlineOnlyGuardsTheStart(t *testing.T) {
	e := newEnv(t)
	e.start("pc-dl", "", nil)
	// The deadline passes while the script runs: it is not killed.
	c := cmd(sleepScript(2))
	soon := time.Now().Add(500 * time.Millisecond)
	c.DeadlineAt = &soon
	e.publish(pcSubject("pc-dl"), c)
	if r := e.waitResult(c.RequestID, 30*time.Second); r.ExitCode != 0 || r.Skipped {
		t.Fatalf("%+v", r)
	}
}

func TestHostileNumbers(t *testing.T) {
	e := newEnv(t)
	e.start("pc-n", "", nil)
	huge := cmd(noopScript)
	huge.JitterSecs = 1 << 62
	huge.ExecID = "huge-jitter"
	e.publish(pcSubject("pc-n"), huge)
	retry := cmd("exit 1")
	retry.Retry = &wire.Retry{Max: 1 << 40, BackoffSecs: 1 << 62}
	retry.ExecID = "huge-retry"
	e.publish(pcSubject("pc-n"), retry)
	// Both wait (clamped, not overflowed); a kill ends each.
	ping, _ := subject.Ping("pc-n")
	if _, err := e.nc.Request(ping, nil, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, c := range []wire.Command{huge, retry} {
		natstest.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
			s, _ := subject.Kill(c.ExecID)
			e.publishRaw(s, nil)
			if rs, _ := e.results(c.RequestID); len(rs) == 0 {
				return fmt.Errorf("no result for %s", c.ExecID)
			}
			return nil
		})
		if r := e.waitResult(c.RequestID, time.Second); r.ExitCode != wire.ExitKilled || !strings.Contains(r.Stderr, "kill."+c.ExecID) {
			t.Fatalf("%s: %+v", c.ExecID, r)
		}
	}
}

// TestStartsWithoutServerAndWaitsForStreams starts the agent while no
// server runs, then brings up a server without streams, then provisions it:
// the agent never fails, and serves commands once the streams exist.
func TestStartsWithoutServerAndWaitsForStreams(t *testing.T) {
	srv := natstest.RunBareServer(t)
	srv.Shutdown()
	a, err := agent.New(agent.Options{PcID: "pc-w", DataDir: natstest.TempDir(t), Servers: []string{srv.URL()},
		Logger: testLogger(t), DisableInventory: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	// A command result produced now is kept until the streams exist.
	select {
	case <-a.Ready():
		t.Fatal("ready without a server")
	case err := <-done:
		t.Fatalf("Run returned without a server: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	srv.Start()
	nc := natstest.Connect(t, srv.URL())
	js := natstest.JetStream(t, nc)
	e := &env{t: t, srv: srv, nc: nc, js: js}
	// Commands arrive over core NATS before the streams exist.
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		select {
		case <-a.Ready():
			return nil
		default:
			return fmt.Errorf("not ready")
		}
	})
	early := cmd(noopScript)
	e.publish(pcSubject("pc-w"), early)
	if err := provision.Ensure(context.Background(), js); err != nil {
		t.Fatal(err)
	}
	if r := e.waitResult(early.RequestID, 30*time.Second); r.ExitCode != 0 {
		t.Fatalf("early command: %+v", r)
	}
	// And the replay consumer exists once the streams do.
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		_, err := js.Consumer(context.Background(), subject.StreamExec, "agent-pc-w")
		return err
	})
}

func TestLogsFetchAcrossRotation(t *testing.T) {
	e := newEnv(t)
	logf := filepath.Join(natstest.TempDir(t), "agent.log")
	if err := os.WriteFile(logf+".1", []byte("old 1\nold 2\nold 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logf, []byte("new 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.start("pc-lr", "", func(o *agent.Options) { o.LogFile = logf })
	logs, _ := subject.LogsFetch("pc-lr")
	m, err := e.nc.Request(logs, []byte(`{"tail_lines":3}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(m.Data); got != "old 2\nold 3\nnew 1\n" {
		t.Fatalf("tail %q", got)
	}
	m, err = e.nc.Request(logs, []byte(`{"tail_lines":`), 5*time.Second)
	if err != nil || !strings.Contains(string(m.Data), "bad logs.fetch request") {
		t.Fatalf("malformed request: %q, %v", m.Data, err)
	}
}

// TestSignatureEnforced: an enforcing agent refuses an unsigned command
// with 123, stored once although it arrives live and replayed (and the
// replay is delivered again); the same script signed by a keyring key runs.
func TestSignatureEnforced(t *testing.T) {
	e := newEnv(t)
	pub, priv, _ := ed25519.GenerateKey(nil)
	keyring := filepath.Join(natstest.TempDir(t), "keyring.json")
	kr, _ := json.Marshal([]wire.KeyringEntry{{Kid: "k1", PublicKey: base64.StdEncoding.EncodeToString(pub)}})
	if err := os.WriteFile(keyring, kr, 0o600); err != nil {
		t.Fatal(err)
	}
	a := e.start("pc-sig", "", func(o *agent.Options) { o.KeyringFile, o.Enforcing = keyring, true })
	unsigned := cmd(noopScript)
	e.publish(pcSubject("pc-sig"), unsigned)
	if r := e.waitResult(unsigned.RequestID, 20*time.Second); r.ExitCode != wire.ExitRefused || r.Skipped {
		t.Fatalf("unsigned: %+v", r)
	}
	// Both copies (live and replayed) are handled before a later command.
	natstest.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if n := a.Stats().Received; n < 2 {
			return fmt.Errorf("%d command messages received", n)
		}
		return nil
	})
	signed := cmd(noopScript)
	body, _ := json.Marshal(signed)
	hdr, err := signing.Sign(priv, "k1", pcSubject("pc-sig"), time.Now(), body)
	if err != nil {
		t.Fatal(err)
	}
	msg := &nats.Msg{Subject: pcSubject("pc-sig"), Data: body, Header: hdr}
	if err := e.nc.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	if r := e.waitResult(signed.RequestID, 20*time.Second); r.ExitCode != 0 || r.Skipped {
		t.Fatalf("signed: %+v", r)
	}
	if rs, _ := e.results(unsigned.RequestID); len(rs) != 1 {
		t.Fatalf("%d refusals stored for the unsigned command, want 1", len(rs))
	}
}
