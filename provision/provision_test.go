package provision_test

import (
	"context"
	"testing"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/provision"
)

func TestScaleStreams(t *testing.T) {
	full := provision.StreamBytes()
	for _, budget := range []int64{0, -1, full, full * 2} {
		for i, c := range provision.ScaleStreams(budget) {
			if c.MaxBytes != provision.Streams()[i].MaxBytes {
				t.Fatalf("budget %d changed %s", budget, c.Name)
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
}

func TestEnsureAndCheck(t *testing.T) {
	srv := natstest.RunBareServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, srv.URL()))
	ctx := context.Background()
	if err := provision.Check(ctx, js); err == nil {
		t.Fatal("Check passed on a bare server")
	}
	if err := provision.EnsureWithin(ctx, js, 256<<20); err != nil {
		t.Fatal(err)
	}
	if err := provision.Check(ctx, js); err != nil {
		t.Fatal(err)
	}
	// Idempotent, and back to the protocol's limits.
	if err := provision.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "RESULTS")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config; got.MaxBytes != 2<<30 || got.Duplicates != provision.DuplicateWindow {
		t.Fatalf("RESULTS config %+v", got)
	}
}
