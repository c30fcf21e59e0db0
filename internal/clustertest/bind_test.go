package clustertest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/cli"
	"github.com/kanade/kanade-agent/internal/execconsumer"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
	"github.com/nats-io/nats.go/jetstream"
)

// TestPermissionsBindOnlyConsumer shows the server side of closing gap 2
// of docs/cluster.md with pc-c of docs/examples/permissions.conf: with the
// backend creating agent-pc-c (filtered to the PC's subjects) and the PC
// allowed only to bind to it, the PC reads its own stored commands and
// cannot re-filter the consumer to another PC's.
func TestPermissionsBindOnlyConsumer(t *testing.T) {
	e := newPermEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := execconsumer.Config("pc-c", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.CreateOrUpdateConsumer(ctx, subject.StreamExec, cfg); err != nil {
		t.Fatal(err)
	}
	mine, other := command(echoScript("mine")), command(echoScript("other"))
	publishCommand(t, e.js, "commands.pc.pc-b", other)
	publishCommand(t, e.js, "commands.pc.pc-c", mine)

	nc, v := connectAs(t, e.ns.ClientURL(), "pc-c")
	pjs := natstest.JetStream(t, nc)
	cons, err := pjs.Consumer(ctx, subject.StreamExec, "agent-pc-c")
	if err != nil {
		t.Fatalf("bind: %v", err)
	}
	batch, err := cons.Fetch(10, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for m := range batch.Messages() {
		if m.Subject() != "commands.pc.pc-c" || !bytes.Contains(m.Data(), []byte(mine.RequestID)) {
			t.Errorf("read %s %q", m.Subject(), m.Data())
		}
		if err := m.DoubleAck(ctx); err != nil {
			t.Errorf("ack: %v", err)
		}
		got++
	}
	if got != 1 {
		t.Fatalf("read %d commands, want 1 (%v)", got, batch.Error())
	}

	short, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	if _, err := pjs.CreateOrUpdateConsumer(short, subject.StreamExec, jetstream.ConsumerConfig{
		Durable: "agent-pc-c", FilterSubjects: []string{subject.CommandsAll, "commands.pc.pc-b"},
		DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy, AckPolicy: jetstream.AckExplicitPolicy}); err == nil {
		t.Fatal("pc-c re-filtered its consumer to pc-b's commands")
	}
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if !v.has("Publish", "$JS.API.CONSUMER.CREATE.EXEC.agent-pc-c") {
			return errors.New("creating agent-pc-c was not refused")
		}
		return nil
	})
}

