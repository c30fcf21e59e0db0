package agent_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// Integration tests of the local scheduler (`runs_on: agent`): real agent,
// embedded JetStream server, real scripts and files.

// schedBuckets makes sure the scheduler's buckets exist (provisioned by
// whoever bootstraps the server).
func (e *env) schedBuckets() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, b := range []string{subject.BucketSchedules, subject.BucketJobs, subject.BucketFleetConfig} {
		if _, err := e.js.KeyValue(ctx, b); err == nil {
			continue
		}
		if _, err := e.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: b, History: 1}); err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
			e.t.Fatal(err)
		}
	}
}

func (e *env) kvDelete(bucket, key string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := e.js.KeyValue(ctx, bucket)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := kv.Delete(ctx, key); err != nil {
		e.t.Fatal(err)
	}
}

// putJob stores a job running script with testShell.
func (e *env) putJob(id, script string) {
	e.t.Helper()
	e.kvPut(subject.BucketJobs, id, fmt.Sprintf(`{"id":%q,"version":"1.0.0","execute":{"shell":%q,"script":%q,"timeout":"60s"}}`, id, testShell, script))
}

// putSchedule stores a runs_on: agent schedule of job jobID.
func (e *env) putSchedule(id, jobID, when, extra string) {
	e.t.Helper()
	doc := fmt.Sprintf(`{"id":%q,"when":%s,"job_id":%q,"target":{"all":true},"runs_on":"agent"%s}`, id, when, jobID, extra)
	if strings.Contains(extra, `"target"`) {
		doc = fmt.Sprintf(`{"id":%q,"when":%s,"job_id":%q,"runs_on":"agent"%s}`, id, when, jobID, extra)
	}
	e.kvPut(subject.BucketSchedules, id, doc)
}

// resultsFor returns the results stored for a manifest (job) id, in stream
// order, read one by one without a consumer. The skipped results reporting
// a when.on kind this host does not emit (logon on Linux: the tests trigger
// it by hand) are left out.
func (e *env) resultsFor(manifestID string) ([]wire.ExecResult, error) {
	all, err := e.allResultsFor(manifestID)
	out := all[:0]
	for _, r := range all {
		if !(r.Skipped && r.ExitCode == wire.ExitUnsupported && strings.Contains(r.Stderr, "when.on")) {
			out = append(out, r)
		}
	}
	return out, err
}

// allResultsFor is resultsFor with every result.
func (e *env) allResultsFor(manifestID string) ([]wire.ExecResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := e.js.Stream(ctx, subject.StreamResults)
	if err != nil {
		return nil, err
	}
	var out []wire.ExecResult
	for seq := uint64(1); ; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject("results.>"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		r, err := wire.DecodeExecResult(m.Data)
		if err != nil {
			return nil, err
		}
		if r.ManifestID == manifestID {
			out = append(out, *r)
		}
		seq = m.Sequence + 1
	}
}

// waitResultsFor waits until n results for manifestID are stored.
func (e *env) waitResultsFor(manifestID string, n int, within time.Duration) []wire.ExecResult {
	e.t.Helper()
	var rs []wire.ExecResult
	natstest.CheckFor(e.t, within, 50*time.Millisecond, func() error {
		var err error
		if rs, err = e.resultsFor(manifestID); err != nil {
			return err
		}
		if len(rs) < n {
			return fmt.Errorf("%d results for %s, want %d", len(rs), manifestID, n)
		}
		return nil
	})
	return rs
}

func (e *env) countResultsFor(manifestID string) int {
	e.t.Helper()
	rs, err := e.resultsFor(manifestID)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(rs)
}

// waitCatalog waits until the scheduler's on-disk catalog holds every
// string of want.
func waitCatalog(t *testing.T, dir string, want ...string) {
	t.Helper()
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		b, err := os.ReadFile(filepath.Join(dir, "scheduler", "catalog.json"))
		if err != nil {
			return err
		}
		for _, w := range want {
			if !bytes.Contains(b, []byte(w)) {
				return fmt.Errorf("catalog has no %q yet", w)
			}
		}
		return nil
	})
}

func fastPoll(o *agent.Options) { o.SchedulePollInterval = 100 * time.Millisecond }

