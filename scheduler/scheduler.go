package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/kanade/kanade-agent/internal/fsutil"
	"github.com/kanade/kanade-agent/internal/hostperf"
	"github.com/kanade/kanade-agent/wire"
)

// Defaults of Options.
const (
	// DefaultPollInterval is the reconcile poll of per_pc schedules:
	// upstream's POLL_CRON "0 * * * * *", every minute at second 0.
	DefaultPollInterval = time.Minute
	// DefaultNetworkDebounce is how long the network must stay quiet after
	// a network_change before it fires (upstream: 8 s).
	DefaultNetworkDebounce = 8 * time.Second
)

// StartupBootThreshold is how far apart two boot time readings may be and
// still be the same boot (upstream's STARTUP_BOOT_THRESHOLD_SECS).
const StartupBootThreshold = 120 * time.Second

// inFlightSlack is added to a run's jitter, timeout and retries to make
// its claim's lifetime (upstream's IN_FLIGHT_SLACK_SECS).
const inFlightSlack = 60 * time.Second

// maxWait bounds one sleep of Run, so a wall-clock change is noticed.
const maxWait = time.Minute

// File names in Options.Dir.
const (
	catalogFile     = "catalog.json"
	completionsFile = "local_completions.json"
	markersFile     = "startup_markers.json"
)

// Options configures a Scheduler. Dir, PcID and Submit are required; every
// other field has a default.
type Options struct {
	// Dir holds the scheduler's durable state: the last known schedules,
	// jobs and freeze (catalog.json), the per_pc completions
	// (local_completions.json) and the startup markers
	// (startup_markers.json). Created when missing.
	Dir string
	// PcID is this agent's pc id, matched against target.pcs.
	PcID string
	// Groups returns the agent's effective groups, matched against
	// target.groups at each fire. Default: none.
	Groups func() []string
	// Submit runs a command built by a fire through the agent's pipeline.
	// It must not block on the run; the run's outcome comes back through
	// Scheduler.Completed. An error means the command was not accepted:
	// the claim is released and the next fire tries again.
	Submit func(ctx context.Context, cmd *wire.Command) error
	// Log receives the scheduler's logs. Default: slog.Default().
	Log *slog.Logger
	// Now is the clock. Default: time.Now (tests inject one).
	Now func() time.Time
	// PollInterval is the reconcile poll of per_pc schedules. Default
	// DefaultPollInterval.
	PollInterval time.Duration
	// NetworkDebounce is how long the network must be quiet before a
	// network_change trigger fires. Default DefaultNetworkDebounce.
	NetworkDebounce time.Duration
	// BootTime returns when the OS booted. Default: the OS's
	// (/proc/stat btime on Linux, GetTickCount64 on Windows). On error the
	// scheduler's start counts as the boot, as upstream: on: [startup] then
	// fires once per agent start.
	BootTime func() (time.Time, error)
	// ACPower reports whether the host runs on AC power; known is false
	// when that cannot be read. Default: the OS's (/sys/class/power_supply,
	// GetSystemPowerStatus).
	ACPower func() (online, known bool)
	// Idle reports how long the console has had no input; known is false
	// when that cannot be told. Default: nil, never known, so an idle
	// requirement is never met.
	Idle func() (idle time.Duration, known bool)
	// CPUPercent reports the whole-machine CPU use (0-100) since the last
	// call; known is false without a sample. Default: a sampler of the
	// host's CPU (internal/hostperf), primed at New.
	CPUPercent func() (pct float64, known bool)
	// NetworkUp reports whether the host has network connectivity. Default:
	// the OS's (a default route on Linux, GetNetworkConnectivityHint
	// InternetAccess on Windows).
	NetworkUp func() (up, known bool)
	// Events are the when.on kinds this host emits (calls Trigger with).
	// A schedule listing a kind outside them, and never passed to Trigger
	// since New, is reported unsupported. Default DefaultEvents.
	Events []string
	// Skip stores the skipped result (exit wire.ExitUnsupported, skipped
	// true, stderr note) of a fire that needs what this agent cannot sense
	// or source: cmd carries the job id and version and a new request_id
	// and exec_id; it is not run. An error lets the next fire report
	// again. Default: nil, only logged.
	Skip func(ctx context.Context, cmd *wire.Command, note string) error
	// Live reports whether a submitted command (by request id) is still
	// waiting or running in the agent's pipeline. A claim past its
	// lifetime whose command is live is kept (a run queued for a slot may
	// outlast jitter + timeout), as upstream's live-fire guard; otherwise
	// it is reclaimed. Default: nil, the claim lapses at its lifetime.
	Live func(requestID string) bool
}

