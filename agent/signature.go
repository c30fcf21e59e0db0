package agent

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/kanade/kanade-agent/signing"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
)

// verifier checks command signatures and reports outcome transitions.
type verifier struct {
	v       *signing.Verifier
	tracker signing.Tracker
	// broken is set when enforcement was asked for but the keyring could
	// not be loaded: every command is refused rather than silently run
	// unverified.
	broken error
}

func newVerifier(o Options, log *slog.Logger) *verifier {
	lo := signing.LoadOptions{File: o.KeyringFile}
	if runtime.GOOS == "windows" {
		lo.Registry = signing.RegistryPath
	}
	k, err := signing.Load(lo)
	if err != nil {
		if o.Enforcing {
			log.Error("command keyring unreadable while enforcing: every command is refused until it is fixed", "err", err)
			return &verifier{v: signing.NewVerifier(nil, true), broken: err}
		}
		log.Error("command keyring unreadable; not enforcing", "err", err)
		k = nil
	}
	for _, kid := range k.Conflicts() {
		log.Warn("command key defined in both file and registry; the file's wins", "kid", kid)
	}
	return &verifier{v: signing.NewVerifier(k, o.Enforcing)}
}

func (v *verifier) fingerprints() []string { return v.v.Keyring().Fingerprints() }
func (v *verifier) enforcing() bool        { return v.broken != nil || v.v.Enforcing() }

// checkSignature verifies a command's signature, emits an ObsEvent when the
// outcome changed, and refuses the command (exit 123, without using up its
// dedup entry) when the verifier enforces and it is not verified. It
// reports whether the command may go on.
func (a *Agent) checkSignature(hdr nats.Header, data []byte, cmd *wire.Command) bool {
	now := time.Now()
	d := a.verifier.v.Check(hdr, data, now)
	if a.verifier.broken != nil {
		d.Allowed, d.Enforcing = false, true
		d.Reason = "the agent's command keyring could not be loaded"
	}
	if ev, changed := a.verifier.tracker.Transition(d, cmd.RequestID, now.UTC()); changed {
		if err := a.emitObs(context.Background(), ev); err != nil {
			a.log.Error("cannot record signature outcome", "err", err)
		}
	}
	if d.Allowed {
		return true
	}
	a.counters.refused.Add(1)
	a.log.Warn("refusing command: signature", "request_id", cmd.RequestID, "outcome", d.Outcome, "kid", d.Kid, "reason", d.Reason)
	r := a.newResult(cmd, signing.RefusalResultID(cmd.RequestID, a.opts.PcID), now)
	r.ExitCode, r.Skipped, r.FinishedAt = wire.ExitRefused, true, now
	r.Stderr = fmt.Sprintf("kanade-agent: refused: command signature %s (%s)", d.Outcome, d.Reason)
	a.store(r)
	return false
}
