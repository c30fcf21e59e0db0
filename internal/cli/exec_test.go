package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/cli"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
)

// TestOneAgent runs the agent-facing commands against one real agent.
func TestOneAgent(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	logFile := writeFile(t, natstest.TempDir(t), "agent.log", "line 1\nline 2\nline 3\nline 4\nline 5\n")
	startAgent(t, srv.URL(), "pc-1", func(o *agent.Options) {
		o.LogFile = logFile
		// Long-running subtests must not hold up the others.
		d := wire.DefaultConfig(16)
		o.Defaults = &d
	})
	k := kanade(srv.URL())

	t.Run("exec prints output and exits with the script's code", func(t *testing.T) {
		t.Parallel()
		o := k("exec", "--pc", "pc-1", "--shell", testShell, "--wait", "20s", outErrScript).want(t, 3)
		if o.stdout != "out"+nl {
			t.Errorf("stdout %q, want %q", o.stdout, "out"+nl)
		}
		mentions(t, "stderr", o.stderr, "err"+nl, "sent to commands.pc.pc-1", "kanade exec: pc pc-1: exit 3 in ")
	})
	t.Run("exec exit 0", func(t *testing.T) {
		t.Parallel()
		o := k("exec", "--pc", "pc-1", "--wait", "20s", "--shell", testShell, "echo", "hello", "world").want(t, 0)
		if o.stdout != "hello world"+nl {
			t.Errorf("stdout %q", o.stdout)
		}
	})
	t.Run("exec from stdin", func(t *testing.T) {
		t.Parallel()
		o := call{args: []string{"--nats-url", srv.URL(), "exec", "--pc", "pc-1", "--shell", testShell, "--wait", "20s", "-"},
			stdin: "echo from-stdin"}.run().want(t, 0)
		if o.stdout != "from-stdin"+nl {
			t.Errorf("stdout %q", o.stdout)
		}
	})
	t.Run("exec json", func(t *testing.T) {
		t.Parallel()
		o := k("exec", "--pc", "pc-1", "--shell", testShell, "--wait", "20s", "--exec-id", "json-exec", "--json", outErrScript).want(t, 3)
		lines := strings.Split(strings.TrimSpace(o.stdout), "\n")
		if len(lines) != 1 {
			t.Fatalf("want one JSON line, got %d:\n%s", len(lines), o.stdout)
		}
		r, err := wire.DecodeExecResult([]byte(lines[0]))
		if err != nil {
			t.Fatal(err)
		}
		if r.PcID != "pc-1" || r.ExitCode != 3 || r.Stdout != "out"+nl || r.ExecID != "json-exec" {
			t.Errorf("result %+v", r)
		}
	})
	t.Run("environment names the server", func(t *testing.T) {
		t.Parallel()
		o := call{args: []string{"ping", "pc-1"}, env: map[string]string{"KANADE_NATS_URL": srv.URL(), "KANADE_TIMEOUT": "20s"}}.run().want(t, 0)
		mentions(t, "stdout", o.stdout, `"pc_id": "pc-1"`)
	})
	t.Run("ping", func(t *testing.T) {
		t.Parallel()
		o := k("ping", "pc-1").want(t, 0)
		var hb wire.Heartbeat
		if err := json.Unmarshal([]byte(o.stdout), &hb); err != nil {
			t.Fatalf("stdout is not a heartbeat: %v\n%s", err, o.stdout)
		}
		if hb.PcID != "pc-1" || hb.AgentVersion == "" || hb.CommandKeys == nil {
			t.Errorf("heartbeat %+v", hb)
		}
		mentions(t, "stdout (indented)", o.stdout, "{\n  \"pc_id\": \"pc-1\",\n")
	})
	t.Run("ping unknown pc", func(t *testing.T) {
		t.Parallel()
		o := k("--timeout", "5s", "ping", "pc-nobody").want(t, 1)
		mentions(t, "stderr", o.stderr, "no agent answers on agents.pc-nobody.ping")
		if o.took > 4*time.Second {
			t.Errorf("took %v: no responders should fail at once", o.took)
		}
	})
	t.Run("logs", func(t *testing.T) {
		t.Parallel()
		o := k("logs", "pc-1", "--tail", "2").want(t, 0)
		if o.stdout != "line 4\nline 5\n" {
			t.Errorf("stdout %q, want the last two lines", o.stdout)
		}
		o = k("logs", "--tail=0", "pc-1").want(t, 0)
		if !strings.HasPrefix(o.stdout, "line 1\n") {
			t.Errorf("--tail=0: stdout %q, want the whole log", o.stdout)
		}
	})
	t.Run("kill unknown exec", func(t *testing.T) {
		t.Parallel()
		o := k("kill", "no-such-exec").want(t, 0)
		mentions(t, "stdout", o.stdout, "sent kill.no-such-exec")
		mentions(t, "stderr", o.stderr, "no agent listens on kill.no-such-exec")
	})
	t.Run("exec of a command still running", func(t *testing.T) {
		t.Parallel()
		o := k("exec", "--pc", "pc-1", "--shell", testShell, "--exec-id", "slow", "--wait", "3s", sleepScript(30)).want(t, cli.ExitNoResult)
		mentions(t, "stderr", o.stderr, "pc pc-1 started the command but it did not finish within 3s", "'kanade kill slow' stops it")
		k("kill", "slow").want(t, 0)
	})
	t.Run("kill a running command", func(t *testing.T) {
		t.Parallel()
		const execID = "kill-me"
		done := make(chan out, 1)
		go func() {
			done <- k("exec", "--pc", "pc-1", "--shell", testShell, "--exec-id", execID, "--wait", "30s", sleepScript(30))
		}()
		// The started event is written before the script starts, after
		// the agent subscribed to kill.<exec_id>.
		js := natstest.JetStream(t, natstest.Connect(t, srv.URL()))
		started, _ := subject.EventStarted(execID, "pc-1")
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
		o := k("kill", execID).want(t, 0)
		mentions(t, "stdout", o.stdout, "sent kill."+execID)
		if strings.Contains(o.stderr, "no agent listens") {
			t.Errorf("kill says nobody listens while the command runs: %s", o.stderr)
		}
		var e out
		select {
		case e = <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("exec did not return after the kill")
		}
		e.want(t, 1)
		mentions(t, "exec stderr", e.stderr, "killed by remote signal (kill."+execID+")", "pc pc-1: exit -1")
	})
}

