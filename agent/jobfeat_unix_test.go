//go:build unix

package agent_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/wire"
)

func obsLine(at, rec string) string {
	return fmt.Sprintf(`echo '{"at":"%s","kind":"logon","source":"test:wm","event_record_id":"%s","payload":{"n":"%s"}}'`, at, rec, rec)
}

// TestEmitWatermark: a named emit job whose script re-reads its source
// prints the old events again on its second run, after an agent restart;
// they are not published twice, the new one is, and the script gets the
// watermark in KANADE_EMIT_WATERMARK.
func TestEmitWatermark(t *testing.T) {
	e := newEnv(t)
	dir := natstest.TempDir(t)
	envFile := filepath.Join(natstest.TempDir(t), "wm")
	a := e.start("pc-wm", dir, nil)
	emitCmd := func(lines ...string) wire.Command {
		c := cmd(`printf '%s' "$KANADE_EMIT_WATERMARK" > ` + envFile + "; " + strings.Join(lines, "; "))
		c.ID, c.Emit = "logons", &wire.Emit{Type: wire.EmitEvents}
		return c
	}
	// An event stamped far ahead (a wrong clock) must not move the mark.
	first := emitCmd(obsLine("2026-01-02T03:04:05Z", "1"), obsLine("2099-01-01T00:00:00Z", "future"), obsLine("2026-01-02T03:04:06Z", "2"))
	e.publish(pcSubject("pc-wm"), first)
	if r := e.waitResult(first.RequestID, 20*time.Second); r.ExitCode != 0 || r.Stdout != "" {
		t.Fatalf("first run: %+v", r)
	}
	e.waitObs("pc-wm", "test:wm", 3)
	if b, _ := os.ReadFile(envFile); len(b) != 0 {
		t.Fatalf("first run saw watermark %q, want none", b)
	}
	a.stop(t)

	e.start("pc-wm", dir, nil)
	second := emitCmd(obsLine("2026-01-02T03:04:05Z", "1"), obsLine("2026-01-02T03:04:06Z", "2"),
		obsLine("2026-01-02T03:04:06Z", "3"), obsLine("2026-01-02T03:04:07Z", "4"))
	e.publish(pcSubject("pc-wm"), second)
	r := e.waitResult(second.RequestID, 20*time.Second)
	if r.ExitCode != 0 || !strings.Contains(r.Stderr, "2 events at or before the watermark") {
		t.Fatalf("second run: %+v", r)
	}
	if b, _ := os.ReadFile(envFile); string(b) != "2026-01-02T03:04:06Z" {
		t.Fatalf("second run saw watermark %q", b)
	}
	// Every event of the run is in the obs outbox before the result: once
	// the new ones arrive, nothing else of the run is on its way.
	evs := e.waitObs("pc-wm", "test:wm", 5)
	var recs []string
	for _, ev := range evs {
		recs = append(recs, ev.EventRecordID)
	}
	if got := strings.Join(recs, ","); got != "1,future,2,3,4" {
		t.Fatalf("published events %s, want 1,2,3,4 (each once)", got)
	}
}

// TestFinalizeResult: after a clean run the finalize hook runs and its own
// result (request id <request_id>__finalize) links back to the run; a
// failed run has no hook; a hook over its timeout is killed and says so.
func TestFinalizeResult(t *testing.T) {
	e := newEnv(t)
	a := e.start("pc-fin", "", nil)
	c := cmd("echo main")
	c.ID, c.ExecID = "cleanup", "exec-fin"
	c.Finalize = &wire.FinalizeCommand{Shell: wire.ShellSh, Script: `echo "hook:${KANADE_COLLECT_RESULT-unset}"; exit 4`, TimeoutSecs: 20}
	e.publish(pcSubject("pc-fin"), c)
	main := e.waitResult(c.RequestID, 20*time.Second)
	if main.ExitCode != 0 || main.Stdout != "main\n" || main.ParentResultID != "" {
		t.Fatalf("main result: %+v", main)
	}
	fin := e.waitResult(c.RequestID+"__finalize", 20*time.Second)
	if fin.ExitCode != 4 || fin.ParentResultID != main.ResultID || fin.ManifestID != "cleanup__finalize" ||
		fin.ExecID != "" || fin.Stdout != "hook:unset\n" || fin.ResultID == main.ResultID || uuid.Validate(fin.ResultID) != nil {
		t.Fatalf("finalize result: %+v (main %s)", fin, main.ResultID)
	}

	slow := cmd("true")
	slow.ID = "slowfin"
	slow.Finalize = &wire.FinalizeCommand{Shell: wire.ShellSh, Script: "sleep 60", TimeoutSecs: 1}
	e.publish(pcSubject("pc-fin"), slow)
	if r := e.waitResult(slow.RequestID+"__finalize", 30*time.Second); r.ExitCode != wire.ExitKilled ||
		!strings.Contains(r.Stderr, "finalize: hook timed out after 1s") {
		t.Fatalf("slow finalize: %+v", r)
	}

	failed := cmd("exit 2")
	failed.ID = "cleanup"
	failed.Finalize = c.Finalize
	e.publish(pcSubject("pc-fin"), failed)
	if r := e.waitResult(failed.RequestID, 20*time.Second); r.ExitCode != 2 {
		t.Fatalf("failed run: %+v", r)
	}
	a.stop(t) // waits for every command, hooks included
	if rs, _ := e.results(failed.RequestID + "__finalize"); len(rs) != 0 {
		t.Fatalf("a failed run ran its finalize hook: %+v", rs)
	}
}

