package cli_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/provision"
	"github.com/kanade/kanade-agent/subject"
	"github.com/nats-io/nats.go/jetstream"
)

func TestProvision(t *testing.T) {
	t.Parallel()
	srv := natstest.RunBareServer(t)
	k := kanade(srv.URL())

	o := k("provision", "--check").want(t, 1)
	if !regexp.MustCompile(`(?m)^stream +EXEC +missing$`).MatchString(o.stdout) {
		t.Errorf("--check on a bare server does not list EXEC as missing:\n%s", o.stdout)
	}
	mentions(t, "stderr", o.stderr, "stream EXEC", "run 'kanade provision'")

	o = k("provision").want(t, 0)
	for _, s := range provision.Streams() {
		mentions(t, "stdout", o.stdout, s.Name)
	}
	for _, b := range provision.Buckets() {
		mentions(t, "stdout", o.stdout, b.Bucket)
	}
	for _, b := range provision.ObjectStores() {
		mentions(t, "stdout", o.stdout, b.Bucket)
	}
	if strings.Contains(o.stdout, "missing") {
		t.Errorf("something missing after provision:\n%s", o.stdout)
	}

	js := natstest.JetStream(t, natstest.Connect(t, srv.URL()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := provision.Check(ctx, js); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "results.r1", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, subject.StreamResults)
	if err != nil {
		t.Fatal(err)
	}
	created := st.CachedInfo().Created

	// A second run changes nothing: the stream and its message stay.
	o = k("provision").want(t, 0)
	mentions(t, "stdout", o.stdout, "results.>; 1 msgs")
	st, err = js.Stream(ctx, subject.StreamResults)
	if err != nil {
		t.Fatal(err)
	}
	if info := st.CachedInfo(); info.State.Msgs != 1 || !info.Created.Equal(created) {
		t.Errorf("RESULTS after a second provision: %d msgs, created %v (was %v)", info.State.Msgs, info.Created, created)
	}
	k("provision", "--check").want(t, 0)
}

// TestProvisionMaxBytes scales the streams' limits to a budget and refuses
// a bad size.
func TestProvisionMaxBytes(t *testing.T) {
	t.Parallel()
	srv := natstest.RunBareServer(t)
	k := kanade(srv.URL())
	o := k("provision", "--max-bytes", "10xb").want(t, 2)
	mentions(t, "stderr", o.stderr, "--max-bytes", "512MiB")
	k("provision", "--max-bytes", "256MiB").want(t, 0)

	js := natstest.JetStream(t, natstest.Connect(t, srv.URL()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var total int64
	for _, cfg := range provision.Streams() {
		st, err := js.Stream(ctx, cfg.Name)
		if err != nil {
			t.Fatal(err)
		}
		total += st.CachedInfo().Config.MaxBytes
	}
	for _, cfg := range provision.ObjectStores() {
		st, err := js.Stream(ctx, "OBJ_"+cfg.Bucket)
		if err != nil {
			t.Fatal(err)
		}
		total += max(st.CachedInfo().Config.MaxBytes, 0)
	}
	if total > 256<<20 || total < 200<<20 {
		t.Fatalf("streams' and object stores' MaxBytes sum to %d, want just under 256 MiB", total)
	}
}

// TestProvisionReportsDifferences: kanade provision leaves a bucket set up
// by an upstream backend as it is and prints how it differs.
func TestProvisionReportsDifferences(t *testing.T) {
	t.Parallel()
	srv := natstest.RunBareServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, srv.URL()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "agent_config", History: 5}); err != nil {
		t.Fatal(err)
	}
	const line = "differs: bucket agent_config: history is 5 (provision creates 1); left unchanged"
	k := kanade(srv.URL())
	o := k("provision", "--check").want(t, 1)
	mentions(t, "--check stdout", o.stdout, line)
	o = k("provision").want(t, 0)
	mentions(t, "stdout", o.stdout, line, "created: stream EXEC", "1 already there (never changed), 1 differences")
	kv, err := js.KeyValue(ctx, "agent_config")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := kv.Status(ctx); err != nil || st.History() != 5 {
		t.Fatalf("agent_config history %v (%v) after provision, want 5 kept", st.History(), err)
	}
	o = k("provision", "--check").want(t, 0)
	mentions(t, "--check stdout", o.stdout, line)
}

// TestProvisionReplicas: --replicas reaches the server (a single server
// refuses three replicas), and an out-of-range count is a usage error.
func TestProvisionReplicas(t *testing.T) {
	t.Parallel()
	srv := natstest.RunBareServer(t)
	k := kanade(srv.URL())
	o := k("provision", "--replicas", "3").want(t, 1)
	mentions(t, "stderr", o.stderr, "stream EXEC", "replicas")
	o = k("provision", "--replicas", "9").want(t, 2)
	mentions(t, "stderr", o.stderr, "--replicas 9")
	k("provision", "--replicas", "1").want(t, 0)
}

// TestProvisionExecConsumersHint: an EXEC stream created without
// max_consumers (upstream's bootstrap) is reported with the command that
// raises it.
func TestProvisionExecConsumersHint(t *testing.T) {
	t.Parallel()
	srv := natstest.RunBareServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, srv.URL()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EXEC", Subjects: []string{"commands.>"}, MaxMsgsPerSubject: 1,
		MaxAge: 7 * 24 * time.Hour, MaxBytes: 64 << 20, Discard: jetstream.DiscardOld}); err != nil {
		t.Fatal(err)
	}
	o := kanade(srv.URL())("provision").want(t, 0)
	mentions(t, "stdout", o.stdout, "differs: stream EXEC: max_consumers is none (provision creates 1000000)",
		"nats stream edit EXEC --max-consumers 1000000")
}
