package provision_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/provision"
	"github.com/nats-io/nats.go/jetstream"
)

// errMaxConsumers is nats-server's JSMaximumConsumersLimitErr.
const errMaxConsumers jetstream.ErrorCode = 10026

// addConsumers creates n consumers on EXEC, 8 at a time, and returns how
// many the server refused with JSMaximumConsumersLimitErr; another error
// fails the test. Each agent holds one durable consumer on EXEC; these are
// memory-stored durables to keep the test cheap, which the limit counts
// the same.
func addConsumers(t *testing.T, js jetstream.JetStream, from, n int) int {
	t.Helper()
	var refused atomic.Int64
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := js.CreateConsumer(ctx, "EXEC", jetstream.ConsumerConfig{
					Durable: fmt.Sprintf("agent-pc-%05d", i), FilterSubject: fmt.Sprintf("commands.pc.pc-%05d", i),
					DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy, AckPolicy: jetstream.AckExplicitPolicy,
					MemoryStorage: true,
				})
				cancel()
				var apiErr *jetstream.APIError
				switch {
				case err == nil:
				case errors.As(err, &apiErr) && apiErr.ErrorCode == errMaxConsumers:
					refused.Add(1)
				default:
					t.Errorf("consumer %d: %v", i, err)
				}
			}
		}()
	}
	for i := from; i < from+n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return int(refused.Load())
}

// TestExecConsumerLimit: nats-server refuses a stream's 1,001st consumer
// by default (default_max_consumers 1,000, which a stream max_consumers of
// -1 does not lift); EXEC as provision creates it takes one consumer per
// agent past that, and ExecMaxConsumers -1 keeps the server's default.
func TestExecConsumerLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 2,100 consumers")
	}
	const fleet = 1050
	t.Run("server default", func(t *testing.T) {
		srv := natstest.RunBareServer(t)
		js := natstest.JetStream(t, natstest.Connect(t, srv.URL()))
		ctx := context.Background()
		if err := provision.EnsureWith(ctx, js, provision.Options{ExecMaxConsumers: -1}); err != nil {
			t.Fatal(err)
		}
		st, err := js.Stream(ctx, "EXEC")
		if err != nil {
			t.Fatal(err)
		}
		if mc := st.CachedInfo().Config.MaxConsumers; mc != -1 {
			t.Fatalf("EXEC max_consumers %d, want -1 (unset)", mc)
		}
		if refused := addConsumers(t, js, 0, fleet); refused != fleet-1000 {
			t.Fatalf("%d of %d consumers refused, want %d (nats-server's default limit of 1,000)", refused, fleet, fleet-1000)
		}
	})
	t.Run("provisioned", func(t *testing.T) {
		srv := natstest.RunBareServer(t)
		js := natstest.JetStream(t, natstest.Connect(t, srv.URL()))
		ctx := context.Background()
		if err := provision.Ensure(ctx, js); err != nil {
			t.Fatal(err)
		}
		st, err := js.Stream(ctx, "EXEC")
		if err != nil {
			t.Fatal(err)
		}
		if mc := st.CachedInfo().Config.MaxConsumers; mc != provision.DefaultExecMaxConsumers {
			t.Fatalf("EXEC max_consumers %d, want %d", mc, provision.DefaultExecMaxConsumers)
		}
		if refused := addConsumers(t, js, 0, fleet); refused != 0 {
			t.Fatalf("%d of %d consumers refused", refused, fleet)
		}
	})
	// An EXEC created without the limit (by an upstream backend, or an
	// older provision) is raised in place by a stream update (as
	// nats stream edit EXEC --max-consumers 1000000 does), consumers kept.
	t.Run("raised by an update", func(t *testing.T) {
		srv := natstest.RunBareServer(t)
		js := natstest.JetStream(t, natstest.Connect(t, srv.URL()))
		ctx := context.Background()
		if err := provision.EnsureWith(ctx, js, provision.Options{ExecMaxConsumers: -1}); err != nil {
			t.Fatal(err)
		}
		if refused := addConsumers(t, js, 0, 1000); refused != 0 {
			t.Fatalf("%d refused under the default limit", refused)
		}
		st, err := js.Stream(ctx, "EXEC")
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.CachedInfo().Config
		cfg.MaxConsumers = provision.DefaultExecMaxConsumers
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			t.Fatalf("raising EXEC max_consumers: %v", err)
		}
		if refused := addConsumers(t, js, 1000, fleet-1000); refused != 0 {
			t.Fatalf("%d of %d consumers refused after the update", refused, fleet-1000)
		}
		if info, err := st.Info(ctx); err != nil || info.State.Consumers != fleet {
			t.Fatalf("EXEC holds %v consumers (%v), want %d", info.State.Consumers, err, fleet)
		}
	})
}

// TestOptionsValidate: out-of-range options are refused before anything
// is created.
func TestOptionsValidate(t *testing.T) {
	srv := natstest.RunBareServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, srv.URL()))
	for _, o := range []provision.Options{{Replicas: -1}, {Replicas: 6}, {Budget: -1}, {ExecMaxConsumers: -2}} {
		if _, err := provision.ProvisionWith(context.Background(), js, o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	if err := provision.Check(context.Background(), js); err == nil {
		t.Fatal("invalid options created something")
	}
}

// TestReplicas: on a three-node cluster, Options.Replicas 3 creates every
// stream, bucket and object store with three replicas; the default is one,
// and a count that differs from what exists is reported when asked for.
func TestReplicas(t *testing.T) {
	c := natstest.RunClusterWith(t, natstest.ClusterOptions{Bare: true})
	js := natstest.JetStream(t, natstest.Connect(t, c.URL()))
	var rep provision.Report
	natstest.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var err error
		rep, err = provision.ProvisionWith(ctx, js, provision.Options{Replicas: 3})
		return err
	})
	ctx := context.Background()
	for _, name := range natstest.Streams() {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if r := st.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("%s: %d replicas, want 3", name, r)
		}
	}
	rep, err := provision.ProvisionWith(ctx, js, provision.Options{Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Created) != 0 || len(rep.Differences) != len(natstest.Streams()) {
		t.Fatalf("R1 over R3: %+v, want one replicas difference each", rep)
	}
	for _, d := range rep.Differences {
		if d.Field != "replicas" || d.Have != "3" || d.Want != "1" {
			t.Errorf("difference %s", d)
		}
	}
	// Without Replicas, the count is not compared.
	if rep, err := provision.Provision(ctx, js, 0); err != nil || len(rep.Differences) != 0 {
		t.Fatalf("default options: %+v %v", rep, err)
	}
}