// TestFinalizeSurvivesCrash: an agent killed while a finalize hook runs
// reports the hook at the next start (exit 121, linked to its run).
func TestFinalizeSurvivesCrash(t *testing.T) {
	e := newEnv(t)
	dir := natstest.TempDir(t)
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "KANADE_AGENT_CHILD=1", "KANADE_PC_ID=pc-fincrash",
		"KANADE_DATA_DIR="+dir, "KANADE_NATS_URL="+e.srv.URL())
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	c := cmd("true")
	c.ID = "crashfin"
	c.Finalize = &wire.FinalizeCommand{Shell: wire.ShellSh, Script: "sleep 300", TimeoutSecs: 600}
	var main wire.ExecResult
	natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		rs, err := e.results(c.RequestID)
		if err == nil && len(rs) > 0 {
			main = rs[0]
			return nil
		}
		e.publish(pcSubject("pc-fincrash"), c)
		return fmt.Errorf("no result yet (%v)", err)
	})
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	e.start("pc-fincrash", dir, nil)
	r := e.waitResult(c.RequestID+"__finalize", 20*time.Second)
	if r.ExitCode != wire.ExitRestarted || r.ParentResultID != main.ResultID || r.ManifestID != "crashfin__finalize" {
		t.Fatalf("finalize after restart: %+v (main %+v)", r, main)
	}
}

// TestCheckCached: a check job's result is cached by check name, from its
// stdout on exit 0 and as unknown on a failure, and survives a restart;
// the ExecResult keeps its stdout.
func TestCheckCached(t *testing.T) {
	e := newEnv(t)
	dir := natstest.TempDir(t)
	a := e.start("pc-chk", dir, nil)
	c := cmd(`echo 'progress'; echo '#KANADE-CHECK-BEGIN'; echo '{"st":"warn","d":"C: 91% full","x":1}'; echo '#KANADE-CHECK-END'`)
	c.ID = "check-disk"
	c.Check = &wire.CheckHint{Name: "disk", Label: "Disk", StatusField: "st", DetailField: "d", Troubleshoot: "fix-disk", Fleet: true}
	e.publish(pcSubject("pc-chk"), c)
	r := e.waitResult(c.RequestID, 20*time.Second)
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, `"st":"warn"`) {
		t.Fatalf("check result: %+v", r)
	}
	want := wire.Check{Name: "disk", Label: "Disk", Status: wire.CheckWarn, Detail: "C: 91% full", Troubleshoot: "fix-disk", HealthHidden: true}
	checkIs := func(a *running, want wire.Check, resultID string) {
		t.Helper()
		got := a.Checks()
		if len(got) != 1 || got[0].Check != want || got[0].ResultID != resultID || got[0].At.IsZero() {
			t.Fatalf("Checks() = %+v, want %+v of %s", got, want, resultID)
		}
	}
	checkIs(a, want, r.ResultID)

	bad := cmd(`echo '{"st":"ok"}'; echo boom >&2; exit 3`)
	bad.ID, bad.Check = "check-disk", c.Check
	e.publish(pcSubject("pc-chk"), bad)
	rb := e.waitResult(bad.RequestID, 20*time.Second)
	want = wire.Check{Name: "disk", Label: "Disk", Status: wire.CheckUnknown, Detail: "check script exited 3: boom", Troubleshoot: "fix-disk", HealthHidden: true}
	checkIs(a, want, rb.ResultID)
	a.stop(t)
	checkIs(e.start("pc-chk", dir, nil), want, rb.ResultID)
}