// A schedule that comes due while the broker is down runs from the cached
// schedule, job and script object, and its result is delivered once the
// broker is back.
func TestScheduleFiresWhileBrokerDown(t *testing.T) {
	e := newEnv(t)
	e.schedBuckets()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	scripts, err := e.js.ObjectStore(ctx, subject.ObjectScripts)
	if err != nil {
		t.Fatal(err)
	}
	body := "echo offline-run"
	sum := sha256.Sum256([]byte(body))
	if _, err := scripts.PutBytes(ctx, "offline/1", []byte(body)); err != nil {
		t.Fatal(err)
	}
	e.kvPut(subject.BucketJobs, "offline", fmt.Sprintf(`{"id":"offline","version":"1","execute":{"shell":%q,"script_object":"offline/1","timeout":"60s"}}`, testShell))
	// Active only from a few seconds on: it cannot fire before the broker is down.
	from := time.Now().Add(3 * time.Second).UTC()
	e.putSchedule("offline-sched", "offline", `{"per_pc":"once"}`, fmt.Sprintf(`,"active":{"from":%q}`, from.Format(time.RFC3339Nano)))
	r := e.start("pc-offline", "", fastPoll)
	waitCatalog(t, r.dir, "offline-sched", hex.EncodeToString(sum[:]))
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		_, err := os.Stat(filepath.Join(r.dir, "script_cache", hex.EncodeToString(sum[:])))
		return err
	})
	if time.Now().After(from) {
		t.Skip("the machine was too slow to set the test up before the schedule came due")
	}
	e.srv.Shutdown()
	down := time.Now()
	// The run happens offline: its result waits in the results outbox.
	natstest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		if n := r.Stats().Outbox["results"].Pending; n == 0 {
			return errors.New("no result pending yet")
		}
		return nil
	})
	e.srv.Start()
	rs := e.waitResultsFor("offline", 1, 30*time.Second)
	res := rs[0]
	if res.ExitCode != 0 || !strings.Contains(res.Stdout, "offline-run") || res.ExecID == "" {
		t.Fatalf("result %+v", res)
	}
	if res.StartedAt.Before(down) {
		t.Errorf("ran at %v, before the broker went down at %v", res.StartedAt, down)
	}
}

// per_pc once: a run that exited 0 is remembered across an agent restart.
func TestSchedulePerPcOnceSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	e.schedBuckets()
	e.putJob("kit", noopScript)
	e.putSchedule("kitting", "kit", `{"per_pc":"once"}`, "")
	dir := natstest.TempDir(t)
	r := e.start("pc-once", dir, fastPoll)
	if rs := e.waitResultsFor("kit", 1, 20*time.Second); rs[0].ExitCode != 0 {
		t.Fatalf("result %+v", rs[0])
	}
	r.stop(t)
	e.start("pc-once", dir, fastPoll)
	// A probe scheduled after the restart runs at a poll that also saw
	// the kitting schedule.
	e.putJob("probe", noopScript)
	e.putSchedule("probe", "probe", `{"per_pc":"once"}`, "")
	e.waitResultsFor("probe", 1, 20*time.Second)
	if n := e.countResultsFor("kit"); n != 1 {
		t.Fatalf("per_pc once ran %d times across a restart", n)
	}
}

// A fleet freeze stops fires until it ends; a freeze value that does not
// decode stops them too, until it is deleted.
func TestScheduleFreeze(t *testing.T) {
	e := newEnv(t)
	e.schedBuckets()
	until := time.Now().Add(2 * time.Second).UTC()
	e.kvPut(subject.BucketFleetConfig, subject.FreezeKey, fmt.Sprintf(`{"until":%q,"reason":"INC-1"}`, until.Format(time.RFC3339Nano)))
	e.putJob("frozen", noopScript)
	e.putSchedule("frozen", "frozen", `{"per_pc":"once"}`, "")
	e.start("pc-freeze", "", fastPoll)
	rs := e.waitResultsFor("frozen", 1, 20*time.Second)
	if rs[0].StartedAt.Before(until) {
		t.Fatalf("ran at %v during the freeze (until %v)", rs[0].StartedAt, until)
	}

	e.kvPut(subject.BucketFleetConfig, subject.FreezeKey, `{"until": nope`)
	e.putJob("corrupt", noopScript)
	e.putSchedule("corrupt", "corrupt", `{"per_pc":"once"}`, "")
	var log natstest.Buffer
	e.start("pc-freeze2", "", func(o *agent.Options) {
		fastPoll(o)
		o.Logger = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	// A fire of the schedule was evaluated and refused by the freeze.
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if !regexpFreeze.MatchString(log.String()) {
			return errors.New("no frozen fire logged yet")
		}
		return nil
	})
	if n := e.countResultsFor("corrupt"); n != 0 {
		t.Fatal("ran under a corrupt freeze")
	}
	thaw := time.Now()
	e.kvDelete(subject.BucketFleetConfig, subject.FreezeKey)
	rs = e.waitResultsFor("corrupt", 1, 20*time.Second)
	if rs[0].StartedAt.Before(thaw) {
		t.Fatalf("ran at %v under a corrupt freeze (deleted at %v)", rs[0].StartedAt, thaw)
	}
}

