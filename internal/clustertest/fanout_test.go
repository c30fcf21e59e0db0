package clustertest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
	"github.com/nats-io/nats.go/jetstream"
)

// fanoutAgents is the number of agents of the fan-out test.
const fanoutAgents = 20

// TestFanoutExecLeaderCrash runs a commands.all fan-out to 20 agents
// connected with every node's URL and crashes the node leading EXEC while
// the command runs on every PC: each agent's result must be stored exactly
// once (the EXEC replay of the command after the crash is a duplicate the
// dedup ledger drops), and the agents must go on working: a second
// command while the node is down and a third once it is back run on every
// PC, each stored exactly once.
func TestFanoutExecLeaderCrash(t *testing.T) {
	began := time.Now()
	c := natstest.RunCluster(t, 3)
	pcs := pcIDs(fanoutAgents)
	agents := startAgents(t, agent.Options{Servers: c.URLs()}, pcs...)
	t.Logf("cluster and %d agents ready in %v", len(agents), time.Since(began).Round(time.Millisecond))

	leader := c.WaitStreamLeader(subject.StreamExec, 10*time.Second)
	// The test's own connection stays off the node that will crash.
	nc := connect(t, first(c.URLs(), (leader+1)%c.Size()))
	js := natstest.JetStream(t, nc)

	cmd := command(sleepEchoScript(2, "one"))
	publishCommand(t, js, subject.CommandsAll, cmd)
	// Every agent has the command (live) before the crash: it runs for
	// about 2 s, so the crash lands mid-run.
	natstest.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		for _, a := range agents {
			if a.Stats().Received == 0 {
				return fmt.Errorf("agent %s has not received the command", a.PcID())
			}
		}
		return nil
	})
	resultsLeader := c.WaitStreamLeader(subject.StreamResults, 10*time.Second)
	crashed := time.Now()
	c.Crash(leader)
	t.Logf("crashed %s, the EXEC leader (RESULTS leader: %s)", c.Node(leader).Name(), c.Node(resultsLeader).Name())
	waitResults(t, js, agents, pcs, cmd.RequestID, "one"+nl, 50*time.Second)
	t.Logf("all %d results of the first command %v after the crash", len(pcs), time.Since(crashed).Round(time.Millisecond))

	second := command(echoScript("two"))
	publishCommand(t, js, subject.CommandsAll, second)
	waitResults(t, js, agents, pcs, second.RequestID, "two"+nl, 30*time.Second)

	c.Start(leader)
	c.WaitStreamCurrent(subject.StreamExec, 30*time.Second)
	third := command(echoScript("three"))
	publishCommand(t, js, subject.CommandsAll, third)
	waitResults(t, js, agents, pcs, third.RequestID, "three"+nl, 30*time.Second)
	// The first command, replayed to agents whose connection moved, ran
	// once all the same.
	if rs, err := resultsFor(js, cmd.RequestID); err != nil {
		t.Fatal(err)
	} else if err := onePerPC(rs, pcs, "one"+nl); err != nil {
		t.Fatal(err)
	}
	var dups int64
	for _, a := range agents {
		dups += a.Stats().Duplicates
	}
	t.Logf("duplicates dropped by the agents' ledgers: %d", dups)
}

// waitResults waits until every pc has stored its result of requestID
// with stdout want, and the agents' outboxes are empty; then exactly one
// result per pc must be in RESULTS.
func waitResults(t *testing.T, js jetstream.JetStream, agents []*running, pcs []string, requestID, want string, within time.Duration) {
	t.Helper()
	natstest.CheckFor(t, within, 50*time.Millisecond, func() error {
		rs, err := resultsFor(js, requestID)
		if err != nil {
			return err
		}
		if len(rs) < len(pcs) {
			return fmt.Errorf("%d of %d results stored", len(rs), len(pcs))
		}
		return nil
	})
	waitOutboxesEmpty(t, agents, within)
	rs, err := resultsFor(js, requestID)
	if err != nil {
		t.Fatal(err)
	}
	if err := onePerPC(rs, pcs, want); err != nil {
		t.Fatal(err)
	}
}
