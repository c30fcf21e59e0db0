package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/kanade/kanade-agent/internal/runner"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
)

// Finalize hooks (upstream's finalize.rs).
//
// A command with a finalize hook whose run exits 0 runs the hook after its
// own result is stored (and, for a collect job, after the upload). With
// finalize.on_each_bundle, a collect job runs it instead once per uploaded
// bundle, right after that bundle's upload. The hook is a plain script run
// (no hints), with its own timeout (max(1, timeout_secs) seconds), shell,
// run_as and cwd, killed by the command's kill.<exec_id> as the script is;
// a collect job's hook finds the uploaded bundles in KANADE_COLLECT_RESULT
// ({"bundles":[{"files":[...],"key":"...","label":null,"uploaded":true}],"ok":true}).
//
// The hook's outcome is its own ExecResult (upstream #955): a fresh
// result_id, request_id <request_id>__finalize (__finalize-<bundle index>
// per bundle), no exec_id (so it never counts toward the deployment),
// parent_result_id the command's result_id, manifest_id <id>__finalize;
// exit code the hook's, or -1 with "finalize: hook killed", "finalize:
// hook timed out after Ns" or "finalize: hook spawn failed: ..." in
// stderr. It never changes the command's own result.
//
// Ours: the variable is passed in the hook's environment, not prepended to
// the script as a PowerShell assignment, so every shell gets it without
// quoting (upstream skips cmd and sh hooks for that reason); a shell this
// OS lacks gives the finalize result exit 122, skipped. The hook is in the
// dedup ledger under its request id, launching before the command's own
// result is stored: an agent that stops before the hook's result is stored
// reports it at the next start with exit 121 (parent_result_id kept), so a
// due hook is never silently lost.

// EnvCollectResult is the environment variable holding a collect job's
// upload outcome for its finalize hook.
const EnvCollectResult = "KANADE_COLLECT_RESULT"

// finalizeRun is a finalize hook recorded in the ledger, about to run.
type finalizeRun struct {
	cmd            *wire.Command // the synthetic command: id <id>__finalize, request id <request_id>__finalize[-n]
	resultID       string
	parentResultID string
	tracked        bool // launching in the ledger
}

// finalizeRequestID is the finalize result's request id.
func finalizeRequestID(requestID, disc string) string {
	id := requestID + "__finalize"
	if disc != "" {
		id += "-" + disc
	}
	if subject.ValidToken("request_id", id) != nil {
		// Too long for a subject token: a stable shorter id.
		id = uuid.NewSHA1(uuid.NameSpaceOID, []byte(id)).String() + "__finalize"
	}
	return id
}

// prepareFinalize records cmd's finalize hook as launching in the ledger.
// disc is the bundle index for a per-bundle hook, "" otherwise.
func (a *Agent) prepareFinalize(cmd *wire.Command, parentResultID, disc string) *finalizeRun {
	fr := &finalizeRun{
		cmd:            &wire.Command{ID: cmd.ID + "__finalize", Version: cmd.Version, RequestID: finalizeRequestID(cmd.RequestID, disc)},
		resultID:       uuid.NewString(),
		parentResultID: parentResultID,
	}
	ok, _, err := a.ledger.Claim(fr.cmd.RequestID)
	if err == nil && ok {
		meta, _ := json.Marshal(launchMeta{RequestID: fr.cmd.RequestID, ManifestID: fr.cmd.ID, ResultID: fr.resultID,
			ParentResultID: parentResultID, StartedAt: time.Now()})
		if err = a.ledger.Launching(fr.cmd.RequestID, meta); err != nil {
			a.ledger.Release(fr.cmd.RequestID)
		}
	} else if err == nil {
		err = fmt.Errorf("request id %s already in the ledger", fr.cmd.RequestID)
	}
	if err != nil {
		a.log.Warn("finalize hook not recorded in the ledger; a crash before its result is stored loses it", "request_id", fr.cmd.RequestID, "err", err)
		return fr
	}
	fr.tracked = true
	return fr
}

// runFinalize runs the hook and stores its result. ctx is the command's
// (kill.<exec_id> and shutdown); collectJSON is KANADE_COLLECT_RESULT for
// a collect job, nil otherwise.
func (a *Agent) runFinalize(ctx context.Context, fr *finalizeRun, fin *wire.FinalizeCommand, collectJSON *string) {
	started := time.Now()
	r := wire.ExecResult{ResultID: fr.resultID, RequestID: fr.cmd.RequestID, PcID: a.opts.PcID, StartedAt: started,
		ManifestID: fr.cmd.ID, ParentResultID: fr.parentResultID}
	timeout := (&wire.Command{TimeoutSecs: fin.TimeoutSecs}).EffectiveTimeout()
	var notes []string
	if err := runner.Supported(fin.Shell, fin.EffectiveRunAs()); err != nil {
		r.ExitCode, r.Skipped = wire.ExitUnsupported, true
		notes = append(notes, "finalize: "+err.Error())
	} else if cause := context.Cause(ctx); cause != nil {
		// Stopped before the hook could start: say so, rather than leave it
		// to be reported as an unknown outcome (121) at the next start.
		r.ExitCode = wire.ExitKilled
		if errors.Is(cause, errRemoteKill) {
			notes = append(notes, "finalize: hook not run: killed by remote signal")
		} else {
			notes = append(notes, "finalize: hook not run: agent shutting down")
		}
	} else {
		var env []string
		if collectJSON != nil {
			env = append(env, EnvCollectResult+"="+*collectJSON)
		}
		res := runner.Run(ctx, runner.Spec{Shell: fin.Shell, Script: fin.Script, Cwd: fin.Cwd, Env: env, Timeout: timeout,
			MaxOutput: a.opts.MaxOutput, StageDir: a.stageDir, KillGrace: a.opts.KillGrace, RunAs: fin.EffectiveRunAs()})
		r.ExitCode, r.Stdout, r.Stderr = res.ExitCode, lossy(res.Stdout), lossy(res.Stderr)
		r.StdoutTruncated, r.StderrTruncated = res.StdoutTruncated, res.StderrTruncated
		switch {
		case res.TimedOut:
			r.ExitCode = wire.ExitKilled
			notes = append(notes, fmt.Sprintf("finalize: hook timed out after %ds", int64(timeout/time.Second)))
		case res.Killed:
			r.ExitCode = wire.ExitKilled
			notes = append(notes, "finalize: hook killed")
		case res.Err != nil:
			r.ExitCode = wire.ExitKilled
			notes = append(notes, "finalize: hook spawn failed: "+res.Err.Error())
		}
		if res.StdoutTruncated {
			notes = append(notes, fmt.Sprintf("kanade-agent: stdout truncated: kept %d of %d bytes", len(res.Stdout), res.StdoutBytes))
		}
		if res.StderrTruncated {
			notes = append(notes, fmt.Sprintf("kanade-agent: stderr truncated: kept %d of %d bytes", len(res.Stderr), res.StderrBytes))
		}
	}
	r.Stderr = appendNotes(r.Stderr, notes)
	r.FinishedAt = time.Now()
	if fr.tracked {
		a.finish(ctx, fr.cmd, r)
		return
	}
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := a.results.Enqueue(ectx, r); err != nil {
		a.log.Error("cannot store finalize result", "request_id", r.RequestID, "err", err)
		return
	}
	a.counters.results.Add(1)
}