// TestCollectUploads: a collect job's listed files are zipped into the
// collections object store, collect_object names the bundle, a missing
// file is skipped with a note, a bundle over max_size is not uploaded,
// and the finalize hook gets the outcome in KANADE_COLLECT_RESULT.
func TestCollectUploads(t *testing.T) {
	e := newEnv(t)
	store := e.collectionsBucket()
	e.start("pc-col", "", nil)
	src := natstest.TempDir(t)
	if err := os.Mkdir(filepath.Join(src, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	a, b, a2, big := filepath.Join(src, "a.txt"), filepath.Join(src, "b.log"), filepath.Join(src, "sub", "a.txt"), filepath.Join(src, "big.bin")
	putFile(t, a, "alpha")
	putFile(t, b, "bravo")
	putFile(t, a2, "alpha two")
	putFile(t, big, strings.Repeat("x", 2000))
	missing := filepath.Join(src, "missing.txt")
	files, _ := json.Marshal(map[string]any{"bundles": []any{
		map[string]any{"files": []string{a, missing, b, a2}},
		map[string]any{"label": "big day", "files": []string{big}},
		map[string]any{"label": "2026_01", "files": []string{b}},
	}})
	c := cmd("echo 'collecting'; echo '#KANADE-COLLECT-BEGIN'; echo '" + string(files) + "'; echo '#KANADE-COLLECT-END'")
	c.ID = "diag"
	c.Collect = &wire.CollectHint{Name: "Diagnostics", MaxSize: "1KB"}
	c.Finalize = &wire.FinalizeCommand{Shell: wire.ShellSh, Script: `printf '%s' "$KANADE_COLLECT_RESULT"`, TimeoutSecs: 20}
	e.publish(pcSubject("pc-col"), c)
	r := e.waitResult(c.RequestID, 30*time.Second)
	if !regexp.MustCompile(`^pc-col/diag/\d{8}T\d{6}\.\d{3}Z\.zip$`).MatchString(r.CollectObject) || r.ExitCode != 0 {
		t.Fatalf("collect result: %+v", r)
	}
	for _, want := range []string{`skipped "` + missing + `"`, "bundle big-day not uploaded: bundle exceeds max_size (0 + 2000 > 1000 bytes)"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr %q lacks %q", r.Stderr, want)
		}
	}
	got := zipEntries(t, store, r.CollectObject)
	if len(got) != 3 || got["a.txt"] != "alpha" || got["b.log"] != "bravo" || got["1_a.txt"] != "alpha two" {
		t.Fatalf("bundle entries %v", got)
	}
	ts := strings.TrimSuffix(strings.TrimPrefix(r.CollectObject, "pc-col/diag/"), ".zip")
	if names := objectNames(t, store); strings.Join(names, " ") != "pc-col/diag/2026-01__"+ts+".zip "+r.CollectObject {
		t.Fatalf("objects %v", names)
	}
	fin := e.waitResult(c.RequestID+"__finalize", 20*time.Second)
	wantJSON := `{"bundles":[{"files":["` + a + `","` + b + `","` + a2 + `"],"key":"` + r.CollectObject + `","label":null,"uploaded":true},` +
		`{"files":["` + b + `"],"key":"pc-col/diag/2026-01__` + ts + `.zip","label":"2026-01","uploaded":true}],"ok":true}`
	if fin.ExitCode != 0 || fin.Stdout != wantJSON || fin.ParentResultID != r.ResultID {
		t.Fatalf("finalize %+v\nwant stdout %s", fin, wantJSON)
	}

	// A failed run collects nothing.
	failed := cmd("echo '{\"files\":[\"" + a + "\"]}'; exit 1")
	failed.ID, failed.Collect = "diag2", c.Collect
	e.publish(pcSubject("pc-col"), failed)
	if r := e.waitResult(failed.RequestID, 20*time.Second); r.CollectObject != "" || r.ExitCode != 1 {
		t.Fatalf("failed collect: %+v", r)
	}
	for _, n := range objectNames(t, store) {
		if strings.HasPrefix(n, "pc-col/diag2/") {
			t.Fatalf("a failed run uploaded %s", n)
		}
	}
}

// TestCollectRefusesEscapes: with collect roots, a path that leaves them
// (.., a symbolic link out, a link inside) is refused; the agent's data dir
// is never collected, roots or not.
func TestCollectRefusesEscapes(t *testing.T) {
	e := newEnv(t)
	store := e.collectionsBucket()
	root, outside, dir := natstest.TempDir(t), natstest.TempDir(t), natstest.TempDir(t)
	e.start("pc-esc", dir, func(o *agent.Options) { o.CollectRoots = []string{root} })
	ok := filepath.Join(root, "ok.txt")
	putFile(t, ok, "fine")
	secret := filepath.Join(outside, "secret.txt")
	putFile(t, secret, "top secret")
	linkOut := filepath.Join(root, "link.txt")
	if err := os.Symlink(secret, linkOut); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "outdir")); err != nil {
		t.Fatal(err)
	}
	viaDir := filepath.Join(root, "outdir", "secret.txt")
	dotdot := root + "/../" + filepath.Base(outside) + "/secret.txt"
	own := filepath.Join(dir, "checks.json")
	putFile(t, own, "[]")
	list := []string{ok, linkOut, viaDir, dotdot, secret, own, "relative.txt"}
	files, _ := json.Marshal(map[string]any{"files": list})
	c := cmd("echo '" + string(files) + "'")
	c.ID, c.Collect = "esc", &wire.CollectHint{Name: "escape"}
	e.publish(pcSubject("pc-esc"), c)
	r := e.waitResult(c.RequestID, 30*time.Second)
	if r.CollectObject == "" {
		t.Fatalf("nothing collected: %+v", r)
	}
	if got := zipEntries(t, store, r.CollectObject); len(got) != 1 || got["ok.txt"] != "fine" {
		t.Fatalf("bundle entries %v", got)
	}
	for p, why := range map[string]string{linkOut: "is a symbolic link", viaDir: "outside the collect roots", dotdot: "has a .. element",
		secret: "outside the collect roots", own: "agent's own data", "relative.txt": "not an absolute path"} {
		if !strings.Contains(r.Stderr, fmt.Sprintf("skipped %q: ", p)) || !strings.Contains(r.Stderr, why) {
			t.Errorf("stderr lacks the refusal of %s (%s): %q", p, why, r.Stderr)
		}
	}

	// Without roots the data dir is still refused.
	e2 := natstest.TempDir(t)
	e.start("pc-esc2", e2, nil)
	own2 := filepath.Join(e2, "checks.json")
	putFile(t, own2, "[]")
	files, _ = json.Marshal(map[string]any{"files": []string{own2}})
	c2 := cmd("echo '" + string(files) + "'")
	c2.ID, c2.Collect = "esc", &wire.CollectHint{Name: "escape"}
	e.publish(pcSubject("pc-esc2"), c2)
	if r := e.waitResult(c2.RequestID, 30*time.Second); r.CollectObject != "" ||
		!strings.Contains(r.Stderr, "agent's own data") || !strings.Contains(r.Stderr, "no bundles uploaded") {
		t.Fatalf("data dir collected: %+v", r)
	}
}

