package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/provision"
	"github.com/kanade/kanade-agent/subject"
)

// fullHandler counts "cannot store result" records whose error says the
// outbox is full, and discards everything.
type fullHandler struct{ n *atomic.Int64 }

func (h fullHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h fullHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h fullHandler) WithGroup(string) slog.Handler            { return h }
func (h fullHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "cannot store result" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" && strings.Contains(a.Value.String(), "outbox: full") {
			h.n.Add(1)
		}
		return true
	})
	return nil
}

// TestResultsOutboxFull: when the results outbox holds its MaxBytes (here:
// one result that cannot be published because RESULTS is gone), a new
// result is refused with outbox.ErrFull and the agent keeps it and retries
// until it is stored; once the server takes the first, both arrive.
func TestResultsOutboxFull(t *testing.T) {
	defer agent.SetOutboxMaxBytes("results", 1)()
	e := newEnv(t)
	var full atomic.Int64
	e.start("pc-full", "", func(o *agent.Options) { o.Logger = slog.New(fullHandler{&full}) })
	ctx := context.Background()
	if err := e.js.DeleteStream(ctx, subject.StreamResults); err != nil {
		t.Fatal(err)
	}
	c1, c2 := cmd("echo one"), cmd("echo two")
	e.publish(pcSubject("pc-full"), c1)
	e.publish(pcSubject("pc-full"), c2)
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if n := full.Load(); n == 0 {
			return fmt.Errorf("no result refused by the full outbox yet")
		}
		return nil
	})
	if err := provision.Ensure(ctx, e.js); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{c1.RequestID, c2.RequestID} {
		if r := e.waitResult(c, 90*time.Second); r.ExitCode != 0 {
			t.Fatalf("result %+v", r)
		}
	}
}
