package outbox

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kanade/kanade-agent/internal/natstest"
)

// TestPending lists unacknowledged items, legacy ones included, oldest
// first, before and after a reopen and after delivery; it stops when fn
// says so and refuses a closed outbox.
func TestPending(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	dir := natstest.TempDir(t)
	b, _ := json.Marshal(item{Seq: 100})
	if err := os.WriteFile(filepath.Join(dir, "legacy-a.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	list := func(ob *Outbox[item], max int) (ids []string, seqs []int) {
		t.Helper()
		err := ob.Pending(func(id string, v item) bool {
			ids, seqs = append(ids, id), append(seqs, v.Seq)
			return len(ids) < max
		})
		if err != nil {
			t.Fatal(err)
		}
		return ids, seqs
	}
	ob := mustNew(t, testOptions(dir, nil))
	enq := enqueueN(t, ob, 0, 5)
	wantIDs := append([]string{"legacy-a"}, enq...)
	wantSeqs := []int{100, 0, 1, 2, 3, 4}
	if ids, seqs := list(ob, 100); !slices.Equal(ids, wantIDs) || !slices.Equal(seqs, wantSeqs) {
		t.Fatalf("Pending = %v %v, want %v %v", ids, seqs, wantIDs, wantSeqs)
	}
	if ids, _ := list(ob, 2); len(ids) != 2 {
		t.Fatalf("Pending did not stop when fn returned false: %v", ids)
	}
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ob.Pending(func(string, item) bool { return true }); err == nil {
		t.Fatal("Pending on a closed outbox: no error")
	}

	ob = mustNew(t, testOptions(dir, js))
	if ids, seqs := list(ob, 100); !slices.Equal(ids, wantIDs) || !slices.Equal(seqs, wantSeqs) {
		t.Fatalf("after reopen: Pending = %v %v, want %v %v", ids, seqs, wantIDs, wantSeqs)
	}
	startRun(t, ob)
	waitDelivered(t, ob, js, 6)
	if ids, _ := list(ob, 100); len(ids) != 0 {
		t.Fatalf("after delivery: Pending = %v", ids)
	}
}
