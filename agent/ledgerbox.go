package agent

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/kanade/kanade-agent/internal/ledger"
)

// reopenEvery bounds how often a failed ledger is reopened (a variable for
// tests).
var reopenEvery = 10 * time.Second

// ledgerBox holds the dedup ledger and reopens it after it failed. A ledger
// stops writing at its first failed write or fsync (a full disk), because
// retrying an fsync is unsafe; reopening reads back what reached the disk,
// so once there is room again the agent accepts commands without a restart.
// Claims that were only pending in the failed ledger are lost with it: those
// commands get a result saying their launch could not be recorded.
type ledgerBox struct {
	dir  string
	opts ledger.Options
	log  *slog.Logger

	mu       sync.RWMutex
	l        *ledger.Ledger
	lastOpen time.Time
}

func openLedgerBox(dir string, opts ledger.Options) (*ledgerBox, error) {
	l, err := ledger.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	return &ledgerBox{dir: dir, opts: opts, log: opts.Logger, l: l, lastOpen: time.Now()}, nil
}

// get returns the current ledger.
func (b *ledgerBox) get() *ledger.Ledger {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.l
}

// check reopens the ledger when err says it failed, at most every
// reopenEvery. It returns err.
func (b *ledgerBox) check(err error) error {
	if !errors.Is(err, ledger.ErrFailed) {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if time.Since(b.lastOpen) < reopenEvery {
		return err
	}
	b.lastOpen = time.Now()
	_ = b.l.Close()
	l, oerr := ledger.Open(b.dir, b.opts)
	if oerr != nil {
		b.log.Error("dedup ledger failed and cannot be reopened yet", "err", err, "reopen_err", oerr)
		// Keep a closed ledger: every call fails until a reopen succeeds.
		return err
	}
	b.log.Warn("dedup ledger failed; reopened it", "err", err)
	b.l = l
	return err
}

// Claim, Launching, Finished and Release call the current ledger and reopen
// it when it reports a failure.
func (b *ledgerBox) Claim(id string) (bool, ledger.State, error) {
	ok, st, err := b.get().Claim(id)
	return ok, st, b.check(err)
}

func (b *ledgerBox) Launching(id string, meta []byte) error {
	return b.check(b.get().Launching(id, meta))
}

func (b *ledgerBox) Finished(id string) error { return b.check(b.get().Finished(id)) }

func (b *ledgerBox) Release(id string) { b.get().Release(id) }

func (b *ledgerBox) Recovered() []ledger.Entry { return b.get().Recovered() }

func (b *ledgerBox) Close() error { return b.get().Close() }
