package natstest_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestRunServerProvisioned(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	ctx := context.Background()
	for _, name := range []string{subject.StreamResults, subject.StreamObs, subject.StreamExec} {
		if _, err := js.Stream(ctx, name); err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
	}
}

func TestRunBareServer(t *testing.T) {
	s := natstest.RunBareServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	_, err := js.Stream(context.Background(), subject.StreamObs)
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("bare server: got %v, want ErrStreamNotFound", err)
	}
}

func TestRestartKeepsPortAndStore(t *testing.T) {
	s := natstest.RunServer(t)
	url := s.URL()
	nc := natstest.Connect(t, url)
	js := natstest.JetStream(t, nc)
	ctx := context.Background()
	if _, err := js.Publish(ctx, "obs.pc1", []byte("one")); err != nil {
		t.Fatal(err)
	}
	s.Shutdown()
	if s.Running() {
		t.Fatal("running after Shutdown")
	}
	s.Shutdown() // idempotent
	s.Start()
	if s.URL() != url {
		t.Fatalf("URL changed: %s -> %s", url, s.URL())
	}
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !nc.IsConnected() {
			return errors.New("not reconnected")
		}
		return nil
	})
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		st, err := js.Stream(ctx, subject.StreamObs)
		if err != nil {
			return err
		}
		if n := st.CachedInfo().State.Msgs; n != 1 {
			return fmt.Errorf("msgs = %d, want 1", n)
		}
		return nil
	})
}

func TestProxyDelay(t *testing.T) {
	s := natstest.RunServer(t)
	const oneWay = 30 * time.Millisecond
	p := natstest.NewProxy(t, s.Addr(), oneWay)
	nc := natstest.Connect(t, p.URL())
	rtt, err := nc.RTT()
	if err != nil {
		t.Fatal(err)
	}
	if rtt < 2*oneWay {
		t.Fatalf("rtt %v < %v", rtt, 2*oneWay)
	}
	// Throughput is not serialized by the delay: 2000 async publishes take
	// far less than 2000 round trips.
	js := natstest.JetStream(t, nc)
	start := time.Now()
	for i := 0; i < 2000; i++ {
		if _, err := js.PublishAsync("obs.pc1", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("acks did not arrive")
	}
	if el := time.Since(start); el > 100*2*oneWay {
		t.Fatalf("2000 pipelined publishes took %v: proxy serializes", el)
	}
}

func TestProxyCutPauseResume(t *testing.T) {
	s := natstest.RunServer(t)
	p := natstest.NewProxy(t, s.Addr(), 0)
	reconnected := make(chan struct{}, 10)
	nc := natstest.Connect(t, p.URL(), nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }))
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	p.Pause()
	p.Cut()
	natstest.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if nc.IsConnected() {
			return errors.New("still connected")
		}
		return nil
	})
	p.Resume()
	select {
	case <-reconnected:
	case <-time.After(10 * time.Second):
		t.Fatal("no reconnect after Resume")
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if p.Conns() != 1 {
		t.Fatalf("Conns = %d, want 1", p.Conns())
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v, want net.ErrClosed", err)
	}
}

func TestCheckFor(t *testing.T) {
	n := 0
	natstest.CheckFor(t, time.Second, time.Millisecond, func() error {
		n++
		if n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if n != 3 {
		t.Fatalf("n = %d", n)
	}
}

func TestTempDirRemovedFileByFile(t *testing.T) {
	var dir string
	t.Run("make", func(t *testing.T) {
		dir = natstest.TempDir(t)
		sub := filepath.Join(dir, "a", "b")
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{filepath.Join(dir, "f"), filepath.Join(dir, "a", "g"), filepath.Join(sub, "h")} {
			if err := os.WriteFile(p, []byte("x"), 0o400); err != nil { // read-only too
				t.Fatal(err)
			}
		}
	})
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("TempDir %s after its test: %v, want it gone", dir, err)
	}
}
