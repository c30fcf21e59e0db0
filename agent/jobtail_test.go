package agent_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
)

// waitFileScript prints first on stdout, waits until path exists, then
// prints last on stderr.
func waitFileScript(path, first, last string) string {
	if runtime.GOOS == "windows" {
		return fmt.Sprintf("echo %s\r\n:w\r\nif not exist \"%s\" (ping -n 1 127.0.0.1 >NUL & goto w)\r\necho %s 1>&2", first, path, last)
	}
	return fmt.Sprintf("echo %s; while [ ! -f '%s' ]; do sleep 0.05; done; echo %s >&2", first, path, last)
}

// jobTail asks the agent pcID for the live tail of resultID.
func (e *env) jobTail(pcID string, body []byte) wire.JobTailReply {
	e.t.Helper()
	subj, _ := subject.JobTail(pcID)
	m, err := e.nc.Request(subj, body, 10*time.Second)
	if err != nil {
		e.t.Fatalf("job.tail: %v", err)
	}
	r, err := wire.DecodeJobTailReply(m.Data)
	if err != nil {
		e.t.Fatalf("job.tail reply %s: %v", m.Data, err)
	}
	return *r
}

func tailReq(resultID string) []byte {
	b, _ := json.Marshal(wire.JobTailRequest{ResultID: resultID})
	return b
}

// startedResultID runs c on pcID and returns the result_id its
// events.started announces.
func (e *env) startedResultID(pcID string, c wire.Command) string {
	e.t.Helper()
	started := make(chan *wire.EventStarted, 1)
	sub, err := e.nc.Subscribe("events.started."+c.ExecID+"."+pcID, func(m *nats.Msg) {
		if ev, err := wire.DecodeEventStarted(m.Data); err == nil {
			started <- ev
		}
	})
	if err != nil {
		e.t.Fatal(err)
	}
	defer sub.Unsubscribe()
	e.publish(pcSubject(pcID), c)
	select {
	case ev := <-started:
		return ev.ResultID
	case <-time.After(30 * time.Second):
		e.t.Fatal("no events.started")
	}
	return ""
}

// TestJobTail: while a command runs, job.tail.<pc_id> returns its output
// so far by result_id with running true; after it ends, the final output
// with running false; an unknown result_id or a malformed request is
// found false.
func TestJobTail(t *testing.T) {
	e := newEnv(t)
	e.start("pc-jt", "", nil)
	gate := filepath.Join(natstest.TempDir(t), "go")
	c := cmd(waitFileScript(gate, "progress-1", "done-2"))
	c.ExecID = uuid.NewString()
	rid := e.startedResultID("pc-jt", c)

	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		r := e.jobTail("pc-jt", tailReq(rid))
		if !r.Found || !r.Running || !strings.Contains(r.Stdout, "progress-1") || r.Stderr != "" || r.StdoutTruncated {
			return fmt.Errorf("running: %+v", r)
		}
		return nil
	})
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	res := e.waitResult(c.RequestID, 30*time.Second)
	if res.ResultID != rid {
		t.Fatalf("result_id %s, events.started said %s", res.ResultID, rid)
	}
	r := e.jobTail("pc-jt", tailReq(rid))
	if !r.Found || r.Running || !strings.Contains(r.Stdout, "progress-1") || !strings.Contains(r.Stderr, "done-2") {
		t.Fatalf("finished: %+v", r)
	}

	if r := e.jobTail("pc-jt", tailReq("no-such-run")); r.Found || r.Running || r.Stdout != "" || r.Error != "" {
		t.Fatalf("unknown result_id: %+v", r)
	}
	if r := e.jobTail("pc-jt", []byte(`{"result_id":1}`)); r.Found || !strings.Contains(r.Error, "bad job.tail request") {
		t.Fatalf("malformed request: %+v", r)
	}
	// Upstream's reply fields are always present.
	subj, _ := subject.JobTail("pc-jt")
	m, err := e.nc.Request(subj, tailReq("x"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != `{"found":false,"running":false,"stdout":"","stderr":"","stdout_truncated":false,"stderr_truncated":false}` {
		t.Fatalf("not-found reply %s", m.Data)
	}
}

// TestJobTailEnforcing: an enforcing agent answers job.tail only when the
// request is signed for that subject, like logs.fetch.
func TestJobTailEnforcing(t *testing.T) {
	e := newEnv(t)
	k := newKeyring(t)
	e.start("pc-jte", "", func(o *agent.Options) { o.KeyringFile, o.Enforcing = k.keyring, true })
	gate := filepath.Join(natstest.TempDir(t), "go")
	c := cmd(waitFileScript(gate, "secret-out", "x"))
	c.ExecID = uuid.NewString()
	body, _ := json.Marshal(c)
	started := make(chan string, 1)
	sub, err := e.nc.Subscribe("events.started.>", func(m *nats.Msg) {
		if ev, err := wire.DecodeEventStarted(m.Data); err == nil {
			started <- ev.ResultID
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	pc := pcSubject("pc-jte")
	if err := e.nc.PublishMsg(k.signedMsg(t, pc, pc, body)); err != nil {
		t.Fatal(err)
	}
	var rid string
	select {
	case rid = <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("no events.started")
	}
	defer os.WriteFile(gate, nil, 0o600)

	if r := e.jobTail("pc-jte", tailReq(rid)); r.Found || r.Stdout != "" || !strings.Contains(r.Error, "refused") {
		t.Fatalf("unsigned request while enforcing: %+v", r)
	}
	subj, _ := subject.JobTail("pc-jte")
	other, _ := subject.JobTail("pc-other")
	// Signed for another agent's subject: refused.
	m, err := e.nc.RequestMsg(k.signedMsg(t, subj, other, tailReq(rid)), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := wire.DecodeJobTailReply(m.Data); r == nil || r.Found {
		t.Fatalf("request signed for another subject: %s", m.Data)
	}
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		m, err := e.nc.RequestMsg(k.signedMsg(t, subj, subj, tailReq(rid)), 10*time.Second)
		if err != nil {
			return err
		}
		r, err := wire.DecodeJobTailReply(m.Data)
		if err != nil || !r.Found || !strings.Contains(r.Stdout, "secret-out") {
			return fmt.Errorf("signed request: %s %v", m.Data, err)
		}
		return nil
	})
}