// JobEntry is a job as the scheduler keeps it: the manifest and, for a
// script_object job, the SHA-256 of the object (resolved while the broker
// was reachable, so a fire needs no broker).
type JobEntry struct {
	// Job is the manifest.
	Job *wire.Job `json:"job"`
	// ScriptSHA256 is the lower-case hex SHA-256 of Job.Execute.ScriptObject.
	ScriptSHA256 string `json:"script_sha256,omitempty"`
}

// Scheduler runs the `runs_on: agent` schedules of one agent (see the
// package documentation). Its methods are safe for concurrent use.
type Scheduler struct {
	opts Options
	log  *slog.Logger

	ctx    context.Context // for Submit; ends with Close
	cancel context.CancelFunc

	mu          sync.Mutex
	schedules   map[string]*wire.Schedule
	jobs        map[string]JobEntry
	freeze      freezeState
	completions map[string]time.Time
	markers     map[string]int64
	inflight    map[string]claim   // by schedule id, as upstream
	pending     map[string]fireRef // by request id
	netDue      time.Time          // when a debounced network_change fires
	started     time.Time
	sourced     map[string]bool   // when.on kinds this host emits
	reported    map[string]string // schedule id -> the unsupported note reported

	wake chan struct{}
	cpu  hostperf.Host
}

// claim marks a fire of one <schedule>::<job> in flight.
type claim struct {
	requestID string
	deadline  time.Time
}

// fireRef is what a submitted command's outcome updates.
type fireRef struct {
	scheduleID string
	key        string // <schedule>::<job>, the completion key
}

// freezeState is the last known fleet_config freeze.
type freezeState struct {
	present bool
	freeze  *wire.Freeze // nil with present: the value did not decode (frozen)
	raw     []byte
}

