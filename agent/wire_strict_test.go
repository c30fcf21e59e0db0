package agent_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/kanade/kanade-agent/internal/natstest"
)

// TestCommandDecodingIsSerdeStrict checks issue #7's case-insensitive and
// duplicate keys: as with upstream's serde, a key that differs from a field
// only in case is an unknown field (so {"script":"a","SCRIPT":"b"} runs a,
// not b), and a field given twice refuses the whole command.
func TestCommandDecodingIsSerdeStrict(t *testing.T) {
	e := newEnv(t)
	a := e.start("pc-strict", "", nil)
	doc := func(id, members string) []byte {
		return []byte(fmt.Sprintf(`{"id":"job-7","version":"3","request_id":%q,"shell":%q,%s,"timeout_secs":60}`, id, testShell, members))
	}

	id := uuid.NewString()
	e.publishRaw(pcSubject("pc-strict"), doc(id, `"script":"echo a","SCRIPT":"echo b","Script":"echo c","ſcript":"echo d"`))
	r := e.waitResult(id, 30*time.Second)
	if r.ExitCode != 0 || r.Stdout != "a"+nl {
		t.Fatalf("ran %q (exit %d), want the exact-case script only", r.Stdout, r.ExitCode)
	}
	if r.ManifestID != "job-7" {
		t.Errorf("manifest_id %q, want the command's id", r.ManifestID)
	}

	before := a.Stats().Malformed
	dup := uuid.NewString()
	e.publishRaw(pcSubject("pc-strict"), doc(dup, `"script":"echo a","script":"echo b"`))
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if n := a.Stats().Malformed; n <= before {
			return fmt.Errorf("malformed count %d, want it above %d", n, before)
		}
		return nil
	})
	if rs, err := e.results(dup); err != nil || len(rs) != 0 {
		t.Fatalf("results for a command with a duplicate field: %+v, %v; want none", rs, err)
	}
}
