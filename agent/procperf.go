package agent

import (
	"context"
	"sync"
	"time"

	"github.com/kanade/kanade-agent/internal/procperf"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
)

// procPerfPrime is how long after process perf turns on (or its cadence
// changes) the first sample is published: the first read of the processes
// only sets the CPU baseline, so the first ProcessPerf reports CPU use over
// this interval instead of zeros (ours: upstream's first tick publishes
// before it has a baseline), then one every host_perf_interval.
const procPerfPrime = time.Second

// procPerfTimeout bounds one walk over the processes.
const procPerfTimeout = 30 * time.Second

// runProcPerf publishes wire.ProcessPerf on process_perf.<pc_id>, as
// upstream's process-perf loop does: while the effective config has
// process_perf_enabled set and process_perf_expires_at not passed
// (wire.Config.ProcessPerfActiveAt), every host_perf_interval, with the
// process_perf_top_n busiest processes by CPU (at least one). It wakes at
// the expiry and stops by itself; while off it takes no sample and sets no
// timer, only waiting for a config change. Turning it on again, or a new
// host_perf_interval, starts from a fresh baseline. Samples are skipped
// while disconnected (a core publish would be lost anyway). It returns when
// ctx ends.
// It runs only while process perf is on: procPerfRunner starts it when the
// config turns it on and it returns once it is off again, so an agent with
// process perf off (the default) holds no goroutine for it.
func (a *Agent) runProcPerf(ctx context.Context) {
	subj, _ := subject.ProcessPerf(a.opts.PcID)
	var s procperf.Sampler
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	var due time.Time // the next publish; zero while off
	var every time.Duration
	primed := false // the sampler holds a baseline
	for {
		// now before cfg: a sample is never dated after the config that
		// turned process perf off was applied.
		now := time.Now()
		cfg := a.config()
		switch {
		case !cfg.ProcessPerfActiveAt(now):
			if !due.IsZero() {
				a.log.Info("process perf off", "enabled", cfg.ProcessPerfEnabled, "expires_at", cfg.ProcessPerfExpiresAt)
				due = time.Time{}
				s.Reset()
			}
			if a.procPerf.stopIfOff() {
				return
			}
			continue
		case due.IsZero() || timerInterval(cfg.HostPerfInterval) != every:
			every = timerInterval(cfg.HostPerfInterval)
			a.log.Info("process perf on", "every", every, "top_n", cfg.ProcessPerfTopN, "expires_at", cfg.ProcessPerfExpiresAt)
			s.Reset()
			_, primed = a.sampleProcs(ctx, &s, now, 1) // the baseline
			due = now.Add(min(every, procPerfPrime))
		case !now.Before(due) && !primed: // the baseline failed: try again
			_, primed = a.sampleProcs(ctx, &s, now, 1)
			due = now.Add(min(every, procPerfPrime))
		case !now.Before(due):
			var procs []wire.ProcessSnapshot
			if procs, primed = a.sampleProcs(ctx, &s, now, cfg.ProcessPerfTopN); primed {
				a.publishCore(subj, wire.ProcessPerf{PcID: a.opts.PcID, At: now.UTC(), Processes: procs})
			}
			due = now.Add(every)
		}
		var wake <-chan time.Time
		if !due.IsZero() {
			until := due
			if exp := cfg.ProcessPerfExpiresAt; !exp.IsZero() && exp.Before(until) {
				until = exp // stop on time, not at the next sample
			}
			t.Reset(time.Until(until))
			wake = t.C
		}
		select {
		case <-ctx.Done():
			return
		case <-a.ppChanged:
		case <-wake:
		}
		t.Stop()
	}
}

// sampleProcs takes one sample of the n busiest processes; ok is false
// when the agent is disconnected (no sample is taken: the baseline is kept,
// ok false only says there is nothing to publish) or the sample fails (the
// sampler then drops its baseline).
func (a *Agent) sampleProcs(ctx context.Context, s *procperf.Sampler, now time.Time, n int) ([]wire.ProcessSnapshot, bool) {
	if !a.nc.IsConnected() {
		return nil, false
	}
	sctx, cancel := context.WithTimeout(ctx, procPerfTimeout)
	defer cancel()
	procs, err := s.Sample(sctx, now, n)
	if err != nil {
		a.log.Debug("process perf sample failed", "err", err)
		return nil, false
	}
	return procs, true
}

// procPerfRunner starts runProcPerf on demand: when the config turns
// process perf on while the agent runs, and not again while it runs.
type procPerfRunner struct {
	a       *Agent
	mu      sync.Mutex
	ctx     context.Context // the agent's run; nil before and after
	running bool
	wg      sync.WaitGroup
}

// start records the run's ctx and starts the loop if process perf is on.
func (r *procPerfRunner) start(ctx context.Context) {
	r.mu.Lock()
	r.ctx = ctx
	r.mu.Unlock()
	r.kick()
}

// kick is called at each config change: it wakes the running loop, or
// starts one if process perf is on.
func (r *procPerfRunner) kick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil || r.ctx.Err() != nil {
		return
	}
	if r.running {
		signal(r.a.ppChanged)
		return
	}
	if !r.a.config().ProcessPerfActiveAt(time.Now()) {
		return
	}
	r.running = true
	r.wg.Add(1)
	ctx := r.ctx
	go func() {
		defer r.wg.Done()
		r.a.runProcPerf(ctx)
		r.mu.Lock()
		r.running = false // ctx ended
		r.mu.Unlock()
	}()
}

// stopIfOff ends the loop when process perf is (still) off: the check and
// the end are one step under r.mu, so a kick either sees the loop running
// (and wakes it) or sees it gone (and starts a new one).
func (r *procPerfRunner) stopIfOff() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.a.config().ProcessPerfActiveAt(time.Now()) {
		return false
	}
	r.running = false
	return true
}

// wait waits for the loop to end (after the run's ctx ended).
func (r *procPerfRunner) wait() { r.wg.Wait() }
