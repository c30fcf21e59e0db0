package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// Decision is what Consider did with a target version.
type Decision string

// The decisions of Consider.
const (
	// DecisionNoTarget means the config names no target version.
	DecisionNoTarget Decision = "no_target"
	// DecisionCurrent means the target is the running version.
	DecisionCurrent Decision = "current"
	// DecisionQuarantined means the target failed its trial boots before and is quarantined.
	DecisionQuarantined Decision = "quarantined"
	// DecisionAttempted means the target is the version of the last attempt (already swapped in once).
	DecisionAttempted Decision = "attempted"
	// DecisionUpdated means the new binary is in place; the error is ErrRestart.
	DecisionUpdated Decision = "updated"
	// DecisionFailed means the update was tried and failed, or was
	// cancelled; the executable is unchanged. The error says why.
	DecisionFailed Decision = "failed"
)

// UpdatePayload is the payload of the agent_update ObsEvent.
type UpdatePayload struct {
	// From is the version that ran before.
	From string `json:"from"`
	// To is the version now in place.
	To string `json:"to"`
	// RolledBack is set when To is a fallback binary restored by the boot
	// sentinel after From failed to boot (From is then quarantined).
	RolledBack bool `json:"rolled_back,omitempty"`
}

// newEvent returns the agent_update ObsEvent for a change from → to at at.
// Its EventRecordID is at in Unix nanoseconds: fixed when the event is
// stored, so a copy enqueued again after a crash is deduplicated by the
// backend on (pc_id, source, event_record_id).
func newEvent(from, to string, rolledBack bool, at time.Time) wire.ObsEvent {
	payload, _ := wire.Marshal(UpdatePayload{From: from, To: to, RolledBack: rolledBack})
	id := strconv.FormatUint(uint64(at.UnixNano()), 10)
	return wire.ObsEvent{
		At:            at.UTC(),
		Kind:          wire.KindAgentUpdate,
		Source:        wire.SourceSelfUpdate,
		EventRecordID: id,
		Payload:       payload,
	}
}

// Updater performs self-updates (docs/protocol.md, "Self-update") and keeps
// their state: the attempt record, the quarantine list, the boot sentinel
// and pending agent_update events. Its methods are safe for concurrent use;
// Consider calls run one at a time.
type Updater struct {
	opts  Options
	log   *slog.Logger
	ops   fileOps
	sleep func(ctx context.Context, d time.Duration) error

	considerMu sync.Mutex // one Consider at a time

	mu      sync.Mutex
	st      *state
	swapped bool // a new binary was swapped in by this process

	offerMu sync.Mutex
	offer   *wire.Config
	offerCh chan struct{}
}

// New returns an Updater for opts. It reads the state file in
// opts.StateDir (creating the directory). A corrupt state file is moved
// aside and logged, and New goes on with an empty state; other I/O errors
// are returned.
func New(opts Options) (*Updater, error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	st, err := loadState(opts.StateDir)
	var ce *CorruptStateError
	if errors.As(err, &ce) {
		opts.Logger.Error("self-update state file was corrupt and was reset", "err", err)
	} else if err != nil {
		return nil, err
	}
	return &Updater{
		opts:    opts,
		log:     opts.Logger.With("component", "update"),
		ops:     realOps,
		sleep:   sleepCtx,
		st:      st,
		offerCh: make(chan struct{}, 1),
	}, nil
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Quarantined returns the versions that failed to boot and will not be
// tried again, oldest first, for the heartbeat's quarantined_versions.
func (u *Updater) Quarantined() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.st.Quarantined)
}

// PendingEvents returns the agent_update ObsEvents not yet handed to the
// obs outbox: one after a successful update, one after a rollback (payload
// UpdatePayload). PcID is left empty for the agent to fill. The agent
// enqueues each and then calls EventRecorded with it.
func (u *Updater) PendingEvents() []wire.ObsEvent {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.st.Events)
}

