package update

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// MaxTrialBoots is the number of boots a new binary gets to call Healthy:
// the boot after that (the 4th) rolls it back.
const MaxTrialBoots = 3

// BootResult is what Boot found and did.
type BootResult struct {
	// Armed is set when a new binary is on trial: Boot counted this boot
	// and the agent must call Healthy once it has run healthily.
	Armed bool
	// Boots is the number of boots counted for the binary on trial (1 to
	// MaxTrialBoots when Armed).
	Boots int
	// Version is the version the sentinel was armed for (on trial, rolled
	// back or abandoned); empty without a sentinel.
	Version string
	// From is the version that ran before the update to Version.
	From string
	// Abandoned is set when the sentinel was armed for a binary that is not
	// at the executable's path (the swap never completed, or the binary was
	// replaced by hand): the sentinel was disarmed and the attempt forgotten.
	Abandoned bool
	// RolledBack is set when Version failed its trial: it is quarantined
	// and the binary at RestoredFrom was put back. Boot then returns
	// ErrRestart.
	RolledBack bool
	// RestoredFrom is the path of the fallback binary copied into place
	// (<exe>.last-good, or <exe>.old when there was no usable last good
	// one), or the executable itself when a restore interrupted by a crash
	// had already put the fallback in place.
	RestoredFrom string
	// Quarantined is the version quarantined by this boot, if any.
	Quarantined string
	// Swept lists stray staging files and <exe>.new removed.
	Swept []string
	// Problems are fallback binaries refused or failed during a rollback
	// that still succeeded with another one, for the log.
	Problems []error
}

// Boot runs the boot sentinel. The daemon calls it first thing in main,
// before the agent starts, with the agent's StateDir and the executable's
// path (empty: os.Executable()).
//
// Without an armed sentinel it only sweeps stray staging files. With one, it
// checks that the executable is the binary the sentinel was armed for
// (otherwise the sentinel is disarmed: Abandoned) and counts the boot,
// durably. Boots 1 to MaxTrialBoots (3) return Armed; the agent must call
// Updater.Healthy once healthy. The 4th boot quarantines the version,
// restores <exe>.last-good over the executable (or <exe>.old when there is no
// usable last good binary, as after the first update of a fresh install),
// disarms the sentinel, queues an agent_update event with rolled_back set,
// and returns ErrRestart: the process must exit 64 so the service manager
// starts the restored binary. Without any fallback binary it quarantines,
// disarms and returns ErrNoFallback; the binary in place keeps running.
//
// Any other error (the state directory unreadable, a corrupt state file
// reset: *CorruptStateError) should be logged; the agent then starts as
// usual.
func Boot(stateDir, exe string) (BootResult, error) {
	var res BootResult
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return res, fmt.Errorf("update: executable path: %w", err)
		}
	}
	st, loadErr := loadState(stateDir)
	var ce *CorruptStateError
	if loadErr != nil && !errors.As(loadErr, &ce) {
		return res, loadErr
	}
	res.Swept = sweepStaging(exe)
	s := st.Sentinel
	if s == nil {
		return res, loadErr
	}
	res.Version, res.From = s.To, s.From
	next := st.clone()
	if s.Phase == phaseArmed {
		d, err := fileDigest(exe)
		if err != nil {
			return res, fmt.Errorf("update: hash the executable: %w", err)
		}
		if d != s.Digest {
			next.Sentinel = nil
			next.dropEvent(s.EventID)
			if next.Attempt != nil && next.Attempt.Digest == s.Digest {
				next.Attempt = nil
			}
			res.Abandoned = true
			return res, errors.Join(loadErr, saveState(stateDir, next))
		}
		next.Sentinel.Boots++
		if res.Boots = next.Sentinel.Boots; res.Boots <= MaxTrialBoots {
			res.Armed = true
			return res, errors.Join(loadErr, saveState(stateDir, next))
		}
		// The trial failed. Quarantine first and remember that a rollback
		// is under way, so a crash during the restore redoes it.
		next.quarantine(s.To)
		next.Sentinel.Phase = phaseRollback
		if err := saveState(stateDir, next); err != nil {
			return res, err
		}
	}
	return rollback(stateDir, exe, next, res, loadErr)
}

// rollback restores a fallback binary over exe for the sentinel of st
// (phase rollback) and disarms it.
func rollback(stateDir, exe string, st *state, res BootResult, loadErr error) (BootResult, error) {
	s := st.Sentinel
	res.Quarantined = s.To
	cur, err := fileDigest(exe)
	if err != nil {
		return res, fmt.Errorf("update: hash the executable: %w", err)
	}
	type candidate struct{ path, version, digest string }
	var cands []candidate
	if st.LastGood != nil {
		cands = append(cands, candidate{exe + SuffixLastGood, st.LastGood.Version, st.LastGood.Digest})
	}
	cands = append(cands, candidate{exe + SuffixOld, s.From, ""})
	var restored *candidate
	if cur != s.Digest {
		// A restore interrupted by a crash already put another binary in place.
		restored = &candidate{path: exe, version: s.From}
		if st.LastGood != nil && cur == st.LastGood.Digest {
			restored.version = st.LastGood.Version
		}
	}
	var errs []error
	for i := 0; restored == nil && i < len(cands); i++ {
		c := cands[i]
		if _, err := os.Stat(c.path); err != nil {
			continue
		}
		tmp, d, err := copyToStaging(c.path, exe)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if d == s.Digest || (c.digest != "" && d != c.digest) {
			_ = os.Remove(tmp)
			errs = append(errs, fmt.Errorf("update: %s is not the expected binary (sha256 %s)", c.path, d))
			continue
		}
		if err := install(realOps, exe, tmp, exe+SuffixFailed); err != nil && errors.Is(err, ErrSwap) {
			errs = append(errs, err)
			continue
		}
		restored = &c
	}
	st.Sentinel = nil
	if restored == nil {
		errs = append([]error{fmt.Errorf("%w: version %s quarantined, binary kept", ErrNoFallback, s.To)}, errs...)
		errs = append(errs, loadErr, saveState(stateDir, st))
		return res, errors.Join(errs...)
	}
	st.addEvent(newEvent(s.To, restored.version, true, time.Now()))
	if err := saveState(stateDir, st); err != nil {
		return res, err
	}
	res.RolledBack, res.RestoredFrom, res.Problems = true, restored.path, errs
	return res, ErrRestart
}
