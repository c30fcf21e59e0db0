package agent

import (
	"context"
	"strconv"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// completeRun finishes a command whose script ran: it applies the job
// manifest hints in upstream's order, stores the result and runs the
// finalize hook. r is the result so far (exit code, output), stdout the
// captured stdout and notes the agent's notes for stderr.
//
//  1. check: the Check is derived (from stdout on exit 0, from the exit
//     code and stderr otherwise) and cached (check.go);
//  2. collect, on exit 0: the listed files are bundled and uploaded, and
//     collect_object set (collect.go); with finalize.on_each_bundle the
//     hook runs after each upload;
//  3. emit, on exit 0: stdout lines become ObsEvents and stdout is blanked
//     (emit.go);
//  4. the result is stored; then, on exit 0, the finalize hook runs and
//     its own result is stored (finalize.go).
func (a *Agent) completeRun(ctx context.Context, cmd *wire.Command, r wire.ExecResult, stdout []byte, notes []string) {
	r.FinishedAt = time.Now()
	clean := r.ExitCode == 0
	if cmd.Check != nil {
		a.recordCheck(cmd, &wire.ExecResult{ExitCode: r.ExitCode, Stderr: appendNotes(r.Stderr, notes),
			FinishedAt: r.FinishedAt, ResultID: r.ResultID}, lossy(stdout))
	}
	fin := cmd.Finalize
	var collected *string
	if clean && cmd.Collect != nil {
		var perBundle func(int, bundleResult)
		if fin != nil && fin.OnEachBundle {
			perBundle = func(idx int, b bundleResult) {
				js := collectResultJSON([]bundleResult{b})
				a.runFinalize(ctx, a.prepareFinalize(cmd, r.ResultID, strconv.Itoa(idx)), fin, &js)
			}
		}
		bundles := a.collect(ctx, cmd, lossy(stdout), r.FinishedAt, &notes, perBundle)
		if len(bundles) > 0 {
			r.CollectObject = bundles[0].Key
		}
		js := collectResultJSON(bundles)
		collected = &js
	}
	// As upstream: events are forwarded only from a clean run (exit 0); a
	// failed run keeps its stdout in the result, where the operator sees
	// what went wrong, and no partial events are stored.
	if cmd.Emit != nil && clean {
		a.emitEvents(ctx, cmd, stdout, &notes)
		r.Stdout = ""
	}
	r.Stderr = appendNotes(r.Stderr, notes)
	var fr *finalizeRun
	if clean && fin != nil && !fin.OnEachBundle {
		// Launching in the ledger before the command's result is stored:
		// from here on a crash reports the hook (exit 121), never loses it.
		fr = a.prepareFinalize(cmd, r.ResultID, "")
	}
	a.finish(ctx, cmd, r)
	if fr != nil {
		a.runFinalize(ctx, fr, fin, collected)
	}
}
