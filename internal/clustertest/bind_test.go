package clustertest_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/provision"
	"github.com/kanade/kanade-agent/subject"
	"github.com/nats-io/nats.go/jetstream"
)

// bindOnlyConf is the EXEC part of a per-agent user when the backend owns
// the agents' EXEC consumers (docs/cluster.md, gap 2): the PC may look up,
// pull from and ack its consumer agent-pc-c, and not create or update it.
const bindOnlyConf = `
jetstream {}
authorization {
  users = [
    { user: backend, password: "backend-secret" }
    { user: pc-c, password: "pc-c-secret", permissions: {
      publish: { allow: [
        "$JS.API.CONSUMER.INFO.EXEC.agent-pc-c",
        "$JS.API.CONSUMER.MSG.NEXT.EXEC.agent-pc-c",
        "$JS.ACK.EXEC.agent-pc-c.>",
      ] }
      subscribe: { allow: [ "_INBOX.pc-c.>" ] }
    } }
  ]
}
`

// TestPermissionsBindOnlyConsumer shows the server side of closing gap 2
// of docs/cluster.md: with the backend creating agent-pc-c (filtered to
// the PC's subjects) and the PC allowed only to bind to it, the PC reads
// its own stored commands and cannot re-filter the consumer to another
// PC's. (The agent itself has no bind-only mode yet: it always creates or
// updates its consumer.)
func TestPermissionsBindOnlyConsumer(t *testing.T) {
	path := filepath.Join(natstest.TempDir(t), "bind.conf")
	if err := os.WriteFile(path, []byte(bindOnlyConf), 0o600); err != nil {
		t.Fatal(err)
	}
	ns := runConfigServer(t, path)
	backend := natstest.Connect(t, ns.ClientURL(), backendUser)
	js := natstest.JetStream(t, backend)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := provision.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, subject.StreamExec, jetstream.ConsumerConfig{
		Durable: "agent-pc-c", FilterSubjects: []string{subject.CommandsAll, "commands.pc.pc-c"},
		DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy, AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	mine, other := command(echoScript("mine")), command(echoScript("other"))
	publishCommand(t, js, "commands.pc.pc-b", other)
	publishCommand(t, js, "commands.pc.pc-c", mine)

	pcPasswords["pc-c"] = "pc-c-secret"
	defer delete(pcPasswords, "pc-c")
	nc, v := connectAs(t, ns.ClientURL(), "pc-c")
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
