package cli_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/cli"
	"github.com/kanade/kanade-agent/internal/execconsumer"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
	"github.com/nats-io/nats.go/jetstream"
)

// consumerEnv is a provisioned server with a backend JetStream context.
type consumerEnv struct {
	srv             *natstest.Server
	js              jetstream.JetStream
	exec            jetstream.Stream
	groups, derived jetstream.KeyValue
	ctx             context.Context
}

func newConsumerEnv(t *testing.T) *consumerEnv {
	t.Helper()
	srv := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, srv.URL()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	e := &consumerEnv{srv: srv, js: js, ctx: ctx}
	var err error
	if e.exec, err = js.Stream(ctx, subject.StreamExec); err != nil {
		t.Fatal(err)
	}
	if e.groups, err = js.KeyValue(ctx, subject.BucketGroups); err != nil {
		t.Fatal(err)
	}
	if e.derived, err = js.KeyValue(ctx, subject.BucketGroupsDerived); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *consumerEnv) put(t *testing.T, kv jetstream.KeyValue, key, value string) {
	t.Helper()
	if _, err := kv.Put(e.ctx, key, []byte(value)); err != nil {
		t.Fatal(err)
	}
}

// config returns the stored configuration of agent-<pc>.
func (e *consumerEnv) config(pc string) (jetstream.ConsumerConfig, error) {
	c, err := e.exec.Consumer(e.ctx, "agent-"+pc)
	if err != nil {
		return jetstream.ConsumerConfig{}, err
	}
	return c.CachedInfo().Config, nil
}

// wantConsumer fails unless agent-<pc> is execconsumer.Config(pc, groups).
func (e *consumerEnv) wantConsumer(t *testing.T, pc string, groups ...string) {
	t.Helper()
	if err := e.checkConsumer(pc, groups...); err != nil {
		t.Fatal(err)
	}
}

func (e *consumerEnv) checkConsumer(pc string, groups ...string) error {
	have, err := e.config(pc)
	if err != nil {
		return fmt.Errorf("agent-%s: %w", pc, err)
	}
	want, err := execconsumer.Config(pc, groups)
	if err != nil {
		return err
	}
	if d := execconsumer.Differences(have, want); d != nil {
		return fmt.Errorf("agent-%s differs: %q", pc, d)
	}
	if !slices.Equal(have.FilterSubjects, want.FilterSubjects) {
		return fmt.Errorf("agent-%s filters %q, want %q", pc, have.FilterSubjects, want.FilterSubjects)
	}
	return nil
}

// TestConsumerSync: sync creates the consumer of every PC with a groups
// key and of every PC with an agent-* consumer, with exactly the agent's
// filters (the union of both buckets, invalid names left out) and
// settings; a second run changes nothing; a group change is applied (and
// printed) by the next sync; --pc limits it; a groups document that does
// not decode leaves that PC's consumer alone and fails the run.
func TestConsumerSync(t *testing.T) {
	t.Parallel()
	e := newConsumerEnv(t)
	k := kanade(e.srv.URL())
	e.put(t, e.groups, "pc-a", `{"groups":["lab","ops"]}`)
	e.put(t, e.derived, "pc-a", `{"groups":["ops","site-1","bad.name"]}`)
	e.put(t, e.derived, "pc-b", `{"groups":["site-2"]}`)
	// A stale consumer of a PC without groups keys.
	if _, err := e.exec.CreateConsumer(e.ctx, jetstream.ConsumerConfig{Durable: "agent-pc-z",
		FilterSubjects: []string{"commands.all", "commands.pc.pc-z", "commands.group.old"},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: time.Minute, Description: "the operator's", Metadata: map[string]string{"owner": "ops"}}); err != nil {
		t.Fatal(err)
	}
	// Not an agent's: left alone.
	if _, err := e.exec.CreateConsumer(e.ctx, jetstream.ConsumerConfig{Durable: "audit", AckPolicy: jetstream.AckNonePolicy}); err != nil {
		t.Fatal(err)
	}

	o := k("consumer", "sync").want(t, 0)
	mentions(t, "stdout", o.stdout,
		"created agent-pc-a: commands.all commands.pc.pc-a commands.group.lab commands.group.ops commands.group.site-1\n",
		"created agent-pc-b: commands.all commands.pc.pc-b commands.group.site-2\n",
		"updated agent-pc-z: filters: -commands.group.old; ack_wait: 1m0s, want 30s; max_ack_pending: 1000, want 1024\n",
		"synced 3 consumers: 2 created, 1 updated, 0 unchanged, 0 failed\n")
	e.wantConsumer(t, "pc-a", "lab", "ops", "site-1")
	e.wantConsumer(t, "pc-b", "site-2")
	e.wantConsumer(t, "pc-z")
	if c, _ := e.config("pc-z"); c.Description != "the operator's" || c.Metadata["owner"] != "ops" {
		t.Errorf("sync dropped what it does not manage: description %q, metadata %v", c.Description, c.Metadata)
	}
	if c, err := e.exec.Consumer(e.ctx, "audit"); err != nil || c.CachedInfo().Config.AckPolicy != jetstream.AckNonePolicy {
		t.Errorf("consumer audit changed: %v", err)
	}

	o = k("consumer", "sync").want(t, 0)
	if !strings.HasPrefix(o.stdout, "synced 3 consumers: 0 created, 0 updated, 3 unchanged, 0 failed\n") {
		t.Errorf("second sync:\n%s", o.stdout)
	}

	// Groups change: pc-a leaves lab and joins dev; pc-b's derived key goes.
	e.put(t, e.groups, "pc-a", `{"groups":["dev","ops"]}`)
	if err := e.derived.Delete(e.ctx, "pc-b"); err != nil {
		t.Fatal(err)
	}
	o = k("consumer", "sync", "--pc", "pc-a").want(t, 0)
	mentions(t, "stdout", o.stdout, "updated agent-pc-a: filters: +commands.group.dev -commands.group.lab\n",
		"synced 1 consumers: 0 created, 1 updated")
	e.wantConsumer(t, "pc-a", "dev", "ops", "site-1")
	e.wantConsumer(t, "pc-b", "site-2") // not named: untouched
	o = k("consumer", "sync").want(t, 0)
	mentions(t, "stdout", o.stdout, "updated agent-pc-b: filters: -commands.group.site-2\n")
	e.wantConsumer(t, "pc-b")

	// A document that does not decode: that PC is left as it is.
	e.put(t, e.groups, "pc-a", `{"groups":"lab"}`)
	e.put(t, e.groups, "pc-m", `not json`)
	o = k("consumer", "sync").want(t, 1)
	mentions(t, "stderr", o.stderr, "agent-pc-a: agent_groups pc-a does not decode", "agent-pc-m: agent_groups pc-m does not decode")
	mentions(t, "stdout", o.stdout, "2 failed")
	e.wantConsumer(t, "pc-a", "dev", "ops", "site-1")
	if _, err := e.config("pc-m"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("agent-pc-m: %v, want not found", err)
	}

	o = k("consumer", "ls").want(t, 0)
	mentions(t, "stdout", o.stdout, "agent-pc-a", "commands.all commands.pc.pc-a commands.group.dev commands.group.ops commands.group.site-1")
	if strings.Contains(o.stdout, "audit") {
		t.Errorf("ls lists a consumer that is not an agent's:\n%s", o.stdout)
	}
}

