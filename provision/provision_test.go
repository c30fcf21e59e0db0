package provision_test

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/provision"
	"github.com/nats-io/nats.go/jetstream"
)

func TestScaleStreams(t *testing.T) {
	full := provision.LimitBytes()
	for _, budget := range []int64{0, -1, full, full * 2} {
		for i, c := range provision.ScaleStreams(budget) {
			if c.MaxBytes != provision.Streams()[i].MaxBytes {
				t.Fatalf("budget %d changed %s", budget, c.Name)
			}
		}
		for i, c := range provision.ScaleObjectStores(budget) {
			if c.MaxBytes != provision.ObjectStores()[i].MaxBytes {
				t.Fatalf("budget %d changed %s", budget, c.Bucket)
			}
		}
	}
	budget := int64(400 << 20)
	var sum int64
	for _, c := range provision.ScaleStreams(budget) {
		if c.MaxBytes < 1<<20 {
			t.Fatalf("%s scaled to %d bytes", c.Name, c.MaxBytes)
		}
		sum += c.MaxBytes
	}
	if sum > budget {
		t.Fatalf("scaled limits sum to %d, over the budget %d", sum, budget)
	}
	for _, c := range provision.ScaleObjectStores(budget) {
		sum += c.MaxBytes
	}
	if sum > budget {
		t.Fatalf("scaled stream and object store limits sum to %d, over the budget %d", sum, budget)
	}
}

// TestProvisionFresh: on a bare server everything is created with our
// settings, and a second run finds it all with no difference.
func TestProvisionFresh(t *testing.T) {
	srv := natstest.RunBareServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, srv.URL()))
	ctx := context.Background()
	if err := provision.Check(ctx, js); err == nil {
		t.Fatal("Check passed on a bare server")
	}
	rep, err := provision.Provision(ctx, js, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := len(provision.Streams()) + len(provision.Buckets()) + len(provision.ObjectStores())
	if len(rep.Created) != n || len(rep.Existing) != 0 || len(rep.Differences) != 0 {
		t.Fatalf("first run: %+v, want %d created", rep, n)
	}
	if err := provision.Check(ctx, js); err != nil {
		t.Fatal(err)
	}
	rep, err = provision.Provision(ctx, js, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Created) != 0 || len(rep.Existing) != n || len(rep.Differences) != 0 {
		t.Fatalf("second run: %+v, want %d existing, no difference", rep, n)
	}
	kv, err := js.KeyValue(ctx, "script_current")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := kv.Status(ctx); err != nil || st.History() != 5 {
		t.Fatalf("script_current history %v (%v), want 5 as upstream", st.History(), err)
	}
}

// TestProvisionNeverRewrites: against a server set up by an upstream
// backend (its bootstrap's settings, from an older release where they
// differ from ours), provisioning changes nothing that exists, creates
// only what is missing, and reports each difference. Before, Ensure
// updated every existing stream and bucket to our settings (script_current
// history 5 → 1, RESULTS' limits, the duplicate window).
func TestProvisionNeverRewrites(t *testing.T) {
	srv := natstest.RunBareServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, srv.URL()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const day = 24 * time.Hour
	upstream := []jetstream.StreamConfig{
		{Name: "EXEC", Subjects: []string{"commands.>"}, MaxMsgsPerSubject: 1, MaxAge: 7 * day, MaxBytes: 64 << 20, Discard: jetstream.DiscardOld},
		{Name: "RESULTS", Subjects: []string{"results.>"}, MaxAge: 14 * day, MaxBytes: 1 << 30, Discard: jetstream.DiscardOld},
		{Name: "EVENTS", Subjects: []string{"events.>"}, MaxAge: 7 * day, MaxBytes: 256 << 20, Discard: jetstream.DiscardOld},
		{Name: "OBS_EVENTS", Subjects: []string{"obs.>"}, MaxAge: 90 * day, MaxBytes: 512 << 20, Discard: jetstream.DiscardOld},
	}
	for _, c := range upstream {
		if _, err := js.CreateStream(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []jetstream.KeyValueConfig{
		{Bucket: "script_current", History: 5},
		{Bucket: "script_status", History: 5},
		{Bucket: "agent_config", History: 5}, // before upstream's #830
		{Bucket: "agent_groups", History: 5},
	} {
		if _, err := js.CreateKeyValue(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []jetstream.ObjectStoreConfig{
		{Bucket: "agent_releases"},
		{Bucket: "result_output", TTL: 30 * day}, // before upstream's #518 cap
	} {
		if _, err := js.CreateObjectStore(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// script_current holds 5 revisions of a key.
	kv, err := js.KeyValue(ctx, "script_current")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := kv.PutString(ctx, "job-1", "v"+string(rune('1'+i))); err != nil {
			t.Fatal(err)
		}
	}
	existing := []string{"EXEC", "RESULTS", "EVENTS", "OBS_EVENTS", "KV_script_current", "KV_script_status",
		"KV_agent_config", "KV_agent_groups", "OBJ_agent_releases", "OBJ_result_output"}
	before := configs(t, js, existing)

	if err := provision.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	if after := configs(t, js, existing); !reflect.DeepEqual(before, after) {
		for name := range before {
			if !reflect.DeepEqual(before[name], after[name]) {
				t.Errorf("%s rewritten:\nbefore %+v\nafter  %+v", name, before[name], after[name])
			}
		}
		t.FailNow()
	}
	if hist, err := kv.History(ctx, "job-1"); err != nil || len(hist) != 5 {
		t.Fatalf("script_current keeps %d revisions of job-1 (%v), want 5", len(hist), err)
	}
	if err := provision.Check(ctx, js); err != nil {
		t.Fatalf("what was missing was not created: %v", err)
	}

	rep, err := provision.Provision(ctx, js, 0)
	if err != nil {
		t.Fatal(err)
	}
	if after := configs(t, js, existing); !reflect.DeepEqual(before, after) {
		t.Fatal("Provision rewrote an existing stream or bucket")
	}
	if len(rep.Created) != 0 {
		t.Fatalf("second run created %v", rep.Created)
	}
	var got []string
	for _, d := range rep.Differences {
		got = append(got, d.String())
	}
	want := []string{
		"stream RESULTS: max_age is 14d (provision creates 30d)",
		"stream RESULTS: max_bytes is 1 GiB (provision creates 2 GiB)",
		"stream RESULTS: duplicate_window is 2m0s (provision creates 1h0m0s)",
		"stream EVENTS: duplicate_window is 2m0s (provision creates 1h0m0s)",
		"stream OBS_EVENTS: duplicate_window is 2m0s (provision creates 1h0m0s)",
		"bucket agent_config: history is 5 (provision creates 1)",
		"bucket agent_groups: history is 5 (provision creates 1)",
		"object store result_output: max_bytes is none (provision creates 1 GiB)",
		"stream EXEC: max_consumers is none (provision creates 1000000)",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("differences:\n%q\nwant:\n%q", got, want)
	}
}

// configs returns the configuration of each named stream.
func configs(t *testing.T, js jetstream.JetStream, names []string) map[string]jetstream.StreamConfig {
	t.Helper()
	out := map[string]jetstream.StreamConfig{}
	for _, n := range names {
		s, err := js.Stream(context.Background(), n)
		if err != nil {
			t.Fatalf("stream %s: %v", n, err)
		}
		out[n] = s.CachedInfo().Config
	}
	return out
}
