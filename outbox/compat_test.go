package outbox

import (
	"context"
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
)

// mainV1 is embedded: under Wine the test binary runs outside the source tree.
//
//go:embed testdata/main-v1
var mainV1 embed.FS

// TestOpensMainFormat opens an outbox written by the previous version of
// this package (testdata/main-v1: 20 items in three segments, the first 5
// acknowledged and listed in the ack file, plus a legacy file) and drains
// it: the 15 unacknowledged items and the legacy one arrive, in order, and
// the acknowledged ones are not published again.
func TestOpensMainFormat(t *testing.T) {
	dir := natstest.TempDir(t)
	ents, err := mainV1.ReadDir("testdata/main-v1")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := mainV1.ReadFile("testdata/main-v1/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	ob := mustNew(t, testOptions(dir, js))
	if st := ob.Stats(); st.Pending != 16 || st.Corrupt != 0 || st.OldestAge <= 0 {
		t.Fatalf("stats after open: %+v", st)
	}
	want := map[string]int{}
	var seqs []int
	if err := ob.Pending(func(id string, v item) bool {
		want[id] = v.Seq
		seqs = append(seqs, v.Seq)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	wantSeqs := []int{100}
	for i := 5; i < 20; i++ {
		wantSeqs = append(wantSeqs, i)
	}
	if !slices.Equal(seqs, wantSeqs) {
		t.Fatalf("pending seqs %v, want %v", seqs, wantSeqs)
	}
	startRun(t, ob)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := ob.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	checkExactly(t, js, want)
	if got := streamSeqs(t, js); !slices.Equal(got, wantSeqs) {
		t.Fatalf("stream order %v, want %v", got, wantSeqs)
	}
	natstest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		left, _ := filepath.Glob(filepath.Join(dir, "*.*"))
		left = slices.DeleteFunc(left, func(p string) bool { return filepath.Base(p) == lockName })
		if len(left) != 0 {
			return fmt.Errorf("files left after draining: %v", left)
		}
		return nil
	})
}
