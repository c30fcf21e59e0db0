package agent_test

// Helpers shared by the integration tests of every OS. Each OS's test file
// (agent_unix_test.go, agent_windows_test.go) defines:
//
//	testShell        the shell cmd uses: sh on Unix, cmd on Windows
//	unsupportedShell a shell the runner refuses on this OS (exit 122)
//	nl               the line ending of echo: "\n", or "\r\n" under cmd
//	noopScript       a script that does nothing and exits 0
//	sleepScript(n)   a script that runs for about n seconds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
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

// env is one test's server, client connection and agents.
type env struct {
	t   *testing.T
	srv *natstest.Server
	nc  *nats.Conn
	js  jetstream.JetStream
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.URL())
	return &env{t: t, srv: srv, nc: nc, js: natstest.JetStream(t, nc)}
}

// running is an agent started by env.start.
type running struct {
	*agent.Agent
	dir    string
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // Run's error, once done is closed
}

// stop stops the agent and waits for Run to return.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("agent Run: %v", r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not stop within 30 s")
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// start runs an agent with pc id pcID and data dir dir (a new temp dir when
// empty) until the test ends, and waits until it is ready.
// noFloors lets a test set intervals below wire's minimums (fast heartbeats).
func noFloors(o *agent.Options) {
	d := wire.DefaultConfig(runtime.NumCPU())
	d.Floors = wire.Floors{}
	o.Defaults = &d
}

func (e *env) start(pcID, dir string, tweak func(*agent.Options)) *running {
	e.t.Helper()
	if dir == "" {
		dir = natstest.TempDir(e.t)
	}
	o := agent.Options{
		PcID: pcID, DataDir: dir, Servers: []string{e.srv.URL()},
		Logger: testLogger(e.t), KillGrace: 500 * time.Millisecond, DisableInventory: true,
	}
	if tweak != nil {
		tweak(&o)
	}
	a, err := agent.New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Agent: a, dir: dir, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = a.Run(ctx)
		close(r.done)
	}()
	e.t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			e.t.Error("agent did not stop")
		}
	})
	select {
	case <-a.Ready():
	case <-r.done:
		e.t.Fatalf("agent stopped before ready: %v", r.err)
	case <-time.After(20 * time.Second):
		e.t.Fatal("agent not ready within 20 s")
	}
	return r
}

// cmd returns a command running script with testShell (sh on Unix, cmd on
// Windows).
func cmd(script string) wire.Command {
	return wire.Command{ID: wire.AdhocID, RequestID: uuid.NewString(), Shell: testShell, Script: script, TimeoutSecs: 60}
}

func (e *env) publish(subj string, c wire.Command) {
	e.t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		e.t.Fatal(err)
	}
	e.publishRaw(subj, b)
}

func (e *env) publishRaw(subj string, b []byte) {
	e.t.Helper()
	if err := e.nc.Publish(subj, b); err != nil {
		e.t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		e.t.Fatal(err)
	}
}

func pcSubject(pcID string) string {
	s, err := subject.CommandsPC(pcID)
	if err != nil {
		panic(err)
	}
	return s
}

// results returns every result stored for requestID, in stream order. It
// reads them one by one with next-by-subject gets: no consumer is created,
// so polling it does not pile up ephemeral consumers (a stream takes 1000).
func (e *env) results(requestID string) ([]wire.ExecResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	subj, err := subject.Result(requestID)
	if err != nil {
		return nil, err
	}
	st, err := e.js.Stream(ctx, subject.StreamResults)
	if err != nil {
		return nil, err
	}
	var out []wire.ExecResult
	for seq := uint64(1); ; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		r, err := wire.DecodeExecResult(m.Data)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
		seq = m.Sequence + 1
	}
}

// waitResult waits for the result of requestID and returns it.
func (e *env) waitResult(requestID string, within time.Duration) wire.ExecResult {
	e.t.Helper()
	var res wire.ExecResult
	natstest.CheckFor(e.t, within, 20*time.Millisecond, func() error {
		rs, err := e.results(requestID)
		if err != nil {
			return err
		}
		if len(rs) == 0 {
			return fmt.Errorf("no result for %s yet", requestID)
		}
		res = rs[0]
		return nil
	})
	return res
}

func (e *env) kvPut(bucket, key string, v any) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := e.js.KeyValue(ctx, bucket)
	if err != nil {
		e.t.Fatal(err)
	}
	var b []byte
	switch v := v.(type) {
	case string:
		b = []byte(v)
	default:
		if b, err = json.Marshal(v); err != nil {
			e.t.Fatal(err)
		}
	}
	if _, err := kv.Put(ctx, key, b); err != nil {
		e.t.Fatal(err)
	}
}

func countLines(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

func ptr[T any](v T) *T { return &v }
