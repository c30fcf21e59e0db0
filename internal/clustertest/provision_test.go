package clustertest_test

import (
	"context"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/provision"
)

// TestProvisionThenReplicas checks what docs/cluster.md advises for a
// cluster: `kanade provision` (provision.Ensure) creates everything with
// one replica, and each stream (buckets and object stores included) can
// then be raised to three replicas by a stream update, keeping its
// messages.
func TestProvisionThenReplicas(t *testing.T) {
	c := natstest.RunClusterWith(t, natstest.ClusterOptions{Bare: true})
	nc := natstest.Connect(t, c.URL())
	js := natstest.JetStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	if err := provision.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "results.before-scale", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, name := range natstest.Streams() {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.CachedInfo().Config
		if cfg.Replicas != 1 {
			t.Fatalf("provision created %s with %d replicas", name, cfg.Replicas)
		}
		cfg.Replicas = 3
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			t.Fatalf("raise %s to 3 replicas: %v", name, err)
		}
	}
	for _, name := range natstest.Streams() {
		c.WaitStreamCurrent(name, 30*time.Second)
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if r := st.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("%s: %d replicas after the update", name, r)
		}
	}
	st, err := js.Stream(ctx, "RESULTS")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetLastMsgForSubject(ctx, "results.before-scale"); err != nil {
		t.Fatalf("message lost by the scale-up: %v", err)
	}
	// The cluster keeps the stream through a crash of its leader.
	leader := c.WaitStreamLeader("RESULTS", 10*time.Second)
	c.Crash(leader)
	c.WaitStreamLeader("RESULTS", 30*time.Second)
	natstest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		_, err := st.GetLastMsgForSubject(ctx, "results.before-scale")
		return err
	})
}