func TestExecNoAgent(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	o := kanade(srv.URL())("exec", "--pc", "pc-away", "--wait", "1s", "echo", "hi").want(t, cli.ExitNoResult)
	mentions(t, "stderr", o.stderr, "no result from pc pc-away within 1s", "stays in stream EXEC", "runs when the agent returns")
	if o.took > 10*time.Second {
		t.Errorf("exec took %v with --wait 1s", o.took)
	}
	// The command waits in EXEC for the agent.
	js := natstest.JetStream(t, natstest.Connect(t, srv.URL()))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, subject.StreamExec)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, "commands.pc.pc-away")
	if err != nil {
		t.Fatal(err)
	}
	c, err := wire.DecodeCommand(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != wire.AdhocID || c.Script != "echo hi" || c.ExecID == "" || c.TimeoutSecs != 60 {
		t.Errorf("command in EXEC: %+v", c)
	}
}

func TestExecAll(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	// pc-a is in group lab.
	js := natstest.JetStream(t, natstest.Connect(t, srv.URL()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, subject.BucketGroups)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "pc-a", []byte(`{"groups":["lab"]}`)); err != nil {
		t.Fatal(err)
	}
	startAgent(t, srv.URL(), "pc-a", nil)
	startAgent(t, srv.URL(), "pc-b", nil)
	k := kanade(srv.URL())

	// Each run waits the whole --wait; they run at once (goroutines, not
	// parallel subtests, which -parallel would queue behind each other).
	const wait = "4s"
	text := goRun(func() out { return k("exec", "--all", "--shell", testShell, "--wait", wait, "echo hi") })
	jsonl := goRun(func() out { return k("exec", "--all", "--shell", testShell, "--wait", wait, "--json", "echo hi") })
	failing := goRun(func() out { return k("exec", "--all", "--shell", testShell, "--wait", wait, "exit 4") })
	lab := goRun(func() out { return k("exec", "--group", "lab", "--shell", testShell, "--wait", wait, "echo hi") })
	group := goRun(func() out { return k("exec", "--group", "empty", "--wait", "1s", "echo hi") })

	t.Run("text", func(t *testing.T) {
		o := (<-text).want(t, 0)
		mentions(t, "stdout", o.stdout, "[pc-a] exit 0\nhi"+nl, "[pc-b] exit 0\nhi"+nl)
		mentions(t, "stderr", o.stderr, "2 result(s) within 4s: 2 with exit code 0, 0 other")
	})
	t.Run("json", func(t *testing.T) {
		o := (<-jsonl).want(t, 0)
		var pcs []string
		for _, line := range strings.Split(strings.TrimSpace(o.stdout), "\n") {
			r, err := wire.DecodeExecResult([]byte(line))
			if err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			pcs = append(pcs, r.PcID)
		}
		sort.Strings(pcs)
		if fmt.Sprint(pcs) != "[pc-a pc-b]" {
			t.Errorf("results from %v, want pc-a and pc-b once each", pcs)
		}
	})
	t.Run("a failure exits 1", func(t *testing.T) {
		o := (<-failing).want(t, 1)
		mentions(t, "stdout", o.stdout, "[pc-a] exit 4", "[pc-b] exit 4")
		mentions(t, "stderr", o.stderr, "0 with exit code 0, 2 other")
	})
	t.Run("group", func(t *testing.T) {
		o := (<-lab).want(t, 0)
		if o.stdout != "[pc-a] exit 0\nhi"+nl {
			t.Errorf("stdout %q, want pc-a's result only", o.stdout)
		}
		mentions(t, "stderr", o.stderr, "sent to commands.group.lab")
	})
	t.Run("group with no member", func(t *testing.T) {
		o := (<-group).want(t, cli.ExitNoResult)
		mentions(t, "stderr", o.stderr, "no result from group empty within 1s")
	})
}

