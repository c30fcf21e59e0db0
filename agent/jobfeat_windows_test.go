//go:build windows

package agent_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/wire"
)

// These run under Wine too (cmd.exe); symbolic links are not created:
// Windows needs a privilege for them and Wine does not emulate them.

func winObsLine(at, rec string) string {
	return fmt.Sprintf(`echo {"at":"%s","kind":"logon","source":"test:wm","event_record_id":"%s","payload":null}`, at, rec)
}

// TestWinEmitWatermark: as TestEmitWatermark, with cmd.exe.
func TestWinEmitWatermark(t *testing.T) {
	e := newEnv(t)
	dir := natstest.TempDir(t)
	envFile := filepath.Join(natstest.TempDir(t), "wm.txt")
	a := e.start("pc-wwm", dir, nil)
	emitCmd := func(lines ...string) wire.Command {
		c := cmd(`>"` + envFile + `" echo %KANADE_EMIT_WATERMARK%& ` + strings.Join(lines, "& "))
		c.ID, c.Emit = "logons", &wire.Emit{Type: wire.EmitEvents}
		return c
	}
	first := emitCmd(winObsLine("2026-01-02T03:04:05Z", "1"), winObsLine("2026-01-02T03:04:06Z", "2"))
	e.publish(pcSubject("pc-wwm"), first)
	if r := e.waitResult(first.RequestID, 20*time.Second); r.ExitCode != 0 || r.Stdout != "" {
		t.Fatalf("first run: %+v", r)
	}
	e.waitObs("pc-wwm", "test:wm", 2)
	a.stop(t)

	e.start("pc-wwm", dir, nil)
	second := emitCmd(winObsLine("2026-01-02T03:04:05Z", "1"), winObsLine("2026-01-02T03:04:06Z", "2"),
		winObsLine("2026-01-02T03:04:07Z", "3"))
	e.publish(pcSubject("pc-wwm"), second)
	r := e.waitResult(second.RequestID, 20*time.Second)
	if r.ExitCode != 0 || !strings.Contains(r.Stderr, "2 events at or before the watermark") {
		t.Fatalf("second run: %+v", r)
	}
	if b, _ := os.ReadFile(envFile); strings.TrimSpace(string(b)) != "2026-01-02T03:04:06Z" {
		t.Fatalf("second run saw watermark %q", b)
	}
	evs := e.waitObs("pc-wwm", "test:wm", 3)
	var recs []string
	for _, ev := range evs {
		recs = append(recs, ev.EventRecordID)
	}
	if got := strings.Join(recs, ","); got != "1,2,3" {
		t.Fatalf("published events %s, want 1,2,3 (each once)", got)
	}
}

// TestWinFinalizeAndCheck: a cmd.exe check job with a finalize hook: the
// check is cached and the hook's result links back to the run.
func TestWinFinalizeAndCheck(t *testing.T) {
	e := newEnv(t)
	a := e.start("pc-wfin", "", nil)
	c := cmd(`echo {"status":"fail","detail":"BitLocker off"}`)
	c.ID, c.ExecID = "bitlocker", "exec-wfin"
	var hint wire.CheckHint
	if err := json.Unmarshal([]byte(`{"name":"bitlocker"}`), &hint); err != nil {
		t.Fatal(err)
	}
	c.Check = &hint
	c.Finalize = &wire.FinalizeCommand{Shell: wire.ShellCmd, Script: "echo hook& exit 4", TimeoutSecs: 20}
	e.publish(pcSubject("pc-wfin"), c)
	main := e.waitResult(c.RequestID, 20*time.Second)
	fin := e.waitResult(c.RequestID+"__finalize", 20*time.Second)
	if fin.ExitCode != 4 || fin.Stdout != "hook\r\n" || fin.ParentResultID != main.ResultID || fin.ManifestID != "bitlocker__finalize" || fin.ExecID != "" {
		t.Fatalf("finalize %+v, main %+v", fin, main)
	}
	got := a.Checks()
	if len(got) != 1 || got[0].Check != (wire.Check{Name: "bitlocker", Status: wire.CheckFail, Detail: "BitLocker off"}) || got[0].ResultID != main.ResultID {
		t.Fatalf("Checks() = %+v", got)
	}
}

// TestWinCollect: a cmd.exe collect job uploads the listed files; a path
// outside the collect roots, with .., or in the data dir is refused; a
// bundle over max_size is not uploaded.
func TestWinCollect(t *testing.T) {
	e := newEnv(t)
	store := e.collectionsBucket()
	root, outside, dir := natstest.TempDir(t), natstest.TempDir(t), natstest.TempDir(t)
	e.start("pc-wcol", dir, func(o *agent.Options) { o.CollectRoots = []string{root} })
	ok := filepath.Join(root, "ok.txt")
	putFile(t, ok, "fine")
	secret := filepath.Join(outside, "secret.txt")
	putFile(t, secret, "top secret")
	own := filepath.Join(dir, "checks.json")
	putFile(t, own, "[]")
	dotdot := root + `\..\` + filepath.Base(outside) + `\secret.txt`
	list := []string{filepath.ToSlash(ok), filepath.ToSlash(secret), filepath.ToSlash(own), filepath.ToSlash(dotdot)}
	files, _ := json.Marshal(map[string]any{"files": list})
	c := cmd("echo " + string(files))
	c.ID, c.Collect = "wdiag", &wire.CollectHint{Name: "diag"}
	e.publish(pcSubject("pc-wcol"), c)
	r := e.waitResult(c.RequestID, 30*time.Second)
	if !strings.HasPrefix(r.CollectObject, "pc-wcol/wdiag/") {
		t.Fatalf("collect result: %+v", r)
	}
	if got := zipEntries(t, store, r.CollectObject); len(got) != 1 || got["ok.txt"] != "fine" {
		t.Fatalf("bundle entries %v", got)
	}
	for _, why := range []string{"outside the collect roots", "agent's own data", "has a .. element"} {
		if !strings.Contains(r.Stderr, why) {
			t.Errorf("stderr lacks %q: %q", why, r.Stderr)
		}
	}

	big := filepath.Join(root, "big.bin")
	putFile(t, big, strings.Repeat("x", 300))
	files, _ = json.Marshal(map[string]any{"files": []string{filepath.ToSlash(big)}})
	c2 := cmd("echo " + string(files))
	c2.ID, c2.Collect = "wbig", &wire.CollectHint{Name: "big", MaxSize: "100B"}
	e.publish(pcSubject("pc-wcol"), c2)
	if r := e.waitResult(c2.RequestID, 30*time.Second); r.CollectObject != "" || !strings.Contains(r.Stderr, "exceeds max_size") {
		t.Fatalf("over the cap: %+v", r)
	}
}