// kanadeCLI runs the kanade command line as the backend user against url.
func kanadeCLI(t *testing.T, url string, args ...string) (string, string) {
	t.Helper()
	var stdout, stderr natstest.Buffer
	all := append([]string{"--nats-url", url, "--nats-user", "backend", "--nats-password", "backend-secret"}, args...)
	if code := cli.Run(context.Background(), all, cli.Env{Stdout: &stdout, Stderr: &stderr}); code != 0 {
		t.Fatalf("kanade %q: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String()
}

// logHas returns an error unless log holds a line with every one of subs.
func logHas(log *natstest.Buffer, subs ...string) error {
	for _, l := range strings.Split(log.String(), "\n") {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("no log line with %q yet", subs)
}

// TestBindModeAgent runs pc-c's agent of docs/examples/permissions.conf in
// bind mode, whose user may not create consumers on EXEC: with no consumer
// it becomes ready and waits (saying why, once); once 'kanade consumer
// sync' created agent-pc-c it runs the command stored before it started;
// a group the consumer lacks is warned about (naming the missing filter)
// until a sync adds it; a consumer the operator deletes is waited for and
// bound again when it is back. The server reports no permission violation
// to the agent at any point: it never tries to create or update its
// consumer.
func TestBindModeAgent(t *testing.T) {
	e := newPermEnv(t)
	url := e.ns.ClientURL()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stored := command(echoScript("stored-before-start"))
	publishCommand(t, e.js, "commands.pc.pc-c", stored)

	var log natstest.Buffer
	o := e.agentOpts("pc-c", &log)
	o.ExecConsumer = agent.ExecConsumerBind
	startAgents(t, o, "pc-c") // ready without a consumer
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		return logHas(&log, "waiting for EXEC consumer agent-pc-c", "not found")
	})
	if rs, err := resultsFor(e.js, stored.RequestID); err != nil || len(rs) != 0 {
		t.Fatalf("before the sync: %d results, %v", len(rs), err)
	}

	out, _ := kanadeCLI(t, url, "consumer", "sync", "--pc", "pc-c")
	if !strings.Contains(out, "created agent-pc-c: commands.all commands.pc.pc-c\n") {
		t.Fatalf("sync output:\n%s", out)
	}
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		rs, err := resultsFor(e.js, stored.RequestID)
		if err != nil {
			return err
		}
		if len(rs) != 1 || rs[0].result.PcID != "pc-c" || rs[0].result.Stdout != "stored-before-start"+nl {
			return fmt.Errorf("results: %+v", rs)
		}
		return nil
	})
	if n := strings.Count(log.String(), "waiting for EXEC consumer"); n != 1 {
		t.Errorf("the missing consumer was logged %d times, want once", n)
	}

	// A group the consumer lacks: warned about, naming the filter, until
	// a sync adds it.
	groups, err := e.js.KeyValue(ctx, subject.BucketGroups)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := groups.Put(ctx, "pc-c", []byte(`{"groups":["lab"]}`)); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		return logHas(&log, "level=WARN", "EXEC consumer filters differ", "missing=[commands.group.lab]", "extra=[]")
	})
	out, _ = kanadeCLI(t, url, "consumer", "sync")
	if !strings.Contains(out, "updated agent-pc-c: filters: +commands.group.lab\n") {
		t.Fatalf("sync output:\n%s", out)
	}
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		return logHas(&log, "EXEC consumer filters now match")
	})
	if n := strings.Count(log.String(), "EXEC consumer filters differ"); n != 1 {
		t.Errorf("the filter difference was logged %d times, want once:\n%s", n, grepLines(log.String(), "filters"))
	}

	// The operator deletes the consumer: the agent waits for it and binds
	// again once a sync re-created it (its pull is then waiting on it).
	st, err := e.js.Stream(ctx, subject.StreamExec)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteConsumer(ctx, "agent-pc-c"); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 60*time.Second, 20*time.Millisecond, func() error {
		if strings.Count(log.String(), "waiting for EXEC consumer") < 2 {
			return errors.New("the agent did not notice the deleted consumer")
		}
		return nil
	})
	kanadeCLI(t, url, "consumer", "sync", "--pc", "pc-c")
	natstest.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		c, err := st.Consumer(ctx, "agent-pc-c")
		if err != nil {
			return err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumWaiting == 0 {
			return errors.New("no pull waiting on the re-created consumer")
		}
		if want := []string{"commands.all", "commands.pc.pc-c", "commands.group.lab"}; !slices.Equal(info.Config.FilterSubjects, want) {
			return fmt.Errorf("filters %q, want %q", info.Config.FilterSubjects, want)
		}
		return nil
	})
	if s := log.String(); strings.Contains(strings.ToLower(s), "permissions violation") {
		t.Errorf("the bind-mode agent hit a permission violation:\n%s", grepLines(s, "ermissions"))
	}
}

// TestCreateModeWithoutCreatePermission: an agent left in create mode
// whose user may not create its EXEC consumer (the operator set up
// bind-mode permissions, pc-c, and forgot --exec-consumer bind) is ready
// all the same, runs live commands, and says why it has no replay.
func TestCreateModeWithoutCreatePermission(t *testing.T) {
	e := newPermEnv(t)
	var log natstest.Buffer
	a := startAgents(t, e.agentOpts("pc-c", &log), "pc-c")[0] // fails the test if never ready
	live := command(echoScript("live"))
	publishCommand(t, e.js, "commands.pc.pc-c", live)
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		rs, err := resultsFor(e.js, live.RequestID)
		if err != nil {
			return err
		}
		if len(rs) != 1 || rs[0].result.PcID != a.PcID() || rs[0].result.Stdout != "live"+nl {
			return fmt.Errorf("results: %+v", rs)
		}
		return nil
	})
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		return logHas(&log, "level=WARN", "waiting for EXEC consumer agent-pc-c")
	})
}
