package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/kanade/kanade-agent/internal/ledger"
	"github.com/kanade/kanade-agent/scheduler"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// The local scheduler (`runs_on: agent`, package scheduler).
//
// The agent follows KV buckets schedules, jobs and fleet_config (key
// freeze) with the state loop (watch.go): core subscriptions announce
// changes, each announced key is read from the stream leader, and a full
// walk of schedules and jobs (plus a read of the freeze) after every
// reconnect replaces the scheduler's catalog, only once complete (a
// partial walk keeps the previous state). The scheduler keeps the last
// catalog on disk, so it fires while the broker is down and after a restart
// without one. A fire's command runs through the same pipeline as a
// received one (claimAndStart: dedup ledger, limiter, results outbox) with
// the version pin skipped; its outcome is reported back (Completed) when
// its result is stored. A fire the scheduler finds unsupported on this
// agent (a constraints.require it cannot sense, a when.on kind it never
// emits) is stored as a skipped result, exit 122, through the results
// outbox (skipScheduled), once per schedule and reason per agent start.

// errNotAccepting is returned by submitScheduled while the agent stops.
var errNotAccepting = errors.New("agent: not accepting commands (stopping)")

// errSkipNotStored is returned by skipScheduled when the result was not
// stored (rate limit, outbox error).
var errSkipNotStored = errors.New("agent: skipped result not stored")

// startScheduler creates the scheduler over its state in the data dir and
// fires the startup trigger; run starts Run. A scheduler that cannot be
// created is logged and stays off.
func (a *Agent) startScheduler() (run func(context.Context) error) {
	if a.opts.DisableScheduler {
		return nil
	}
	s, err := scheduler.New(scheduler.Options{
		Dir:          filepath.Join(a.opts.DataDir, "scheduler"),
		PcID:         a.opts.PcID,
		Groups:       a.kv.effectiveGroups,
		Submit:       a.submitScheduled,
		Log:          a.log.With("component", "scheduler"),
		PollInterval: a.opts.SchedulePollInterval,
		Idle:         a.opts.Idle,
		Skip:         a.skipScheduled,
		Live:         a.liveScheduled,
	})
	if err != nil {
		a.log.Error("local scheduler not started", "err", err)
		return nil
	}
	a.sched.Store(s)
	s.Trigger(wire.TriggerStartup)
	return func(ctx context.Context) error {
		defer s.Close()
		return s.Run(ctx)
	}
}

// Trigger fires the agent's `when: {on: [...]}` schedules listing kind:
// wire.TriggerLogon, TriggerLock, TriggerUnlock or TriggerNetworkChange
// (debounced), for the host program's session and network watchers. The
// agent fires TriggerStartup itself when Run starts (once per OS boot).
// It does not block; before Run starts the scheduler, or with
// Options.DisableScheduler, it does nothing.
func (a *Agent) Trigger(kind string) {
	if s := a.sched.Load(); s != nil {
		s.Trigger(kind)
	}
}

// submitScheduled runs a scheduler's command through the pipeline.
func (a *Agent) submitScheduled(_ context.Context, cmd *wire.Command) error {
	a.stopMu.RLock()
	stopping := a.stopping
	a.stopMu.RUnlock()
	if stopping {
		return errNotAccepting
	}
	a.counters.received.Add(1)
	a.claimAndStart(cmd, nil)
	return nil
}

// skipScheduled stores the skipped result of a fire the scheduler found
// unsupported on this agent (a constraints.require it cannot sense, a
// when.on kind it never emits): exit 122, skipped, the note as stderr,
// request_id and exec_id those of cmd (new, never run), manifest_id the
// job id, result_id derived from the request. It goes through the results
// outbox with the refusals' rate limit.
func (a *Agent) skipScheduled(_ context.Context, cmd *wire.Command, note string) error {
	now := time.Now()
	r := a.newResult(cmd, refusalID(cmd.RequestID, a.opts.PcID, "unsupported"), now)
	r.ExitCode, r.Skipped, r.FinishedAt, r.Stderr = wire.ExitUnsupported, true, now, note
	if !a.store(r) {
		return errSkipNotStored
	}
	return nil
}

// liveScheduled reports whether a fire's command is still waiting or
// running: its ledger entry is pending or launching.
func (a *Agent) liveScheduled(requestID string) bool {
	e, ok := a.ledger.get().Lookup(requestID)
	return ok && (e.State == ledger.StatePending || e.State == ledger.StateLaunching)
}

// scheduled reports whether a command is a local scheduler's fire.
func (a *Agent) scheduled(requestID string) bool {
	s := a.sched.Load()
	return s != nil && s.Owns(requestID)
}

// scheduleDone reports a command's stored outcome to the scheduler.
func (a *Agent) scheduleDone(requestID string, exitCode int32) {
	if s := a.sched.Load(); s != nil {
		s.Completed(requestID, exitCode)
	}
}

// schedSubjects are the core subjects announcing the scheduler's keys.
func (a *Agent) schedSubjects() []string {
	if a.opts.DisableScheduler {
		return nil
	}
	return []string{
		"$KV." + subject.BucketSchedules + ".>",
		"$KV." + subject.BucketJobs + ".>",
		"$KV." + subject.BucketFleetConfig + "." + subject.FreezeKey,
	}
}