// TestFinalizeOnEachBundle: with on_each_bundle the hook runs once per
// uploaded bundle, each with its own result and that bundle alone in
// KANADE_COLLECT_RESULT, and not once more after the run.
func TestFinalizeOnEachBundle(t *testing.T) {
	e := newEnv(t)
	e.collectionsBucket()
	a := e.start("pc-each", "", nil)
	src := natstest.TempDir(t)
	d1, d2 := filepath.Join(src, "d1.png"), filepath.Join(src, "d2.png")
	putFile(t, d1, "one")
	putFile(t, d2, "two")
	files, _ := json.Marshal(map[string]any{"bundles": []any{
		map[string]any{"label": "20260101", "files": []string{d1}},
		map[string]any{"label": "20260102", "files": []string{d2}},
	}})
	c := cmd("echo '" + string(files) + "'")
	c.ID = "shots"
	c.Collect = &wire.CollectHint{Name: "screenshots"}
	c.Finalize = &wire.FinalizeCommand{Shell: wire.ShellSh, Script: `printf '%s' "$KANADE_COLLECT_RESULT"`, TimeoutSecs: 20, OnEachBundle: true}
	e.publish(pcSubject("pc-each"), c)
	r := e.waitResult(c.RequestID, 30*time.Second)
	if !strings.HasPrefix(r.CollectObject, "pc-each/shots/20260101__") {
		t.Fatalf("collect result: %+v", r)
	}
	for i, f := range []string{d1, d2} {
		fr := e.waitResult(fmt.Sprintf("%s__finalize-%d", c.RequestID, i), 20*time.Second)
		var got struct {
			OK      bool `json:"ok"`
			Bundles []struct {
				Files []string `json:"files"`
				Key   string   `json:"key"`
			} `json:"bundles"`
		}
		if err := json.Unmarshal([]byte(fr.Stdout), &got); err != nil || !got.OK || len(got.Bundles) != 1 ||
			len(got.Bundles[0].Files) != 1 || got.Bundles[0].Files[0] != f || fr.ParentResultID != r.ResultID {
			t.Fatalf("finalize %d: %+v (%v)", i, fr, err)
		}
	}
	a.stop(t)
	if rs, _ := e.results(c.RequestID + "__finalize"); len(rs) != 0 {
		t.Fatalf("aggregate hook ran too: %+v", rs)
	}
}