// New loads the durable state from opts.Dir and returns a Scheduler that
// does not fire until Run. A state file that does not decode is logged and
// read as empty.
func New(opts Options) (*Scheduler, error) {
	switch {
	case opts.Dir == "":
		return nil, fmt.Errorf("%w: Options.Dir is required", ErrOptions)
	case opts.PcID == "":
		return nil, fmt.Errorf("%w: Options.PcID is required", ErrOptions)
	case opts.Submit == nil:
		return nil, fmt.Errorf("%w: Options.Submit is required", ErrOptions)
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Groups == nil {
		opts.Groups = func() []string { return nil }
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.NetworkDebounce <= 0 {
		opts.NetworkDebounce = DefaultNetworkDebounce
	}
	if opts.BootTime == nil {
		opts.BootTime = hostperf.BootTime
	}
	if opts.ACPower == nil {
		opts.ACPower = acPower
	}
	if opts.NetworkUp == nil {
		opts.NetworkUp = networkUp
	}
	if opts.Events == nil {
		opts.Events = DefaultEvents
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	s := &Scheduler{
		opts:        opts,
		log:         opts.Log,
		schedules:   map[string]*wire.Schedule{},
		jobs:        map[string]JobEntry{},
		completions: map[string]time.Time{},
		markers:     map[string]int64{},
		inflight:    map[string]claim{},
		pending:     map[string]fireRef{},
		wake:        make(chan struct{}, 1),
		started:     opts.Now(),
		sourced:     map[string]bool{},
		reported:    map[string]string{},
	}
	for _, k := range opts.Events {
		s.sourced[k] = true
	}
	if s.opts.CPUPercent == nil {
		_, _ = s.cpu.Sample(opts.Now()) // the baseline of the first reading
		s.opts.CPUPercent = s.sampleCPU
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.load()
	return s, nil
}

// Close ends the context given to Submit. Run returns when its own ctx ends.
func (s *Scheduler) Close() { s.cancel() }

func (s *Scheduler) sampleCPU() (float64, bool) {
	p, err := s.cpu.Sample(s.opts.Now())
	if err != nil || p.RatesUnknown {
		return 0, false
	}
	return p.CPUPct, true
}

// path is a file in Dir.
func (s *Scheduler) path(name string) string { return filepath.Join(s.opts.Dir, name) }

// catalog is the on-disk form of the last known schedules, jobs and freeze.
type catalog struct {
	Schedules map[string]json.RawMessage `json:"schedules"`
	Jobs      map[string]catalogJob      `json:"jobs"`
	Freeze    *catalogFreeze             `json:"freeze,omitempty"`
}

type catalogJob struct {
	Job          json.RawMessage `json:"job"`
	ScriptSHA256 string          `json:"script_sha256,omitempty"`
}

type catalogFreeze struct {
	Value []byte `json:"value"` // the KV value as read (base64)
}

func (s *Scheduler) load() {
	read := func(name string, v any) {
		b, err := os.ReadFile(s.path(name))
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if err == nil {
			err = json.Unmarshal(b, v)
		}
		if err != nil {
			s.log.Warn("scheduler: cannot read state file; starting without it", "file", name, "err", err)
		}
	}
	var c catalog
	read(catalogFile, &c)
	for id, raw := range c.Schedules {
		if sc, err := wire.DecodeSchedule(raw); err == nil {
			s.schedules[id] = sc
		}
	}
	for id, cj := range c.Jobs {
		if j, err := wire.DecodeJob(cj.Job); err == nil {
			s.jobs[id] = JobEntry{Job: j, ScriptSHA256: cj.ScriptSHA256}
		}
	}
	if c.Freeze != nil {
		s.freeze = decodeFreeze(c.Freeze.Value)
	}
	var comp map[string]time.Time
	read(completionsFile, &comp)
	maps.Copy(s.completions, comp)
	var marks map[string]int64
	read(markersFile, &marks)
	maps.Copy(s.markers, marks)
	for _, n := range []string{catalogFile, completionsFile, markersFile} {
		fsutil.SweepTemp(s.path(n))
	}
}

func decodeFreeze(b []byte) freezeState {
	f, err := wire.DecodeFreeze(b)
	if err != nil {
		return freezeState{present: true, raw: b}
	}
	return freezeState{present: true, freeze: f, raw: b}
}

// save writes a state file; the caller holds s.mu. A failure is logged:
// the in-memory state stays right, as upstream.
func (s *Scheduler) save(name string, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err == nil {
		err = fsutil.WriteFileAtomic(s.path(name), b, 0o600)
	}
	if err != nil {
		s.log.Warn("scheduler: cannot write state file", "file", name, "err", err)
	}
}

func (s *Scheduler) saveCatalog() {
	c := catalog{Schedules: map[string]json.RawMessage{}, Jobs: map[string]catalogJob{}}
	for id, sc := range s.schedules {
		if b, err := wire.Marshal(sc); err == nil {
			c.Schedules[id] = b
		}
	}
	for id, je := range s.jobs {
		if b, err := wire.Marshal(je.Job); err == nil {
			c.Jobs[id] = catalogJob{Job: b, ScriptSHA256: je.ScriptSHA256}
		}
	}
	if s.freeze.present {
		c.Freeze = &catalogFreeze{Value: s.freeze.raw}
	}
	s.save(catalogFile, c)
}

// signal wakes Run to recompute its next wake-up.
func (s *Scheduler) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// SetSchedule records the schedule stored under id; nil deletes it. A
// deleted schedule's in-flight claim is dropped, as upstream.
func (s *Scheduler) SetSchedule(id string, sc *wire.Schedule) {
	s.mu.Lock()
	if sc == nil {
		delete(s.schedules, id)
		delete(s.reported, id)
		s.dropClaimsLocked(id)
	} else {
		s.schedules[id] = sc
	}
	s.saveCatalog()
	s.mu.Unlock()
	s.signal()
	if sc != nil && sc.When.IsEvent() {
		s.fireStartup() // a new startup schedule fires in this boot, as upstream after a resync
	}
}

// ReplaceSchedules replaces every schedule with a complete snapshot (a
// full walk of bucket schedules); schedules missing from it are dropped.
// It then fires the startup schedules not yet fired in this boot.
func (s *Scheduler) ReplaceSchedules(all map[string]*wire.Schedule) {
	s.mu.Lock()
	for id := range s.schedules {
		if _, ok := all[id]; !ok {
			delete(s.reported, id)
			s.dropClaimsLocked(id)
		}
	}
	s.schedules = maps.Clone(all)
	if s.schedules == nil {
		s.schedules = map[string]*wire.Schedule{}
	}
	s.saveCatalog()
	s.mu.Unlock()
	s.signal()
	s.fireStartup()
}

func (s *Scheduler) dropClaimsLocked(scheduleID string) {
	delete(s.inflight, scheduleID)
}

// SetJob records the job stored under id with the SHA-256 of its
// script_object (empty for an inline script); nil deletes it.
func (s *Scheduler) SetJob(id string, j *wire.Job, scriptSHA256 string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j == nil {
		delete(s.jobs, id)
	} else {
		s.jobs[id] = JobEntry{Job: j, ScriptSHA256: scriptSHA256}
	}
	s.saveCatalog()
}

// ReplaceJobs replaces every job with a complete snapshot.
func (s *Scheduler) ReplaceJobs(all map[string]JobEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs = maps.Clone(all)
	if s.jobs == nil {
		s.jobs = map[string]JobEntry{}
	}
	s.saveCatalog()
}

// Job returns the job stored under id, as last set.
func (s *Scheduler) Job(id string) (JobEntry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	je, ok := s.jobs[id]
	return je, ok
}

// Schedules returns the ids of the schedules known, sorted.
func (s *Scheduler) Schedules() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.schedules))
}

// SetFreeze records the fleet_config freeze value: present false means the
// key is absent (not frozen); a value that does not decode freezes every
// fire, as upstream (fail safe).
func (s *Scheduler) SetFreeze(value []byte, present bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !present {
		s.freeze = freezeState{}
	} else {
		s.freeze = decodeFreeze(slices.Clone(value))
		if s.freeze.freeze == nil {
			s.log.Warn("scheduler: fleet freeze value does not decode; frozen until it does (fail safe)")
		}
	}
	s.saveCatalog()
}

// Frozen reports whether the fleet freeze stops fires at now.
func (s *Scheduler) Frozen(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.frozenLocked(now)
}

func (s *Scheduler) frozenLocked(now time.Time) bool {
	if !s.freeze.present {
		return false
	}
	if s.freeze.freeze == nil {
		return true
	}
	return freezeActive(s.freeze.freeze, now)
}

// Completed reports the outcome of a command a fire submitted, by its
// request id: the claim of its <schedule>::<job> is released, and an exit
// code 0 is recorded as that key's last completion (durably), which a
// per_pc schedule dedups against. Unknown request ids are ignored.
func (s *Scheduler) Completed(requestID string, exitCode int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, ok := s.pending[requestID]
	if !ok {
		return
	}
	delete(s.pending, requestID)
	if s.inflight[ref.scheduleID].requestID == requestID {
		delete(s.inflight, ref.scheduleID)
	}
	if exitCode == 0 {
		s.completions[ref.key] = s.opts.Now().UTC()
		s.save(completionsFile, s.completions)
	}
}

// Owns reports whether requestID is a command a fire submitted whose
// outcome is still expected.
func (s *Scheduler) Owns(requestID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.pending[requestID]
	return ok
}

// LastCompletion returns when <schedule>::<job> last exited 0.
func (s *Scheduler) LastCompletion(scheduleID, jobID string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.completions[Key(scheduleID, jobID)]
	return t, ok
}

// Key is the completion and claim key of a schedule's job:
// "<schedule>::<job>", as upstream's local_completions.json.
func Key(scheduleID, jobID string) string { return scheduleID + "::" + jobID }

// Trigger fires the event schedules that list kind: startup (once per OS
// boot, see the package documentation), logon, lock, unlock, or
// network_change (debounced: it fires once the network was quiet for
// Options.NetworkDebounce). It does not block on the runs. An unknown kind
// is logged and ignored. A call marks kind as emitted on this host (see
// Options.Events).
func (s *Scheduler) Trigger(kind string) {
	if slices.Contains(wire.Triggers, kind) {
		s.mu.Lock()
		s.sourced[kind] = true
		s.mu.Unlock()
	}
	switch kind {
	case wire.TriggerStartup:
		s.fireStartup()
	case wire.TriggerNetworkChange:
		s.mu.Lock()
		s.netDue = s.opts.Now().Add(s.opts.NetworkDebounce)
		s.mu.Unlock()
		s.signal()
	case wire.TriggerLogon, wire.TriggerLock, wire.TriggerUnlock:
		s.fireEvent(kind, s.opts.Now())
	default:
		s.log.Warn("scheduler: unknown trigger ignored", "trigger", kind)
	}
}

// matching returns the schedules this agent runs, sorted by id.
func (s *Scheduler) matching() []*wire.Schedule {
	groups := s.opts.Groups()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*wire.Schedule
	for _, id := range slices.Sorted(maps.Keys(s.schedules)) {
		sc := s.schedules[id]
		if sc.RunsOn == wire.RunsOnAgent && sc.Enabled && sc.Target.Matches(s.opts.PcID, groups) {
			out = append(out, sc)
		}
	}
	return out
}

func (s *Scheduler) fireEvent(kind string, now time.Time) {
	for _, sc := range s.matching() {
		if slices.Contains(sc.When.On, kind) {
			s.log.Info("scheduler: firing event trigger", "schedule_id", sc.ID, "trigger", kind)
			s.fire(sc, now, kind)
		}
	}
}

// fireStartup fires the startup schedules not fired in this OS boot.
func (s *Scheduler) fireStartup() {
	now := s.opts.Now()
	boot, err := s.opts.BootTime()
	if err != nil || boot.IsZero() || boot.After(now) {
		if err == nil {
			err = errors.New("implausible boot time")
		}
		s.log.Warn("scheduler: boot time unavailable; using the scheduler's start (on: startup may fire again after an agent restart)", "err", err)
		boot = s.started
	}
	uptime := now.Sub(boot)
	for _, sc := range s.matching() {
		if !slices.Contains(sc.When.On, wire.TriggerStartup) {
			continue
		}
		var deadline time.Duration = -1
		if sc.StartingDeadline != "" {
			if d, err := wire.ParseDuration(sc.StartingDeadline); err == nil {
				deadline = d
			}
		}
		s.mu.Lock()
		rec, has := s.markers[sc.ID]
		fire := ShouldFireStartup(rec, has, boot, uptime, deadline)
		if fire {
			// Recorded before the gates, as upstream: a startup blocked by a
			// freeze or window is consumed for this boot, not deferred.
			s.markers[sc.ID] = boot.Unix()
			s.save(markersFile, s.markers)
		}
		s.mu.Unlock()
		if fire {
			s.log.Info("scheduler: firing on: startup (once per OS boot)", "schedule_id", sc.ID, "boot_time", boot.Unix(), "uptime", uptime.Round(time.Second))
			s.fire(sc, now, wire.TriggerStartup)
		}
	}
}

// ShouldFireStartup is upstream's once-per-boot decision: fire when no
// marker was recorded (has false) or the recorded boot time (Unix seconds)
// differs from boot by more than StartupBootThreshold, and, when deadline
// is not negative (a starting_deadline is set), the uptime is within it.
func ShouldFireStartup(recorded int64, has bool, boot time.Time, uptime, deadline time.Duration) bool {
	if has {
		diff := boot.Unix() - recorded
		if diff < 0 {
			diff = -diff
		}
		if time.Duration(diff)*time.Second <= StartupBootThreshold {
			return false
		}
	}
	return deadline < 0 || uptime <= deadline
}

// Run fires the calendar and per_pc schedules and the debounced
// network_change until ctx ends; it returns nil then. Event triggers fire
// through Trigger whether Run runs or not. A fire missed while Run was not
// running (the agent stopped) is not made up for, as upstream; per_pc
// schedules catch up at their next poll anyway.
func (s *Scheduler) Run(ctx context.Context) error {
	last := s.opts.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := min(max(s.nextWake(last).Sub(s.opts.Now()), 0), maxWait)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-s.wake:
		}
		now := s.opts.Now()
		if now.Before(last) { // the clock went back: start over from now
			last = now
			continue
		}
		s.tick(last, now)
		last = now
	}
}