// goRun runs f in a goroutine and returns a channel that gets its result.
func goRun(f func() out) <-chan out {
	ch := make(chan out, 1)
	go func() { ch <- f() }()
	return ch
}

func TestExecSigned(t *testing.T) {
	t.Parallel()
	dir := natstest.TempDir(t)
	key, entry := keygen(t, dir, "ops-1")
	otherKey, _ := keygen(t, dir, "ops-1-other")
	// The same kid with another key: a signature that does not verify.
	_, otherPriv, err := cli.LoadKey(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	forged := writeFile(t, dir, "forged.key", fmt.Sprintf(`{"kid":"ops-1","private_key":%q}`, b64(otherPriv)))
	keyring := writeFile(t, dir, "keyring.json", "["+entry+"]")

	srv := natstest.RunServer(t)
	startAgent(t, srv.URL(), "pc-s", func(o *agent.Options) { o.KeyringFile, o.Enforcing = keyring, true })
	k := kanade(srv.URL())

	t.Run("signed runs", func(t *testing.T) {
		t.Parallel()
		o := k("exec", "--pc", "pc-s", "--shell", testShell, "--wait", "20s", "--key", key, "echo signed").want(t, 0)
		if o.stdout != "signed"+nl {
			t.Errorf("stdout %q", o.stdout)
		}
		mentions(t, "stderr", o.stderr, "signed as ops-1")
	})
	t.Run("unsigned is refused", func(t *testing.T) {
		t.Parallel()
		o := k("exec", "--pc", "pc-s", "--shell", testShell, "--wait", "20s", "echo unsigned").want(t, int(wire.ExitRefused))
		if o.stdout != "" {
			t.Errorf("stdout %q, want nothing", o.stdout)
		}
		mentions(t, "stderr", o.stderr, "refused: command signature absent", "exit 123")
	})
	t.Run("wrong key is refused", func(t *testing.T) {
		t.Parallel()
		o := k("exec", "--pc", "pc-s", "--shell", testShell, "--wait", "20s", "--key", forged, "echo forged").want(t, int(wire.ExitRefused))
		mentions(t, "stderr", o.stderr, "refused: command signature invalid")
	})
}

func TestExecRefusesHugeStdin(t *testing.T) {
	t.Parallel()
	o := call{args: []string{"--nats-url", "nats://127.0.0.1:1", "exec", "--pc", "p", "-"},
		stdin: strings.Repeat("x", cli.MaxScript+1)}.run().want(t, cli.ExitUsage)
	mentions(t, "stderr", o.stderr, "over 1048576 bytes (1 MiB)")
}

func TestScriptExitCode(t *testing.T) {
	tests := []struct {
		in   int32
		want int
	}{{0, 0}, {1, 1}, {3, 3}, {123, 123}, {255, 255}, {256, 1}, {-1, 1}, {-1073741819, 1}, {1 << 30, 1}}
	for _, tt := range tests {
		if got := cli.ScriptExitCode(tt.in); got != tt.want {
			t.Errorf("ScriptExitCode(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// TestConnectFailure: an unreachable or silent server fails within
// --timeout with one line on stderr.
func TestConnectFailure(t *testing.T) {
	t.Parallel()
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		o := run("--nats-url", "nats://127.0.0.1:1", "--timeout", "3s", "ping", "pc-1").want(t, 1)
		mentions(t, "stderr", o.stderr, "kanade ping: cannot connect to NATS at nats://127.0.0.1:1")
		if n := strings.Count(o.stderr, "\n"); n != 1 {
			t.Errorf("stderr has %d lines, want 1:\n%s", n, o.stderr)
		}
	})
	t.Run("silent server", func(t *testing.T) {
		t.Parallel()
		addr := silentServer(t)
		o := run("--nats-url", "nats://"+addr, "--timeout", "1s", "exec", "--pc", "p", "echo hi").want(t, 1)
		mentions(t, "stderr", o.stderr, "cannot connect to NATS at nats://"+addr)
		if o.took > 5*time.Second {
			t.Errorf("took %v with --timeout 1s", o.took)
		}
	})
	t.Run("password not shown", func(t *testing.T) {
		t.Parallel()
		o := run("--nats-url", "nats://bob:s3cret@127.0.0.1:1", "--timeout", "3s", "kill", "x").want(t, 1)
		if strings.Contains(o.stderr, "s3cret") {
			t.Errorf("stderr shows the password: %s", o.stderr)
		}
	})
}

// TestMalformedReplies: what a broken or hostile agent sends is reported,
// never a panic; a malformed result is skipped and the next one is used.
func TestMalformedReplies(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.URL())
	js := natstest.JetStream(t, nc)
	reply := func(subj, data string) {
		if _, err := nc.Subscribe(subj, func(m *nats.Msg) { _ = m.Respond([]byte(data)) }); err != nil {
			t.Fatal(err)
		}
	}
	reply("agents.fake.ping", "garbage")
	reply("agents.fake-null.ping", "null")
	reply("agents.fake-type.ping", `{"pc_id":7}`)
	reply("logs.fetch.fake", "kanade-agent: this agent writes no log file")
	// A fake agent: a malformed result, then one with an exit code no
	// process can exit with.
	if _, err := nc.Subscribe("commands.pc.fake", func(m *nats.Msg) {
		c, err := wire.DecodeCommand(m.Data)
		if err != nil {
			return
		}
		subj := "results." + c.RequestID
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = js.Publish(ctx, subj, []byte(`{"exit_code":"x"`))
		r, _ := json.Marshal(wire.ExecResult{ResultID: "r1", RequestID: c.RequestID, PcID: "fake", ExitCode: 300, Stdout: "partial"})
		_, _ = js.Publish(ctx, subj, r)
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	k := kanade(srv.URL())

	for _, pc := range []string{"fake", "fake-null", "fake-type"} {
		o := k("ping", pc).want(t, 1)
		mentions(t, "ping "+pc, o.stderr, "malformed reply on agents."+pc+".ping")
	}
	o := k("logs", "fake").want(t, 1)
	mentions(t, "logs", o.stderr, "pc fake answered: this agent writes no log file")

	o = k("exec", "--pc", "fake", "--wait", "20s", "echo").want(t, 1)
	mentions(t, "exec stderr", o.stderr, "ignoring a malformed result", "pc fake: exit 300")
	if o.stdout != "partial" {
		t.Errorf("stdout %q, want the output as sent", o.stdout)
	}
}