// TestConsumerSyncMatchesAgent: the consumer a create-mode agent makes
// for itself is the one sync would make: sync finds nothing to change.
func TestConsumerSyncMatchesAgent(t *testing.T) {
	t.Parallel()
	e := newConsumerEnv(t)
	e.put(t, e.groups, "pc-x", `{"groups":["lab"]}`)
	e.put(t, e.derived, "pc-x", `{"groups":["site-1","lab"]}`)
	startAgent(t, e.srv.URL(), "pc-x", nil)
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		return e.checkConsumer("pc-x", "lab", "site-1")
	})
	o := kanade(e.srv.URL())("consumer", "sync", "--pc", "pc-x").want(t, 0)
	if !strings.HasPrefix(o.stdout, "synced 1 consumers: 0 created, 0 updated, 1 unchanged") {
		t.Errorf("sync after the agent:\n%s", o.stdout)
	}
}

// TestConsumerSyncWatch: sync --watch syncs every PC, then follows both
// groups buckets: a PC whose groups change, or a new PC, gets its
// consumer updated or created, until interrupted (exit 0).
func TestConsumerSyncWatch(t *testing.T) {
	t.Parallel()
	e := newConsumerEnv(t)
	e.put(t, e.groups, "pc-a", `{"groups":["lab"]}`)

	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr natstest.Buffer
	var wg sync.WaitGroup
	code := -1
	wg.Add(1)
	go func() {
		defer wg.Done()
		code = cli.Run(ctx, []string{"--nats-url", e.srv.URL(), "consumer", "sync", "--watch"},
			cli.Env{Stdout: &stdout, Stderr: &stderr})
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			wg.Wait()
		}
	}
	t.Cleanup(stop)
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if !strings.Contains(stderr.String(), "following agent_groups and agent_groups_derived") {
			return fmt.Errorf("not following yet; stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
		return e.checkConsumer("pc-a", "lab")
	})

	e.put(t, e.derived, "pc-a", `{"groups":["site-1"]}`)
	e.put(t, e.groups, "pc-new", `{"groups":["ops"]}`)
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if err := e.checkConsumer("pc-a", "lab", "site-1"); err != nil {
			return err
		}
		return e.checkConsumer("pc-new", "ops")
	})
	if err := e.groups.Delete(e.ctx, "pc-a"); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		return e.checkConsumer("pc-a", "site-1")
	})
	stop()
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	mentions(t, "stdout", stdout.String(), "created agent-pc-a: commands.all commands.pc.pc-a commands.group.lab\n",
		"updated agent-pc-a: filters: +commands.group.site-1\n", "created agent-pc-new:",
		"updated agent-pc-a: filters: -commands.group.lab\n")
}