var regexpFreeze = regexp.MustCompile(`change-freeze active; skip.*schedule_id=corrupt`)

// on: [startup] runs once per OS boot: an agent restart in the same boot
// does not run it again.
func TestScheduleStartupOncePerBoot(t *testing.T) {
	e := newEnv(t)
	e.schedBuckets()
	e.putJob("boot", noopScript)
	e.putSchedule("at-boot", "boot", `{"on":["startup"]}`, "")
	e.putJob("probe", noopScript)
	e.putSchedule("probe", "probe", `{"on":["logon"]}`, "")
	dir := natstest.TempDir(t)
	r := e.start("pc-boot", dir, nil)
	e.waitResultsFor("boot", 1, 20*time.Second)
	r.stop(t)

	r = e.start("pc-boot", dir, nil)
	waitCatalog(t, dir, "at-boot", "probe")
	r.Trigger(wire.TriggerStartup) // as the agent itself does at start
	r.Trigger(wire.TriggerLogon)
	e.waitResultsFor("probe", 1, 20*time.Second)
	if n := e.countResultsFor("boot"); n != 1 {
		t.Fatalf("startup schedule ran %d times in one boot", n)
	}
}

// Targeting: all, this pc, one of its groups; not another pc's or group's.
func TestScheduleTargeting(t *testing.T) {
	e := newEnv(t)
	e.schedBuckets()
	e.kvPut(subject.BucketGroups, "pc-target", `{"groups":["lab"]}`)
	for _, tc := range []struct{ id, target string }{
		{"t-pc", `{"pcs":["pc-target"]}`},
		{"t-group", `{"groups":["lab"]}`},
		{"t-other-pc", `{"pcs":["pc-other"]}`},
		{"t-other-group", `{"groups":["hq"]}`},
		{"t-none", `{}`},
	} {
		e.putJob(tc.id, noopScript)
		e.putSchedule(tc.id, tc.id, `{"on":["logon"]}`, `,"target":`+tc.target)
	}
	e.putJob("t-backend", noopScript)
	e.kvPut(subject.BucketSchedules, "t-backend", `{"id":"t-backend","when":{"per_pc":"once"},"job_id":"t-backend","target":{"all":true}}`)
	r := e.start("pc-target", "", fastPoll)
	waitCatalog(t, r.dir, "t-pc", "t-group", "t-other-pc", "t-other-group", "t-none", "t-backend")
	// The snapshot reads the groups before the schedules: the catalog on
	// disk means both are known.
	r.Trigger(wire.TriggerLogon)
	e.waitResultsFor("t-pc", 1, 20*time.Second)
	e.waitResultsFor("t-group", 1, 20*time.Second)
	for _, id := range []string{"t-other-pc", "t-other-group", "t-none", "t-backend"} {
		if n := e.countResultsFor(id); n != 0 {
			t.Errorf("%s ran on a pc it does not target", id)
		}
	}
}

// A fire while the previous run of the same schedule is still running is
// skipped.
func TestScheduleInFlightClaim(t *testing.T) {
	e := newEnv(t)
	e.schedBuckets()
	e.putJob("slow", sleepScript(2))
	e.putSchedule("slow", "slow", `{"on":["logon"]}`, "")
	r := e.start("pc-claim", "", nil)
	waitCatalog(t, r.dir, `"slow"`)
	r.Trigger(wire.TriggerLogon)
	r.Trigger(wire.TriggerLogon) // while the first runs: skipped
	e.waitResultsFor("slow", 1, 30*time.Second)
	r.Trigger(wire.TriggerLogon) // the first completed: runs
	rs := e.waitResultsFor("slow", 2, 30*time.Second)
	if len(rs) != 2 || rs[1].StartedAt.Before(rs[0].FinishedAt) {
		t.Fatalf("runs overlapped or ran thrice: %+v", rs)
	}
}

