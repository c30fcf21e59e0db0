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
}

func newVerifier(o Options, log *slog.Logger) *verifier {
	src := signing.Sources{KeysFile: o.KeyringFile}
	if runtime.GOOS == "windows" {
		src.Registry = signing.RegistryKey
	}
	// An unloadable keyring leaves the verifier without keys: enforcing, it
	// then refuses every command.
	return &verifier{v: signing.New(signing.Options{Source: src, Enforce: o.Enforcing, Log: log})}
}

func (v *verifier) fingerprints() []string { return v.v.Fingerprints() }
func (v *verifier) enforcing() bool        { return v.v.Enforcing() }

// checkSignature verifies a command's signature, emits an ObsEvent when the
// outcome changed, and refuses the command (exit 123, without using up its
// dedup entry) when the verifier enforces and it is not verified. It
// reports whether the command may go on.
func (a *Agent) checkSignature(subj string, hdr nats.Header, data []byte, cmd *wire.Command) bool {
	now := time.Now()
	d := a.verifier.v.Check(subj, hdr, data, now)
	emit := func(ev wire.ObsEvent) error { return a.emitObs(context.Background(), ev) }
	if err := a.verifier.tracker.Report(d, cmd.RequestID, now.UTC(), emit); err != nil {
		a.log.Error("cannot record signature outcome", "err", err)
	}
	if d.Audit {
		a.log.Warn("command signed by an audited key", "kid", d.Kid, "request_id", cmd.RequestID, "outcome", d.Outcome)
		if err := emit(signing.AuditEvent(d, cmd.RequestID, now.UTC())); err != nil {
			a.log.Error("cannot record audited key use", "err", err)
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
