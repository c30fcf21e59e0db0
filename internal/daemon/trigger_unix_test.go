//go:build unix

package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/internal/session"
	"github.com/kanade/kanade-agent/provision"
	"github.com/kanade/kanade-agent/subject"
)

// A session change the service receives (here handed to the relay, as
// service_windows.go does) reaches the agent's local scheduler: a
// schedule on logon runs its job.
func TestSessionTriggerReachesScheduler(t *testing.T) {
	srv := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, srv.URL()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := provision.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	put := func(bucket, key, val string) {
		kv, err := js.KeyValue(ctx, bucket)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, key, []byte(val)); err != nil {
			t.Fatal(err)
		}
	}
	put(subject.BucketJobs, "on-logon", `{"id":"on-logon","version":"1","execute":{"shell":"sh","script":"echo logged-on","timeout":"30s"}}`)
	put(subject.BucketSchedules, "s1", `{"id":"s1","when":{"on":["logon"]},"job_id":"on-logon","target":{"all":true},"runs_on":"agent"}`)

	dir := natstest.TempDir(t)
	cfg, err := load(t, []string{"--data-dir", dir, "--pc-id", "trig-pc", "--nats-url", srv.URL(),
		"--user-presence=false", "--timeline=false", "--self-update=false"}, map[string]string{"HOME": "/home/u"}, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.sessions = &sessionRelay{}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var out bytes.Buffer
	go func() { done <- runAgent(runCtx, cfg, &bytes.Buffer{}, &out) }()
	defer func() {
		stop()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("runAgent did not return 20 s after the stop")
		}
	}()

	// The schedule is loaded some time after the agent starts; a logon
	// before that fires nothing, so notify until the job has run.
	natstest.CheckFor(t, 45*time.Second, 250*time.Millisecond, func() error {
		cfg.sessions.notify(session.Change{Kind: session.KindLogon, Session: 1})
		st, err := js.Stream(ctx, subject.StreamResults)
		if err != nil {
			return err
		}
		m, err := st.GetLastMsgForSubject(ctx, "results.>")
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return errors.New("no result yet")
		} else if err != nil {
			return err
		}
		if !bytes.Contains(m.Data, []byte(`"manifest_id":"on-logon"`)) || !bytes.Contains(m.Data, []byte("logged-on")) {
			return fmt.Errorf("unexpected result %s", m.Data)
		}
		return nil
	})
}
