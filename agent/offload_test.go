package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
)

// bigUniqueScript prints a line that differs from run to run (the process
// id or, under cmd, the staged batch file's random path), then about
// 300 KB: more than the 256 KiB sent inline, so the output is offloaded.
func bigUniqueScript() string {
	line := strings.Repeat("x", 100)
	if runtime.GOOS == "windows" {
		return "echo %~f0 %RANDOM%-%RANDOM%-%RANDOM%\r\nfor /L %%i in (1,1,3000) do echo " + line + "\r\n"
	}
	return `echo "$$ $(od -An -N8 -tx8 /dev/urandom)"; i=0; while [ $i -lt 3000 ]; do echo ` + line + `; i=$((i+1)); done`
}

// TestOffloadPerPC: two agents run the same fan-out command, each printing
// over 256 KiB of its own output; each result's stdout_object holds that
// agent's output. Before the fix both were uploaded as <request_id>/stdout
// and the second upload replaced the first.
func TestOffloadPerPC(t *testing.T) {
	e := newEnv(t)
	e.start("pc-fan-a", "", nil)
	e.start("pc-fan-b", "", nil)
	c := cmd(bigUniqueScript())
	c.TimeoutSecs = 120
	e.publish(subject.CommandsAll, c)

	var rs []wire.ExecResult
	natstest.CheckFor(t, 120*time.Second, 50*time.Millisecond, func() error {
		var err error
		if rs, err = e.results(c.RequestID); err != nil {
			return err
		}
		if len(rs) < 2 {
			return fmt.Errorf("%d of 2 results", len(rs))
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := e.js.ObjectStore(ctx, subject.ObjectResultOutput)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string][]byte{}
	for _, r := range rs {
		if r.ExitCode != 0 || r.Stdout != "" || r.StdoutObject == "" {
			t.Fatalf("%s: exit %d, %d bytes inline, object %q, stderr %q", r.PcID, r.ExitCode, len(r.Stdout), r.StdoutObject, r.Stderr)
		}
		if want := c.RequestID + "/" + r.PcID + "/stdout"; r.StdoutObject != want {
			t.Errorf("%s: stdout_object %q, want %q", r.PcID, r.StdoutObject, want)
		}
		obj, err := store.Get(ctx, r.StdoutObject)
		if err != nil {
			t.Fatalf("%s: get %s: %v", r.PcID, r.StdoutObject, err)
		}
		b, err := io.ReadAll(obj)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) <= 256<<10 {
			t.Fatalf("%s: object of %d bytes", r.PcID, len(b))
		}
		outputs[r.PcID] = b
	}
	a, b := outputs["pc-fan-a"], outputs["pc-fan-b"]
	if a == nil || b == nil {
		t.Fatalf("results from %v, want pc-fan-a and pc-fan-b", func() (ids []string) {
			for id := range outputs {
				ids = append(ids, id)
			}
			return
		}())
	}
	if bytes.Equal(a, b) {
		first, _, _ := bytes.Cut(a, []byte("\n"))
		t.Fatalf("both results' objects hold the same output (first line %q): one PC's upload replaced the other's", first)
	}
}
