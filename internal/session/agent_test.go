package session_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/internal/session"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
)

// A real agent with the session Source, whose helper (this test binary
// playing a script, see TestMain) reports active, then idle, then active
// again: the three events land in OBS_EVENTS on obs.<pc_id>, with the
// agent's pc id, upstream's source and dedup key, and a null payload.
func TestAgentRecordsPresence(t *testing.T) {
	srv := natstest.RunServer(t)
	t.Setenv("KANADE_SESSION_TEST_HELPER", `{"idle_ms":1000}|{"idle_ms":2000}|{"idle_ms":300000}|{"idle_ms":310000}|{"idle_ms":50}`)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := session.New(session.Options{HelperPath: exe, Sample: 50 * time.Millisecond, StaleAfter: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Options{
		PcID: "pc-presence", DataDir: natstest.TempDir(t), Servers: []string{srv.URL()},
		DisableInventory: true, Logger: slog.New(slog.DiscardHandler),
		ObsSources: []agent.ObsSource{src},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("agent did not stop")
		}
	})

	js := natstest.JetStream(t, natstest.Connect(t, srv.URL()))
	var got []wire.ObsEvent
	natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		evs, err := presenceEvents(js, "pc-presence")
		if err != nil {
			return err
		}
		got = evs
		var kinds []string
		for _, e := range evs {
			kinds = append(kinds, e.Kind)
		}
		if k := strings.Join(kinds, ","); k != "active,idle,active" {
			return fmt.Errorf("presence events %q, want active,idle,active", k)
		}
		return nil
	})
	for _, e := range got {
		if e.PcID != "pc-presence" || e.Source != "agent:idle_sampler" ||
			e.EventRecordID != fmt.Sprintf("%s:%d", e.Kind, e.At.UnixMilli()) || string(e.Payload) != "null" {
			t.Errorf("event %+v", e)
		}
	}
}

// presenceEvents returns the active/idle events stored for pcID.
func presenceEvents(js jetstream.JetStream, pcID string) ([]wire.ObsEvent, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, subject.StreamObs)
	if err != nil {
		return nil, err
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"obs." + pcID}})
	if err != nil {
		return nil, err
	}
	batch, err := c.FetchNoWait(1000)
	if err != nil {
		return nil, err
	}
	var out []wire.ObsEvent
	for m := range batch.Messages() {
		ev, err := wire.DecodeObsEvent(m.Data())
		if err != nil {
			return nil, fmt.Errorf("obs event %s: %w", m.Data(), err)
		}
		if ev.Kind == session.KindActive || ev.Kind == session.KindIdle {
			out = append(out, *ev)
		}
	}
	return out, batch.Error()
}