// A scheduled run skips the version pin (script_current), as upstream's
// local scheduler builds its command from the job it has; a revoked job is
// still refused.
func TestScheduleSkipsVersionPin(t *testing.T) {
	e := newEnv(t)
	e.schedBuckets()
	e.kvPut(subject.BucketScriptCurrent, "pinned", "9.9.9")
	e.putJob("pinned", noopScript)
	e.putSchedule("pinned", "pinned", `{"on":["logon"]}`, "")
	e.kvPut(subject.BucketScriptStatus, "revoked", wire.ScriptRevoked)
	e.putJob("revoked", noopScript)
	e.putSchedule("revoked", "revoked", `{"on":["logon"]}`, "")
	r := e.start("pc-pin", "", nil)
	waitCatalog(t, r.dir, `"pinned"`, `"revoked"`)
	r.Trigger(wire.TriggerLogon)
	if rs := e.waitResultsFor("pinned", 1, 20*time.Second); rs[0].ExitCode != 0 || rs[0].Skipped {
		t.Fatalf("pinned job: %+v", rs[0])
	}
	if rs := e.waitResultsFor("revoked", 1, 20*time.Second); rs[0].ExitCode != wire.ExitRevoked {
		t.Fatalf("revoked job: %+v", rs[0])
	}
}

// Script objects are cached by SHA-256: a cached one runs without the
// store; a cache file whose content does not match its name is not run.
func TestScriptCache(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := e.js.ObjectStore(ctx, subject.ObjectScripts)
	if err != nil {
		t.Fatal(err)
	}
	body := "echo cached-body"
	sum := sha256.Sum256([]byte(body))
	sha := hex.EncodeToString(sum[:])
	if _, err := store.PutString(ctx, "cached/1", body); err != nil {
		t.Fatal(err)
	}
	r := e.start("pc-cache", "", nil)
	run := func() wire.ExecResult {
		c := cmd("")
		c.Script, c.ScriptObject, c.ScriptObjectSHA256 = "", "cached/1", sha
		e.publish(pcSubject("pc-cache"), c)
		return e.waitResult(c.RequestID, 20*time.Second)
	}
	if res := run(); res.ExitCode != 0 || !strings.Contains(res.Stdout, "cached-body") {
		t.Fatalf("first run: %+v", res)
	}
	if err := store.Delete(ctx, "cached/1"); err != nil {
		t.Fatal(err)
	}
	if res := run(); res.ExitCode != 0 || !strings.Contains(res.Stdout, "cached-body") {
		t.Fatalf("cached run without the object: %+v", res)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "script_cache", sha), []byte("echo tampered"), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := run(); res.ExitCode != wire.ExitKilled || strings.Contains(res.Stdout, "tampered") {
		t.Fatalf("tampered cache file ran: %+v", res)
	}
}

// After a restart without a broker, the schedules and jobs kept on disk
// fire; the result is delivered once the broker is reachable.
func TestScheduleFiresAfterRestartWithoutBroker(t *testing.T) {
	e := newEnv(t)
	e.schedBuckets()
	e.putJob("cold", "echo cold-start")
	from := time.Now().Add(4 * time.Second).UTC()
	e.putSchedule("cold", "cold", `{"per_pc":"once"}`, fmt.Sprintf(`,"active":{"from":%q}`, from.Format(time.RFC3339Nano)))
	dir := natstest.TempDir(t)
	r := e.start("pc-cold", dir, fastPoll)
	waitCatalog(t, dir, `"cold"`, "cold-start")
	r.stop(t)
	e.srv.Shutdown()

	a, err := agent.New(agent.Options{PcID: "pc-cold", DataDir: dir, Servers: []string{e.srv.URL()},
		Logger: testLogger(t), DisableInventory: true, SchedulePollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("agent did not stop")
		}
	})
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		if n := a.Stats().Outbox["results"].Pending; n == 0 {
			return errors.New("no result pending yet")
		}
		return nil
	})
	e.srv.Start()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent after the restart: stats %+v", a.Stats())
		}
	})
	rs := e.waitResultsFor("cold", 1, 30*time.Second)
	if rs[0].ExitCode != 0 || !strings.Contains(rs[0].Stdout, "cold-start") || rs[0].StartedAt.Before(from) {
		t.Fatalf("result %+v", rs[0])
	}
	// Offline, nothing waits on the dead broker before the script starts:
	// not the kill subscription's flush (2 s), not a gate read (3 s).
	if late := rs[0].StartedAt.Sub(from); late >= 4*time.Second {
		t.Errorf("script started %v after the fire time; something waited on the broker", late)
	}
}

