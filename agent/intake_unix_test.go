//go:build unix

package agent_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// TestEmitOnlyOnSuccess: as upstream, an emit command that fails keeps its
// stdout in the result and stores no event from it.
func TestEmitOnlyOnSuccess(t *testing.T) {
	e := newEnv(t)
	e.start("pc-emf", "", nil)
	line := `{"at":"2026-01-02T03:04:05Z","kind":"logon","source":"test:emit","payload":{"user":"bob"}}`
	c := cmd("echo '" + line + "'; exit 3")
	c.Emit = &wire.Emit{Type: wire.EmitEvents}
	e.publish(pcSubject("pc-emf"), c)
	r := e.waitResult(c.RequestID, 20*time.Second)
	if r.ExitCode != 3 || r.Stdout != line+"\n" || strings.Contains(r.Stderr, "emit") {
		t.Fatalf("failed emit result: %+v", r)
	}
	// A later clean emit command's event is stored; the failed one's never is.
	ok := cmd("echo '" + strings.Replace(line, "bob", "alice", 1) + "'")
	ok.Emit = &wire.Emit{Type: wire.EmitEvents}
	e.publish(pcSubject("pc-emf"), ok)
	if r := e.waitResult(ok.RequestID, 20*time.Second); r.ExitCode != 0 || r.Stdout != "" {
		t.Fatalf("clean emit result: %+v", r)
	}
	ctx := context.Background()
	var users []string
	natstest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		users = nil
		s, err := e.js.Stream(ctx, subject.StreamObs)
		if err != nil {
			return err
		}
		cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"obs.pc-emf"}})
		if err != nil {
			return err
		}
		for {
			m, err := cons.Next(jetstream.FetchMaxWait(200 * time.Millisecond))
			if err != nil {
				break
			}
			if ev, err := wire.DecodeObsEvent(m.Data()); err == nil && ev.Kind == "logon" {
				users = append(users, string(ev.Payload))
			}
		}
		if !strings.Contains(strings.Join(users, ","), "alice") {
			return fmt.Errorf("logon events %q", users)
		}
		return nil
	})
	if len(users) != 1 || !strings.Contains(users[0], "alice") {
		t.Fatalf("logon events %q, want only alice's", users)
	}
}