// EventRecorded removes e (matched by EventRecordID) from the pending
// events, durably. Call it once e is durably in the obs outbox; if the
// process dies in between, the event is enqueued again at the next start
// with the same EventRecordID.
func (u *Updater) EventRecorded(e wire.ObsEvent) error {
	id, err := strconv.ParseUint(e.EventRecordID, 10, 64)
	if err != nil {
		return nil // not one of ours
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	next := u.st.clone()
	next.dropEvent(id)
	if len(next.Events) == len(u.st.Events) {
		return nil
	}
	if err := saveState(u.opts.StateDir, next); err != nil {
		return err
	}
	u.st = next
	return nil
}

// Healthy is called by the agent once it has run healthily for a while (30
// s after a successful start): it disarms the boot sentinel and copies the
// running binary to <exe>.last-good, atomically, recording CurrentVersion as
// the last good version. The copy is skipped when <exe>.last-good already
// holds this version. The sentinel is disarmed first, so a crash in between
// leaves an older but good <exe>.last-good, never a sentinel that would roll
// back a healthy binary. After this process swapped in a new binary,
// Healthy does nothing (the binary at Exe is no longer the one running).
func (u *Updater) Healthy() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.swapped {
		return nil
	}
	exe, lg := u.opts.Exe, u.opts.Exe+SuffixLastGood
	if u.st.Sentinel != nil {
		next := u.st.clone()
		next.Sentinel = nil
		if err := saveState(u.opts.StateDir, next); err != nil {
			return err
		}
		u.st = next
		u.log.Info("self-update: healthy, boot sentinel disarmed", "version", u.opts.CurrentVersion)
	}
	if l := u.st.LastGood; l != nil && l.Version == u.opts.CurrentVersion {
		if d, err := fileDigest(lg); err == nil && d == l.Digest {
			return nil
		}
	}
	digest, err := copyAtomic(exe, lg, exe)
	if err != nil {
		return fmt.Errorf("update: write %s: %w", lg, err)
	}
	next := u.st.clone()
	next.LastGood = &lastGood{Version: u.opts.CurrentVersion, Digest: digest, At: u.opts.Now().UTC()}
	if err := saveState(u.opts.StateDir, next); err != nil {
		return err
	}
	u.st = next
	u.log.Info("self-update: last good binary saved", "version", u.opts.CurrentVersion, "path", lg)
	return nil
}