func isSchedBucket(b string) bool {
	return b == subject.BucketSchedules || b == subject.BucketJobs || b == subject.BucketFleetConfig
}

// refreshSched applies one announced key of the scheduler's buckets.
func (l *stateLoop) refreshSched(ctx context.Context, k stateKey, e entry) {
	a := l.a
	s := a.sched.Load()
	if s == nil {
		return
	}
	switch k.bucket {
	case subject.BucketFleetConfig:
		if k.key == subject.FreezeKey {
			s.SetFreeze(e.value, !e.deleted)
		}
	case subject.BucketSchedules:
		if e.deleted {
			s.SetSchedule(k.key, nil)
			return
		}
		sc, err := wire.DecodeSchedule(e.value)
		if err != nil {
			// As upstream: a schedule that does not decode is skipped.
			a.log.Warn("ignoring schedule that does not decode", "schedule_id", k.key, "err", err)
			return
		}
		s.SetSchedule(k.key, sc)
	case subject.BucketJobs:
		if e.deleted {
			s.SetJob(k.key, nil, "")
			return
		}
		j, err := wire.DecodeJob(e.value)
		if err != nil {
			a.log.Warn("ignoring job that does not decode", "job_id", k.key, "err", err)
			return
		}
		s.SetJob(k.key, j, a.jobScriptSHA(ctx, s, k.key, j))
	}
}

// jobScriptSHA resolves the SHA-256 of a job's script_object (and caches
// the script); when the store cannot be read, the SHA-256 known for the
// same object is kept.
func (a *Agent) jobScriptSHA(ctx context.Context, s *scheduler.Scheduler, id string, j *wire.Job) string {
	if j.Execute.Script != "" || j.Execute.ScriptObject == "" {
		return ""
	}
	sha, err := a.resolveScriptObject(ctx, j.Execute.ScriptObject)
	if err == nil {
		return sha
	}
	a.log.Warn("cannot resolve the job's script_object; its schedules skip until it can be", "job_id", id, "script_object", j.Execute.ScriptObject, "err", err)
	if old, ok := s.Job(id); ok && old.Job.Execute.ScriptObject == j.Execute.ScriptObject {
		return old.ScriptSHA256
	}
	return ""
}

// snapshotSched walks schedules and jobs and reads the freeze, and
// replaces the scheduler's catalog once everything was read. A bucket the
// server does not have keeps the previous state without an error (it is
// read again at the next reconnect, and its keys are followed meanwhile).
func (l *stateLoop) snapshotSched(ctx context.Context) error {
	a := l.a
	s := a.sched.Load()
	if s == nil {
		return nil
	}
	fe, err := l.lastValue(ctx, subject.BucketFleetConfig, subject.FreezeKey)
	switch {
	case errors.Is(err, errNoStream):
		a.log.Debug("no fleet_config bucket; freeze state kept")
	case err != nil:
		return err
	default:
		s.SetFreeze(fe.value, !fe.deleted)
	}
	rawScheds, err := l.walkRaw(ctx, subject.BucketSchedules)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		a.log.Debug("no schedules bucket; schedules kept")
		return nil
	}
	if err != nil {
		return err
	}
	rawJobs, err := l.walkRaw(ctx, subject.BucketJobs)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		a.log.Debug("no jobs bucket; jobs kept")
		return nil
	}
	if err != nil {
		return err
	}
	jobs := make(map[string]scheduler.JobEntry, len(rawJobs))
	for id, b := range rawJobs {
		j, err := wire.DecodeJob(b)
		if err != nil {
			a.log.Warn("ignoring job that does not decode", "job_id", id, "err", err)
			continue
		}
		jobs[id] = scheduler.JobEntry{Job: j, ScriptSHA256: a.jobScriptSHA(ctx, s, id, j)}
	}
	scheds := make(map[string]*wire.Schedule, len(rawScheds))
	for id, b := range rawScheds {
		sc, err := wire.DecodeSchedule(b)
		if err != nil {
			a.log.Warn("ignoring schedule that does not decode", "schedule_id", id, "err", err)
			continue
		}
		scheds[id] = sc
	}
	s.ReplaceJobs(jobs)
	s.ReplaceSchedules(scheds)
	return nil
}

// walkRaw reads every key of a bucket with a short-lived consumer, deleted
// when the walk ends, as the gate walks do.
func (l *stateLoop) walkRaw(ctx context.Context, bucket string) (map[string][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	kv := l.kv[bucket]
	if kv == nil {
		var err error
		if kv, err = l.a.js.KeyValue(ctx, bucket); err != nil {
			return nil, fmt.Errorf("agent: bucket %s: %w", bucket, err)
		}
		l.kv[bucket] = kv
	}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		delete(l.kv, bucket)
		return nil, fmt.Errorf("agent: walk %s: %w", bucket, err)
	}
	defer w.Stop()
	out := map[string][]byte{}
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("agent: walk %s: %w", bucket, ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("agent: walk %s: ended early", bucket)
			}
			if e == nil {
				return out, nil
			}
			if e.Operation() == jetstream.KeyValuePut {
				out[e.Key()] = e.Value()
			} else {
				delete(out, e.Key())
			}
		}
	}
}
