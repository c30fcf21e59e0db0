package agent

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// recover reports exit 121 for every command the ledger found launching at
// open: the agent stopped (crashed, lost power) after it marked the command
// launching and before its result was stored, so whether it ran is unknown.
// A command whose result is already in the results outbox (the agent
// stopped between storing the result and recording it finished) is only
// recorded finished: its real result is on its way. Once ctx ends it stops
// between commands: those not reported yet stay launching in the ledger and
// are reported at the next start.
func (a *Agent) recover(ctx context.Context) {
	recovered := a.ledger.Recovered()
	if len(recovered) == 0 {
		return
	}
	metas := make([]launchMeta, len(recovered))
	want := map[string]bool{} // result ids of the launch records
	for i, e := range recovered {
		if err := json.Unmarshal(e.Meta, &metas[i]); err != nil {
			a.log.Warn("unreadable launch record; reporting with request id only", "request_id", e.RequestID, "err", err)
		}
		if metas[i].ResultID != "" {
			want[metas[i].ResultID] = true
		}
	}
	stored := a.storedResults(want)
	for i, e := range recovered {
		if ctx.Err() != nil {
			a.log.Info("stopped reporting commands found mid-launch; the rest are reported at the next start", "left", len(recovered)-i)
			return
		}
		m := metas[i]
		if m.ResultID != "" && stored[m.ResultID] {
			a.log.Info("command found mid-launch after a restart already has its result stored", "request_id", e.RequestID, "result_id", m.ResultID)
			if err := a.ledger.Finished(e.RequestID); err != nil {
				a.log.Error("cannot mark command finished", "request_id", e.RequestID, "err", err)
			}
			continue
		}
		if m.ResultID == "" {
			m.ResultID = refusalID(e.RequestID, a.opts.PcID, "restarted")
		}
		if m.StartedAt.IsZero() {
			m.StartedAt = e.At
		}
		now := time.Now()
		cmd := &wire.Command{ID: m.ManifestID, RequestID: e.RequestID, ExecID: m.ExecID}
		r := a.newResult(cmd, m.ResultID, m.StartedAt)
		r.ExitCode, r.FinishedAt, r.ParentResultID = wire.ExitRestarted, now, m.ParentResultID
		r.Stderr = "kanade-agent: the agent restarted while this command was launching or running; its outcome is unknown"
		a.log.Warn("command found mid-launch after a restart", "request_id", e.RequestID, "exec_id", m.ExecID)
		a.finish(ctx, cmd, r)
	}
}

// storedResults returns which of the result ids in want the results outbox
// holds, not yet acknowledged.
func (a *Agent) storedResults(want map[string]bool) map[string]bool {
	found := map[string]bool{}
	if len(want) == 0 {
		return found
	}
	err := a.results.Pending(func(_ string, r wire.ExecResult) bool {
		if want[r.ResultID] {
			found[r.ResultID] = true
		}
		return len(found) < len(want)
	})
	if err != nil {
		a.log.Warn("cannot read the results outbox; reporting 121 for every command found mid-launch", "err", err)
	}
	return found
}

// ioLimit reads at most n bytes of r, copying them into w.
func ioLimit(r io.Reader, n int64, w io.Writer) io.Reader {
	return io.TeeReader(io.LimitReader(r, n), w)
}