// A schedule requiring what the agent cannot sense (idle, with an Idle hook
// that cannot tell) yields one skipped result, exit 122, through the
// results outbox, however many polls find it unsupported; no completion is
// recorded, and it runs once the hook can tell.
func TestScheduleUnsupportedRequire(t *testing.T) {
	e := newEnv(t)
	e.schedBuckets()
	e.putJob("needs-idle", noopScript)
	e.putSchedule("needs-idle", "needs-idle", `{"per_pc":"once"}`, `,"constraints":{"require":{"idle":"5m"}}`)
	var known atomic.Bool
	var calls atomic.Int64
	r := e.start("pc-unsup", "", func(o *agent.Options) {
		fastPoll(o)
		o.Idle = func() (time.Duration, bool) { calls.Add(1); return time.Hour, known.Load() }
	})
	rs := e.waitResultsFor("needs-idle", 1, 20*time.Second)
	got := rs[0]
	if got.ExitCode != wire.ExitUnsupported || !got.Skipped || got.PcID != "pc-unsup" || got.ManifestID != "needs-idle" ||
		got.RequestID == "" || got.ExecID == "" || got.ResultID == "" || got.Stdout != "" ||
		!strings.HasPrefix(got.Stderr, "kanade-agent: skipped: constraints.require idle cannot be sensed on this agent (") {
		t.Fatalf("result %+v", got)
	}
	// Several more polls find it unsupported: no other result.
	seen := calls.Load()
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if n := calls.Load(); n < seen+3 {
			return fmt.Errorf("%d polls since the report, want 3", n-seen)
		}
		return nil
	})
	if n := e.countResultsFor("needs-idle"); n != 1 {
		t.Fatalf("%d results while unsupported, want 1", n)
	}
	comp := filepath.Join(r.dir, "scheduler", "local_completions.json")
	if b, _ := os.ReadFile(comp); bytes.Contains(b, []byte("needs-idle")) {
		t.Fatalf("a completion was recorded for the unsupported fire: %s", b)
	}
	known.Store(true)
	rs = e.waitResultsFor("needs-idle", 2, 20*time.Second)
	if rs[1].ExitCode != 0 || rs[1].Skipped {
		t.Fatalf("run once supported: %+v", rs[1])
	}
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if b, _ := os.ReadFile(comp); !bytes.Contains(b, []byte("needs-idle::needs-idle")) {
			return fmt.Errorf("no completion yet: %s", b)
		}
		return nil
	})
}

// On Linux the agent emits no lock event: a schedule on it yields one
// skipped result, exit 122, naming when.on lock; once the host program
// triggers lock, the schedule fires.
func TestScheduleUnsupportedEvent(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("lock is emitted on " + runtime.GOOS)
	}
	e := newEnv(t)
	e.schedBuckets()
	e.putJob("on-lock", noopScript)
	e.putSchedule("on-lock", "on-lock", `{"on":["lock"]}`, "")
	r := e.start("pc-lock", "", fastPoll)
	var skip wire.ExecResult
	natstest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		rs, err := e.allResultsFor("on-lock")
		if err != nil {
			return err
		}
		if len(rs) != 1 {
			return fmt.Errorf("%d results, want 1", len(rs))
		}
		skip = rs[0]
		return nil
	})
	if skip.ExitCode != wire.ExitUnsupported || !skip.Skipped || !strings.Contains(skip.Stderr, "when.on lock is never emitted on this agent (linux)") {
		t.Fatalf("result %+v", skip)
	}
	r.Trigger(wire.TriggerLock)
	natstest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		rs, err := e.allResultsFor("on-lock")
		if err != nil {
			return err
		}
		if len(rs) != 2 {
			return fmt.Errorf("%d results, want 2", len(rs))
		}
		if rs[1].ExitCode != 0 || rs[1].Skipped {
			return fmt.Errorf("run %+v", rs[1])
		}
		return nil
	})
}
