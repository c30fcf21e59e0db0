package agent_test

import (
	"errors"
	"fmt"
	"github.com/kanade/kanade-agent/agent"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/nats-io/nats.go"
)

// TestInfraCheckSharedInProcess: agents of one process that dial the same
// server with the same credentials check the protocol's streams, buckets
// and object stores once between them, not once each: starting six asks
// the server for far fewer stream infos than six checks (13 each) would.
func TestInfraCheckSharedInProcess(t *testing.T) {
	e := newEnv(t)
	var infos atomic.Int64
	sub, err := e.nc.Subscribe("$JS.API.STREAM.INFO.>", func(m *nats.Msg) {
		// The gate walks look up their two buckets: not the check's.
		if !strings.HasSuffix(m.Subject, ".KV_script_current") && !strings.HasSuffix(m.Subject, ".KV_script_status") {
			infos.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	const agents = 6
	for i := range agents {
		e.start(fmt.Sprintf("pc-infra%d", i), "", nil)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	_ = sub.Unsubscribe()
	// One check is 13 stream infos; allow a second one (a check that ran
	// as the first one's success was being recorded).
	if n := infos.Load(); n > 2*13 {
		t.Fatalf("%d agents asked for %d stream infos, want one check's 13 (at most two checks)", agents, n)
	}
}

// TestInfraCheckNotSharedAcrossServers: the shared check's success stands
// for the server that passed it, not for another that took its address
// since: an agent dialling the same URL, now served by a server without
// the streams, checks again and waits for them.
func TestInfraCheckNotSharedAcrossServers(t *testing.T) {
	first := natstest.RunServerWith(t, natstest.Options{Direct: true}) // its port is freed at Shutdown
	url := first.URL()
	a := launch(t, agent.Options{PcID: "pc-addr1", DataDir: natstest.TempDir(t), Servers: []string{url}})
	if err := readyOrErr(a, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	stopWithin(t, a, 30*time.Second)
	first.Shutdown()
	natstest.RunServerWith(t, natstest.Options{Port: first.Port(), Bare: true})
	var log natstest.Buffer
	b := launch(t, agent.Options{PcID: "pc-addr2", DataDir: natstest.TempDir(t), Servers: []string{url},
		Logger: slog.New(slog.NewTextHandler(&log, nil))})
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if !strings.Contains(log.String(), "waiting for streams and buckets") {
			return errors.New("the agent on the bare server did not check its streams")
		}
		return nil
	})
	_ = b
}

// TestIdleAgentGoroutines: an idle agent runs its command intake, side
// worker and request handlers without goroutines of their own (they start
// when work arrives), and its periodic work on one goroutine. Agents share
// an intake lane (one mover per eight agents). The count includes the
// embedded server's goroutines for each agent's connection.
func TestIdleAgentGoroutines(t *testing.T) {
	e := newEnv(t)
	// The test server's relay (natstest) runs two goroutines per
	// connection: not the agent's, nor an embedded server's.
	count := func() int { return runtime.NumGoroutine() - e.srv.RelayGoroutines() }
	before := count()
	const agents = 8
	for i := range agents {
		a := e.start(fmt.Sprintf("pc-idle%d", i), "", nil)
		// A command and a ping: the on-demand workers ran and ended.
		c := cmd(noopScript)
		e.publish(pcSubject(a.PcID()), c)
		e.waitResult(c.RequestID, 20*time.Second)
		if _, err := e.nc.Request("agents."+a.PcID()+".ping", nil, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// Goroutines that end (the command's, the workers') take a moment.
	const most = 31 // 36 before the intake, requests and timers were merged
	var per float64
	natstest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		per = float64(count()-before) / agents
		if per > most {
			return fmt.Errorf("%.1f goroutines per idle agent, want at most %d", per, most)
		}
		return nil
	})
	t.Logf("%.1f goroutines per idle agent (with the server's for its connection)", per)
}