// nextWake is the earliest instant after from at which tick has work.
func (s *Scheduler) nextWake(from time.Time) time.Time {
	next := from.Add(maxWait)
	s.mu.Lock()
	if !s.netDue.IsZero() && s.netDue.Before(next) {
		next = s.netDue
	}
	s.mu.Unlock()
	for _, sc := range s.matching() {
		var t time.Time
		switch w := sc.When; {
		case w.PerPc != nil || w.PerTarget != nil:
			t = s.nextPoll(from)
		case w.Calendar != nil:
			var ok bool
			if t, ok = NextCalendarFire(w.Calendar, sc.Tz, from); !ok {
				continue
			}
		default:
			continue
		}
		if t.Before(next) {
			next = t
		}
	}
	return next
}

// nextPoll is the first poll instant after t (multiples of the interval).
func (s *Scheduler) nextPoll(t time.Time) time.Time {
	return t.Truncate(s.opts.PollInterval).Add(s.opts.PollInterval)
}

// tick fires what fell due in (from, to].
func (s *Scheduler) tick(from, to time.Time) {
	s.mu.Lock()
	netFire := !s.netDue.IsZero() && !s.netDue.After(to)
	if netFire {
		s.netDue = time.Time{}
	}
	s.mu.Unlock()
	if netFire {
		s.fireEvent(wire.TriggerNetworkChange, to)
	}
	polled := !s.nextPoll(from).After(to)
	for _, sc := range s.matching() {
		switch w := sc.When; {
		case w.PerTarget != nil:
			if polled {
				s.log.Debug("scheduler: when.per_target is backend-only; skipping", "schedule_id", sc.ID)
			}
		case w.PerPc != nil:
			if polled {
				s.fire(sc, to, "poll")
			}
		case w.Calendar != nil:
			if t, ok := NextCalendarFire(w.Calendar, sc.Tz, from); ok && !t.After(to) {
				s.fire(sc, to, "calendar")
			}
		case len(w.On) > 0:
			s.checkEvents(sc, to)
		}
	}
}

