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
func (a *Agent) recover(ctx context.Context) {
	for _, e := range a.ledger.Recovered() {
		var m launchMeta
		if err := json.Unmarshal(e.Meta, &m); err != nil {
			a.log.Warn("unreadable launch record; reporting with request id only", "request_id", e.RequestID, "err", err)
		}
		if m.ResultID == "" {
			m.ResultID = refusalID(e.RequestID, a.opts.PcID, "restarted")
		}
		if m.StartedAt.IsZero() {
			m.StartedAt = e.At
		}
		now := time.Now()
		cmd := &wire.Command{RequestID: e.RequestID, ExecID: m.ExecID}
		r := a.newResult(cmd, m.ResultID, m.StartedAt)
		r.ExitCode, r.FinishedAt = wire.ExitRestarted, now
		r.Stderr = "kanade-agent: the agent restarted while this command was launching or running; its outcome is unknown"
		a.log.Warn("command found mid-launch after a restart", "request_id", e.RequestID, "exec_id", m.ExecID)
		a.finish(ctx, cmd, r)
	}
}

// ioLimit reads at most n bytes of r, copying them into w.
func ioLimit(r io.Reader, n int64, w io.Writer) io.Reader {
	return io.TeeReader(io.LimitReader(r, n), w)
}
