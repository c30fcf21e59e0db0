package agent

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	"github.com/kanade/kanade-agent/internal/update"
	"github.com/kanade/kanade-agent/signing"
)

// ErrRestart is returned by Run after a self-update swapped the binary (or
// a rollback asks for a restart): the process should exit with code 64
// (ErrRestart's ExitCode) so the service manager starts the new binary.
var ErrRestart = update.ErrRestart

// healthyAfter is how long a start must run healthily before the running
// binary becomes the last-good one and the boot sentinel is cleared.
const healthyAfter = 30 * time.Second

// openUpdater makes the self-updater when Options.SelfUpdate is set. A
// release keyring that cannot be read disables updates (fail closed). An
// agent that enforces command signatures, or has a release keyring (even
// an empty one), requires every release to be signed by a key of the
// release keyring; without one it refuses every release.
func (a *Agent) openUpdater() {
	if !a.opts.SelfUpdate {
		return
	}
	var keyring *signing.Keyring
	if a.opts.ReleaseKeyringFile != "" {
		k, err := signing.LoadFile(a.opts.ReleaseKeyringFile)
		if err != nil {
			a.log.Error("release keyring unreadable: self-update disabled", "err", err)
			return
		}
		keyring = k
	}
	// An agent that refuses unsigned commands must not install an unsigned
	// binary, which would run with the same rights.
	required := a.opts.Enforcing || (a.verifier != nil && a.verifier.enforcing())
	u, err := update.New(update.Options{
		Exe:              a.opts.Exe,
		StateDir:         filepath.Join(a.opts.DataDir, "update"),
		CurrentVersion:   a.opts.Version,
		JetStream:        a.js,
		Keyring:          keyring,
		RequireSignature: required,
		AllowDowngrade:   a.opts.AllowDowngrade,
		Logger:           a.log,
	})
	if err != nil {
		a.log.Error("self-update disabled", "err", err)
		return
	}
	if (required || keyring != nil) && keyring.Len() == 0 {
		a.log.Warn("self-update: every release will be refused: a signature is required (command signatures enforced, or a release keyring set) and the release keyring has no key",
			"release_keyring_file", a.opts.ReleaseKeyringFile)
	}
	a.upd = u
}

// recordUpdateEvents stores the agent_update events the updater left for
// this start.
func (a *Agent) recordUpdateEvents(ctx context.Context) {
	for _, ev := range a.upd.PendingEvents() {
		if err := a.emitObs(ctx, ev); err != nil {
			a.log.Error("cannot record agent_update", "err", err)
			continue
		}
		if err := a.upd.EventRecorded(ev); err != nil {
			a.log.Warn("cannot clear recorded agent_update", "err", err)
		}
	}
}

// runUpdater runs the updater until ctx ends or it swapped the binary, in
// which case it calls restart. It also marks the start healthy once the
// agent has been ready for healthyAfter.
func (a *Agent) runUpdater(ctx context.Context, restart func(error)) {
	go func() {
		select {
		case <-ctx.Done():
			return
		case <-a.ready:
		}
		if !sleepCtx(ctx, healthyAfter) {
			return
		}
		if err := a.upd.Healthy(); err != nil {
			a.log.Warn("cannot mark this start healthy", "err", err)
		}
	}()
	a.upd.Offer(a.config())
	if err := a.upd.Run(ctx); errors.Is(err, update.ErrRestart) {
		a.waitIdle(ctx, a.opts.UpdateRestartWait)
		a.log.Info("self-update installed a new binary: restarting")
		restart(err)
	}
}

// waitIdle waits, at most d, until no command is waiting or running, so a
// restart does not kill a script that is doing its work. It returns early
// when ctx ends.
func (a *Agent) waitIdle(ctx context.Context, d time.Duration) {
	if d <= 0 || a.inflight.Load() == 0 {
		return
	}
	a.log.Info("self-update: waiting for running commands before the restart", "commands", a.inflight.Load(), "at_most", d)
	t := time.NewTimer(d)
	defer t.Stop()
	for a.inflight.Load() > 0 {
		select {
		case <-a.idle:
		case <-t.C:
			a.log.Warn("self-update: commands still running; restarting anyway", "commands", a.inflight.Load(), "waited", d)
			return
		case <-ctx.Done():
			return
		}
	}
}