// skip returns the decision for target v when it is not to be updated to.
func (u *Updater) skip(v string) (Decision, bool) {
	switch v {
	case "":
		return DecisionNoTarget, true
	case u.opts.CurrentVersion:
		return DecisionCurrent, true
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if slices.Contains(u.st.Quarantined, v) {
		return DecisionQuarantined, true
	}
	if u.st.Attempt != nil && u.st.Attempt.Version == v {
		return DecisionAttempted, true
	}
	return "", false
}

// Consider runs the self-update procedure once for cfg: it skips when
// cfg.TargetVersion is empty, the running version, quarantined or the last
// version attempted; otherwise it waits a random 0..cfg.TargetVersionJitter,
// downloads and verifies the release, swaps it in, records the attempt,
// arms the boot sentinel and returns (DecisionUpdated, ErrRestart): the
// agent must then stop and the process exit with code 64.
//
// A skip returns a nil error. A failure returns DecisionFailed and an error;
// the executable is then unchanged and no attempt is recorded, so a later
// Consider tries again. ctx cancels the wait and the download; once the
// swap has started it runs to its end. Concurrent calls run one at a time.
func (u *Updater) Consider(ctx context.Context, cfg wire.Config) (Decision, error) {
	u.considerMu.Lock()
	defer u.considerMu.Unlock()
	v := cfg.TargetVersion
	if d, ok := u.skip(v); ok {
		lvl := slog.LevelDebug
		if d == DecisionQuarantined || d == DecisionAttempted {
			lvl = slog.LevelInfo
		}
		u.log.Log(ctx, lvl, "self-update: skipped", "target", v, "reason", string(d))
		return d, nil
	}
	if err := ValidVersion(v); err != nil {
		return DecisionFailed, err
	}
	u.mu.Lock()
	swapped := u.swapped
	u.mu.Unlock()
	if swapped {
		return DecisionUpdated, ErrRestart // a restart is already due
	}
	if u.signatureRequired() && u.opts.Keyring.Len() == 0 {
		err := fmt.Errorf("%w: release %s refused (configure the release keyring with the publisher's key)", ErrNoReleaseKeys, v)
		u.refuse(v, err)
		return DecisionFailed, err
	}
	if j := cfg.TargetVersionJitter; j > 0 {
		n := int64(j)
		if n < math.MaxInt64 {
			n++ // 0..jitter inclusive
		}
		d := time.Duration(u.opts.Rand(n))
		u.log.Info("self-update: waiting before the update", "target", v, "delay", d.String())
		if err := u.sleep(ctx, d); err != nil {
			return DecisionFailed, err
		}
	}
	u.log.Info("self-update: downloading", "from", u.opts.CurrentVersion, "target", v)
	staged, digest, err := u.download(ctx, v)
	if err != nil {
		if refused(err) {
			u.refuse(v, err)
		} else {
			u.log.Warn("self-update: download failed", "target", v, "err", err)
		}
		return DecisionFailed, err
	}
	if err := u.swap(v, staged, digest); err != nil {
		u.log.Error("self-update: swap failed", "target", v, "err", err)
		return DecisionFailed, err
	}
	u.log.Info("self-update: new binary in place, restarting", "from", u.opts.CurrentVersion, "to", v)
	return DecisionUpdated, ErrRestart
}

// signatureRequired reports whether releases must be signed: the agent
// enforces signatures, or a release keyring (even an empty one) is set.
func (u *Updater) signatureRequired() bool {
	return u.opts.RequireSignature || u.opts.Keyring != nil
}

// refusalErrs are the errors of a release refused for what it is (its
// signature, flags or version), as opposed to a failure to get it.
var refusalErrs = []error{ErrNoReleaseKeys, ErrUnsigned, ErrUnknownKid, ErrBadSignature, ErrReleaseFlags, ErrDowngrade}

// refused reports whether err refuses a release for what it is.
func refused(err error) bool {
	for _, e := range refusalErrs {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// refuse logs the refusal of release v and records it in the state file
// (Refusal). The executable is untouched and nothing counts as attempted:
// once the release or the keyring is fixed, a later Consider installs it.
func (u *Updater) refuse(v string, err error) {
	u.log.Error("self-update: release refused", "target", v, "running", u.opts.CurrentVersion, "err", err)
	u.mu.Lock()
	defer u.mu.Unlock()
	next := u.st.clone()
	next.Refused = &refusal{Version: v, Reason: err.Error(), At: u.opts.Now().UTC()}
	if serr := saveState(u.opts.StateDir, next); serr != nil {
		u.log.Warn("self-update: cannot record the refusal", "err", serr)
		return
	}
	u.st = next
}

// Refusal describes the last release refused for its signature, flags or
// version (see Updater.LastRefusal).
type Refusal struct {
	// Version is the refused target version.
	Version string
	// Reason is the refusal error's text.
	Reason string
	// At is when it was refused.
	At time.Time
}

// LastRefusal returns the last release refused for its signature, flags
// or version, as recorded in the state file, and whether there is one. A
// successful update clears it.
func (u *Updater) LastRefusal() (Refusal, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	r := u.st.Refused
	if r == nil {
		return Refusal{}, false
	}
	return Refusal{Version: r.Version, Reason: r.Reason, At: r.At}, true
}

// checkDowngrade refuses target v when it is lower than the running
// version, or cannot be ordered against it, unless flags or the options
// allow it.
func (u *Updater) checkDowngrade(v string, flags Flags) error {
	if flags.AllowDowngrade || u.opts.AllowDowngrade {
		return nil
	}
	c, err := CompareVersions(v, u.opts.CurrentVersion)
	if err != nil {
		return fmt.Errorf("%w: cannot order %s against the running %s (%w); publish it with the allow-downgrade flag or set the agent's allow-downgrade option",
			ErrDowngrade, v, u.opts.CurrentVersion, err)
	}
	if c < 0 {
		return fmt.Errorf("%w: %s is lower than the running %s; publish it with the allow-downgrade flag or set the agent's allow-downgrade option",
			ErrDowngrade, v, u.opts.CurrentVersion)
	}
	return nil
}

// permanent reports whether a download error will not go away by trying again.
func permanent(err error) bool {
	if refused(err) {
		return true
	}
	for _, e := range []error{ErrNoDigest, ErrBadDigest, ErrReleaseSize, ErrInvalidVersion} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// download fetches release v to a verified staging file beside the
// executable, trying up to Options.Attempts times, and returns its path and
// digest.
func (u *Updater) download(ctx context.Context, v string) (string, [sha256.Size]byte, error) {
	backoff := u.opts.AttemptBackoff
	var last error
	for i := 1; i <= u.opts.Attempts; i++ {
		if i > 1 {
			if err := u.sleep(ctx, backoff); err != nil {
				return "", [sha256.Size]byte{}, err
			}
			backoff *= 2
		}
		staged, digest, err := u.fetch(ctx, v)
		if err == nil {
			return staged, digest, nil
		}
		if ctx.Err() != nil {
			return "", digest, ctx.Err()
		}
		if permanent(err) {
			return "", digest, err
		}
		last = err
		u.log.Warn("self-update: download attempt failed", "target", v, "attempt", i, "of", u.opts.Attempts, "err", err)
	}
	return "", [sha256.Size]byte{}, fmt.Errorf("%w: %s after %d attempts: %w", ErrDownload, v, u.opts.Attempts, last)
}

// fetch makes one download attempt: it checks the object info (digest,
// size, signature) before reading any data, streams the object into a new
// staging file while hashing it, and checks size and digest; the file is
// fsynced and closed. On error the staging file is removed.
func (u *Updater) fetch(ctx context.Context, v string) (path string, digest [sha256.Size]byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, u.opts.DownloadTimeout)
	defer cancel()
	obs, err := u.opts.JetStream.ObjectStore(ctx, subject.ObjectReleases)
	if err != nil {
		return "", digest, fmt.Errorf("update: object store %s: %w", subject.ObjectReleases, err)
	}
	res, err := obs.Get(ctx, v)
	if err != nil {
		return "", digest, fmt.Errorf("update: get release %s: %w", v, err)
	}
	defer res.Close()
	info, err := res.Info()
	if err != nil {
		return "", digest, fmt.Errorf("update: release %s info: %w", v, err)
	}
	if digest, err = ParseDigest(info.Digest); err != nil {
		return "", digest, fmt.Errorf("%w (release %s)", err, v)
	}
	if info.Size == 0 || info.Size > uint64(u.opts.MaxSize) {
		return "", digest, fmt.Errorf("%w: %s is %d bytes (limit %d)", ErrReleaseSize, v, info.Size, u.opts.MaxSize)
	}
	var flags Flags
	if u.signatureRequired() {
		flags, err = VerifyRelease(u.opts.Keyring, info, v, digest)
	} else {
		flags, err = ReleaseFlags(info)
	}
	if err != nil {
		return "", digest, err
	}
	if err := u.checkDowngrade(v, flags); err != nil {
		return "", digest, err
	}
	f, err := createStaging(u.opts.Exe)
	if err != nil {
		return "", digest, err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(res, int64(info.Size)+1))
	if errors.Is(err, jetstream.ErrDigestMismatch) {
		return "", digest, fmt.Errorf("%w: %s: %w", ErrDigestMismatch, v, err)
	}
	if err != nil {
		return "", digest, fmt.Errorf("update: download %s: %w", v, err)
	}
	if uint64(n) != info.Size {
		return "", digest, fmt.Errorf("%w: %s: got %d bytes, object info says %d", ErrDigestMismatch, v, n, info.Size)
	}
	if got := h.Sum(nil); string(got) != string(digest[:]) {
		return "", digest, fmt.Errorf("%w: %s: content hashes to %x, object info says %x", ErrDigestMismatch, v, got, digest)
	}
	if err = finishStaging(f, u.opts.Exe); err != nil {
		return "", digest, err
	}
	return f.Name(), digest, nil
}

// swap arms the state for the update to v and moves staged into place.
//
// The state (attempt, armed sentinel with the new binary's digest, pending
// agent_update event) is written before the first rename, so no crash can
// leave a new binary in place without its sentinel; Boot disarms a
// sentinel whose binary never made it into place (see doc.go, "Crash
// states"). If the swap fails, it is undone and the previous state is
// written back.
func (u *Updater) swap(v, staged string, digest [sha256.Size]byte) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	prev := u.st
	next := prev.clone()
	now := u.opts.Now()
	hexDigest := hex.EncodeToString(digest[:])
	ev := newEvent(u.opts.CurrentVersion, v, false, now)
	next.Attempt = &attempt{Version: v, From: u.opts.CurrentVersion, Digest: hexDigest, At: now.UTC()}
	next.Sentinel = &sentinel{Phase: phaseArmed, From: u.opts.CurrentVersion, To: v, Digest: hexDigest, ArmedAt: now.UTC(), EventID: uint64(now.UnixNano())}
	next.addEvent(ev)
	next.Refused = nil
	if err := saveState(u.opts.StateDir, next); err != nil {
		_ = os.Remove(staged)
		return err
	}
	exe := u.opts.Exe
	err := install(u.ops, exe, staged, exe+SuffixOld)
	if errors.Is(err, ErrSwap) {
		if serr := saveState(u.opts.StateDir, prev); serr != nil {
			// Boot disarms it: the executable is not the armed binary.
			u.log.Error("self-update: could not disarm after a failed swap", "err", serr)
		}
		return err
	}
	if err != nil {
		u.log.Warn("self-update: binary swapped in but the directory flush failed", "err", err)
	}
	u.st = next
	u.swapped = true
	return nil
}

// Offer hands the latest effective config to Run. It never blocks; when
// several configs arrive while Run is busy, only the latest counts.
func (u *Updater) Offer(cfg wire.Config) {
	u.offerMu.Lock()
	u.offer = &cfg
	u.offerMu.Unlock()
	select {
	case u.offerCh <- struct{}{}:
	default:
	}
}

// takeOffer returns the latest offered config.
func (u *Updater) takeOffer() (wire.Config, bool) {
	u.offerMu.Lock()
	defer u.offerMu.Unlock()
	if u.offer == nil {
		return wire.Config{}, false
	}
	c := *u.offer
	u.offer = nil
	return c, true
}

// considerResult is the outcome of one Consider run by Run.
type considerResult struct {
	d   Decision
	err error
}

// Run applies the configs given to Offer until ctx ends, calling Consider
// for the latest one. A config with another target version cancels a
// Consider still waiting out its jitter or downloading, and the decision
// starts again for the new target. A failed update is tried again after
// RetryInterval, doubling up to MaxRetryInterval, and at once when the
// target changes. Run returns ErrRestart once a new binary is in place (the
// agent must then stop and exit 64), or ctx.Err() when ctx ends.
func (u *Updater) Run(ctx context.Context) error {
	var (
		target  string
		cfg     wire.Config
		cancel  context.CancelFunc = func() {}
		done    chan considerResult
		timer   *time.Timer
		retryC  <-chan time.Time
		backoff = u.opts.RetryInterval
	)
	start := func() {
		var cctx context.Context
		cctx, cancel = context.WithCancel(ctx)
		done = make(chan considerResult, 1)
		c := cfg
		go func(done chan<- considerResult) {
			d, err := u.Consider(cctx, c)
			done <- considerResult{d, err}
		}(done)
	}
	stopRetry := func() {
		if timer != nil {
			timer.Stop()
			timer, retryC = nil, nil
		}
	}
	defer stopRetry()
	// finish waits for a running Consider after cancelling it.
	finish := func() considerResult {
		cancel()
		r := <-done
		done = nil
		return r
	}
	for {
		select {
		case <-ctx.Done():
			if done != nil {
				finish()
			}
			return ctx.Err()
		case <-u.offerCh:
			c, ok := u.takeOffer()
			if !ok {
				continue
			}
			same := c.TargetVersion == target
			cfg, target = c, c.TargetVersion
			if same && (done != nil || retryC != nil) {
				continue // the running or scheduled try picks cfg up
			}
			if done != nil {
				u.log.Info("self-update: target changed, restarting the decision", "target", target)
				if r := finish(); errors.Is(r.err, ErrRestart) {
					return ErrRestart
				}
			}
			stopRetry()
			backoff = u.opts.RetryInterval
			start()
		case r := <-done:
			done = nil
			cancel()
			switch {
			case errors.Is(r.err, ErrRestart):
				return ErrRestart
			case r.err != nil && ctx.Err() == nil:
				u.log.Warn("self-update: failed, will retry", "target", target, "retry_in", backoff.String(), "err", r.err)
				timer = time.NewTimer(backoff)
				retryC = timer.C
				backoff = min(2*backoff, u.opts.MaxRetryInterval)
			}
		case <-retryC:
			timer, retryC = nil, nil
			start()
		}
	}
}