// Unsourced returns the kinds of on that this host never emits: not in
// Options.Events and never passed to Trigger.
func (s *Scheduler) Unsourced(on []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, k := range on {
		if !s.sourced[k] && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// checkEvents reports an event schedule that lists a kind this host never
// emits (at each tick of Run, which a schedule change wakes; past the
// freeze and active gates). Its other kinds still fire.
func (s *Scheduler) checkEvents(sc *wire.Schedule, now time.Time) {
	k := s.Unsourced(sc.When.On)
	if len(k) == 0 || s.Frozen(now) || !ActiveContains(sc.Active, now, wire.TzLocation(sc.Tz)) {
		return
	}
	s.reportUnsupported(sc, "when.on "+strings.Join(k, ", ")+" is never emitted on this agent")
}

// UnsupportedNote is the stderr of the skipped result (exit 122) of a
// schedule needing what this agent cannot sense or source; what names it.
func UnsupportedNote(what string) string {
	return "kanade-agent: skipped: " + what + " (" + runtime.GOOS + "); the job did not run and runs once this is supported"
}

// reportUnsupported hands the skipped result of sc to Options.Skip, once
// per schedule and note per Scheduler (agent start): a fire that stays
// unsupported is skipped silently after the first report. No completion
// is recorded, so the schedule runs once supported.
func (s *Scheduler) reportUnsupported(sc *wire.Schedule, what string) {
	note := UnsupportedNote(what)
	log := s.log.With("schedule_id", sc.ID, "job_id", sc.JobID)
	s.mu.Lock()
	if s.reported[sc.ID] == note {
		s.mu.Unlock()
		log.Debug("scheduler: unsupported; skip (already reported)", "why", what)
		return
	}
	s.reported[sc.ID] = note
	cmd := &wire.Command{ID: sc.JobID, RequestID: uuid.NewString(), ExecID: uuid.NewString()}
	if je, ok := s.jobs[sc.JobID]; ok && je.Job != nil {
		cmd.Version = je.Job.Version
	}
	s.mu.Unlock()
	log.Warn("scheduler: the schedule needs what this agent cannot sense or source; skipped (exit 122)", "why", what, "request_id", cmd.RequestID)
	if s.opts.Skip == nil {
		return
	}
	if err := s.opts.Skip(s.ctx, cmd, note); err != nil {
		log.Warn("scheduler: skipped result not stored; reported again at the next fire", "err", err)
		s.mu.Lock()
		if s.reported[sc.ID] == note {
			delete(s.reported, sc.ID)
		}
		s.mu.Unlock()
	}
}

// fire applies the gates to one fire of sc at now and submits its command
// (upstream's local_tick): fleet freeze, active window,
// constraints.skip_dates and window, constraints.require, the job in the
// cache, the in-flight claim, the per_pc completion, then the command.
func (s *Scheduler) fire(sc *wire.Schedule, now time.Time, why string) {
	log := s.log.With("schedule_id", sc.ID, "job_id", sc.JobID, "fire", why)
	if s.Frozen(now) {
		log.Debug("scheduler: fleet change-freeze active; skip")
		return
	}
	loc := wire.TzLocation(sc.Tz)
	if !ActiveContains(sc.Active, now, loc) {
		log.Debug("scheduler: outside the active window; skip")
		return
	}
	if !ConstraintsAllow(sc.Constraints, now, loc) {
		log.Debug("scheduler: outside constraints.window or on a skip date; skip")
		return
	}
	if sc.Constraints != nil {
		met, unsup := s.evalRequire(sc.Constraints.Require)
		if len(unsup) > 0 {
			s.reportUnsupported(sc, "constraints.require "+strings.Join(unsup, ", ")+" cannot be sensed on this agent")
			return
		}
		if !met {
			log.Debug("scheduler: constraints.require not met; skip")
			return
		}
	}
	s.mu.Lock()
	je, ok := s.jobs[sc.JobID]
	if !ok {
		s.mu.Unlock()
		log.Warn("scheduler: job not in cache; skip")
		return
	}
	key := Key(sc.ID, sc.JobID)
	if c, ok := s.inflight[sc.ID]; ok {
		if now.Before(c.deadline) {
			s.mu.Unlock()
			log.Debug("scheduler: previous run still in flight; skip")
			return
		}
		if s.opts.Live != nil && s.opts.Live(c.requestID) {
			s.mu.Unlock()
			log.Debug("scheduler: previous run still queued or running past its claim lifetime; skip", "request_id", c.requestID)
			return
		}
	}
	if p := sc.When.PerPc; p != nil {
		// As upstream, an every that does not parse skips every fire, the
		// first one too (not "once").
		var every time.Duration
		if !p.Once() {
			var err error
			if every, err = wire.ParseDuration(p.Every); err != nil {
				s.mu.Unlock()
				log.Warn("scheduler: invalid when.every; skip", "every", p.Every, "err", err)
				return
			}
		}
		if last, done := s.completions[key]; done {
			if p.Once() {
				s.mu.Unlock()
				log.Debug("scheduler: per_pc once already succeeded; skip")
				return
			}
			if now.Sub(last) < every {
				s.mu.Unlock()
				return
			}
		}
	}
	cmd, err := BuildCommand(sc, je, now)
	if err != nil {
		s.mu.Unlock()
		log.Warn("scheduler: cannot build the command; skip", "err", err)
		return
	}
	if c, ok := s.inflight[sc.ID]; ok {
		log.Warn("scheduler: previous run overran its claim; reclaiming", "request_id", c.requestID)
		delete(s.pending, c.requestID)
	}
	s.inflight[sc.ID] = claim{requestID: cmd.RequestID, deadline: now.Add(claimTTL(cmd))}
	s.pending[cmd.RequestID] = fireRef{scheduleID: sc.ID, key: key}
	s.mu.Unlock()

	log.Info("scheduler: firing (runs_on: agent)", "request_id", cmd.RequestID, "exec_id", cmd.ExecID)
	if err := s.opts.Submit(s.ctx, cmd); err != nil {
		log.Warn("scheduler: command not accepted; the next fire tries again", "request_id", cmd.RequestID, "err", err)
		s.mu.Lock()
		delete(s.pending, cmd.RequestID)
		if c, ok := s.inflight[sc.ID]; ok && c.requestID == cmd.RequestID {
			delete(s.inflight, sc.ID)
		}
		s.mu.Unlock()
	}
}

// claimTTL is the longest a legitimate run can take: jitter, timeout,
// retries and their backoff, plus a slack.
func claimTTL(cmd *wire.Command) time.Duration {
	t := cmd.EffectiveTimeout()
	d := time.Duration(cmd.JitterSecs)*time.Second + t + inFlightSlack
	if r := cmd.Retry; r != nil {
		d += time.Duration(r.Max) * (t + time.Duration(r.BackoffSecs)*time.Second)
	}
	return d
}

// BuildCommand builds the command of the fire of sc at firedAt, as
// upstream's local scheduler: new request_id and exec_id (UUIDv4), the
// job's id, version, shell, script (inline, else script_object with the
// SHA-256 resolved earlier), timeout (60 s when it does not parse), run_as,
// cwd, staleness, emit, check, collect and lowered finalize; the schedule's
// jitter and on_failure.retry; deadline_at firedAt + starting_deadline when
// the schedule has one (so jitter and a wait for a slot cannot start it
// later: exit 125), none otherwise. A starting_deadline that does not parse
// is an error (the fire is skipped, fail closed).
func BuildCommand(sc *wire.Schedule, je JobEntry, firedAt time.Time) (*wire.Command, error) {
	j := je.Job
	if j == nil {
		return nil, fmt.Errorf("%w: no job", ErrJob)
	}
	cmd := &wire.Command{
		ID: j.ID, Version: j.Version, RequestID: uuid.NewString(), ExecID: uuid.NewString(),
		Shell: j.Execute.Shell, TimeoutSecs: j.TimeoutSecs(), RunAs: j.Execute.RunAs, Cwd: j.Execute.Cwd,
		BypassLocalLimit: j.Execute.BypassLocalLimit,
		Staleness:        j.Staleness,
	}
	if len(j.Check) > 0 && string(j.Check) != "null" {
		if err := json.Unmarshal(j.Check, &cmd.Check); err != nil {
			return nil, fmt.Errorf("%w: check: %v", ErrJob, err)
		}
	}
	if len(j.Collect) > 0 && string(j.Collect) != "null" {
		if err := json.Unmarshal(j.Collect, &cmd.Collect); err != nil {
			return nil, fmt.Errorf("%w: collect: %v", ErrJob, err)
		}
	}
	switch {
	case j.Execute.Script != "":
		cmd.Script = j.Execute.Script
	case j.Execute.ScriptObject != "" && je.ScriptSHA256 != "":
		cmd.ScriptObject, cmd.ScriptObjectSHA256 = j.Execute.ScriptObject, je.ScriptSHA256
	case j.Execute.ScriptObject != "":
		return nil, fmt.Errorf("%w: the SHA-256 of script_object %s is not known yet (resolved once the broker is reachable)", ErrJob, j.Execute.ScriptObject)
	default:
		return nil, fmt.Errorf("%w: job %s has no script source", ErrJob, j.ID)
	}
	if sc.StartingDeadline != "" {
		d, err := wire.ParseDuration(sc.StartingDeadline)
		if err != nil {
			return nil, fmt.Errorf("%w: starting_deadline: %v", ErrJob, err)
		}
		at := firedAt.Add(d).UTC()
		cmd.DeadlineAt = &at
	}
	if sc.Jitter != "" {
		if d, err := wire.ParseDuration(sc.Jitter); err == nil {
			cmd.JitterSecs = int64(d / time.Second)
		}
	}
	if j.Emit != nil {
		cmd.Emit = &wire.Emit{Type: j.Emit.Type, WatermarkPath: j.Emit.WatermarkPath}
	}
	if f := sc.OnFailure; f != nil && f.Retry != nil {
		if d, err := wire.ParseDuration(f.Retry.Backoff); err == nil {
			cmd.Retry = &wire.Retry{Max: int(f.Retry.Max), BackoffSecs: int64(d / time.Second)}
		}
	}
	fin, err := j.LoweredFinalize()
	if err != nil {
		return nil, fmt.Errorf("%w: finalize: %v", ErrJob, err)
	}
	cmd.Finalize = fin
	if err := cmd.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJob, err)
	}
	return cmd, nil
}
