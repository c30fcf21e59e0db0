package outbox

import (
	"context"
	"testing"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
)

// TestPublishesUnescapedJSON checks that an item is published as
// upstream's serde_json writes it: '<', '>' and '&' as themselves, not as
// encoding/json's \u003c escapes (docs/protocol.md).
func TestPublishesUnescapedJSON(t *testing.T) {
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, natstest.Connect(t, s.URL()))
	ob := mustNew(t, testOptions(natstest.TempDir(t), js))
	id, err := ob.Enqueue(context.Background(), item{Seq: 1, Pad: `<b>R&D</b>`})
	if err != nil {
		t.Fatal(err)
	}
	startRun(t, ob)
	waitDelivered(t, ob, js, 1)
	got := streamMsgs(t, js, subject.StreamObs)[id]
	if want := `{"seq":1,"pad":"<b>R&D</b>"}`; string(got) != want {
		t.Fatalf("published %s, want %s", got, want)
	}
}
