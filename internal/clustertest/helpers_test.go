package clustertest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		lvl := slog.LevelInfo
		if os.Getenv("KANADE_TEST_DEBUG") != "" {
			lvl = slog.LevelDebug
		}
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// running is an agent started by startAgents.
type running struct {
	*agent.Agent
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // Run's error, once done is closed
}

// startAgents starts one agent per pc id with opts (PcID and DataDir set
// per agent) and waits until every one is ready. t.Cleanup stops them.
func startAgents(t *testing.T, opts agent.Options, pcIDs ...string) []*running {
	t.Helper()
	out := make([]*running, len(pcIDs))
	for i, pc := range pcIDs {
		o := opts
		o.PcID, o.DataDir = pc, natstest.TempDir(t)
		if o.Logger == nil {
			o.Logger = testLogger(t)
		}
		if o.KillGrace == 0 {
			o.KillGrace = 500 * time.Millisecond
		}
		o.DisableInventory = true
		a, err := agent.New(o)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &running{Agent: a, cancel: cancel, done: make(chan struct{})}
		go func() {
			r.err = a.Run(ctx)
			close(r.done)
		}()
		t.Cleanup(func() {
			cancel()
			select {
			case <-r.done:
				if r.err != nil {
					t.Errorf("agent %s: Run: %v", pc, r.err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("agent %s did not stop", pc)
			}
		})
		out[i] = r
	}
	deadline := time.After(45 * time.Second)
	for i, r := range out {
		select {
		case <-r.Ready():
		case <-r.done:
			t.Fatalf("agent %s stopped before ready: %v", pcIDs[i], r.err)
		case <-deadline:
			t.Fatalf("agent %s not ready within 45 s", pcIDs[i])
		}
	}
	return out
}

// pcIDs returns n pc ids, pc-00 ... pc-<n-1>.
func pcIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("pc-%02d", i)
	}
	return out
}

// command returns an ad hoc command running script with testShell.
func command(script string) wire.Command {
	return wire.Command{ID: wire.AdhocID, RequestID: uuid.NewString(), Shell: testShell, Script: script, TimeoutSecs: 60}
}

// publishCommand stores c in EXEC on subj (and so delivers it live), as a
// backend does, retrying while the cluster has no EXEC leader.
func publishCommand(t *testing.T, js jetstream.JetStream, subj string, c wire.Command) {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := js.Publish(ctx, subj, b, jetstream.WithMsgID("cmd-"+c.RequestID))
		return err
	})
}

// stored is one message of RESULTS.
type stored struct {
	seq    uint64
	msgID  string
	result wire.ExecResult
}

// resultsFor returns every message stored on results.<requestID>, in
// stream order, with next-by-subject gets (no consumer is created) that
// the stream's leader answers ($JS.API.STREAM.MSG.GET): a direct get may be
// answered by a follower still catching up after a crash, which would
// show fewer results than were acknowledged.
func resultsFor(js jetstream.JetStream, requestID string) ([]stored, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	subj, err := subject.Result(requestID)
	if err != nil {
		return nil, err
	}
	var out []stored
	for seq := uint64(1); ; {
		req, _ := json.Marshal(map[string]any{"seq": seq, "next_by_subj": subj})
		m, err := js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+subject.StreamResults, req)
		if err != nil {
			return nil, err
		}
		var resp struct {
			Error *struct {
				Code        int    `json:"code"`
				Description string `json:"description"`
			} `json:"error"`
			Message struct {
				Seq  uint64 `json:"seq"`
				Hdrs []byte `json:"hdrs"`
				Data []byte `json:"data"`
			} `json:"message"`
		}
		if err := json.Unmarshal(m.Data, &resp); err != nil {
			return nil, fmt.Errorf("msg get: %w", err)
		}
		if resp.Error != nil {
			if resp.Error.Code == 404 {
				return out, nil
			}
			return nil, fmt.Errorf("msg get: %d %s", resp.Error.Code, resp.Error.Description)
		}
		r, err := wire.DecodeExecResult(resp.Message.Data)
		if err != nil {
			return nil, fmt.Errorf("seq %d: %w", resp.Message.Seq, err)
		}
		msgID := ""
		for _, line := range strings.Split(string(resp.Message.Hdrs), "\r\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), jetstream.MsgIDHeader) {
				msgID = strings.TrimSpace(v)
			}
		}
		out = append(out, stored{seq: resp.Message.Seq, msgID: msgID, result: *r})
		seq = resp.Message.Seq + 1
	}
}

// onePerPC checks that rs holds exactly one result per pc id of pcs, each
// with a distinct result_id and Nats-Msg-Id, exit 0 and stdout want.
func onePerPC(rs []stored, pcs []string, want string) error {
	if err := checkOnePerPC(rs, pcs, want); err != nil {
		var b strings.Builder
		for _, s := range rs {
			fmt.Fprintf(&b, "\n  seq %d pc %q result_id %s msg_id %s exec_id %q started %s",
				s.seq, s.result.PcID, s.result.ResultID, s.msgID, s.result.ExecID, s.result.StartedAt.Format(time.RFC3339Nano))
		}
		return fmt.Errorf("%w; stored:%s", err, b.String())
	}
	return nil
}

func checkOnePerPC(rs []stored, pcs []string, want string) error {
	byPC := map[string]int{}
	ids, msgIDs := map[string]bool{}, map[string]bool{}
	for _, s := range rs {
		r := s.result
		byPC[r.PcID]++
		if ids[r.ResultID] {
			return fmt.Errorf("result_id %s stored twice", r.ResultID)
		}
		ids[r.ResultID] = true
		if msgIDs[s.msgID] {
			return fmt.Errorf("Nats-Msg-Id %s stored twice", s.msgID)
		}
		msgIDs[s.msgID] = true
		if r.ExitCode != 0 || r.Skipped || r.Stdout != want {
			return fmt.Errorf("pc %s: exit %d skipped %v stdout %q stderr %q", r.PcID, r.ExitCode, r.Skipped, r.Stdout, r.Stderr)
		}
	}
	for _, pc := range pcs {
		if byPC[pc] != 1 {
			return fmt.Errorf("pc %s: %d results stored, want 1 (%d results in all)", pc, byPC[pc], len(rs))
		}
	}
	if len(rs) != len(pcs) {
		return fmt.Errorf("%d results stored, want %d", len(rs), len(pcs))
	}
	return nil
}

// waitOutboxesEmpty waits until every agent's outboxes are empty.
func waitOutboxesEmpty(t *testing.T, agents []*running, within time.Duration) {
	t.Helper()
	natstest.CheckFor(t, within, 20*time.Millisecond, func() error {
		for _, a := range agents {
			for name, s := range a.Stats().Outbox {
				if s.Pending > 0 {
					return fmt.Errorf("agent %s: outbox %s holds %d", a.PcID(), name, s.Pending)
				}
			}
		}
		return nil
	})
}

// connect connects to the cluster, listing urls in this order (no
// shuffle), with the test settings of natstest.Connect plus opts.
func connect(t *testing.T, urls []string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	return natstest.Connect(t, strings.Join(urls, ","), append([]nats.Option{nats.DontRandomize()}, opts...)...)
}

// first returns urls with urls[i] moved to the front.
func first(urls []string, i int) []string {
	out := []string{urls[i]}
	for j, u := range urls {
		if j != i {
			out = append(out, u)
		}
	}
	return out
}
