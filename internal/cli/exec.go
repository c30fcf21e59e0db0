package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MaxScript is the largest script exec sends, in bytes.
const MaxScript = 1 << 20

// AdhocVersion is the Command.Version of the ad hoc commands exec sends.
// Ad hoc commands (id wire.AdhocID) pass no version pin gate, so it is
// informational.
const AdhocVersion = "1"

// DefaultGroupWait is how long exec --group and --all collect results by default.
const DefaultGroupWait = 10 * time.Second

var execCmd = &command{
	name:    "exec",
	args:    "(--pc ID | --group G | --all) [flags] SCRIPT... | -",
	summary: "run a script on agents and print their results",
	long: `The script is the arguments after the flags, joined by spaces, or "-" to
read it from standard input (at most 1 MiB). Flags must come before the
script; everything from the first argument that is not a flag (or after
"--") is the script.

exec publishes an ad hoc command (id "adhoc-run") with a new request_id and
an exec_id (--exec-id, or a new UUID printed on stderr, for 'kanade kill') to
commands.pc.<ID>, commands.group.<G> or commands.all, signed with --key when
given, and reads the results from the RESULTS stream.

With --pc it waits for that agent's result (up to --wait, default
--timeout), prints the script's stdout on stdout and its stderr on stderr,
then a summary line on stderr (pc, exit code, duration, and skipped or
truncated output when so). With --group or --all it collects results until
--wait has passed (default 10s), printing each as "[pc_id] exit N" followed
by its output. --json prints each ExecResult as one JSON line on stdout
instead.

Exit code with --pc: the script's exit code when it is 0..255 (a refused,
skipped or gated command gives the reserved code: 121..127), 1 when it does
not fit (-1: killed, timed out or failed to start; large Windows codes).
With --group or --all: 0 when every result had exit code 0, else 1.
2 when no result arrived within --wait: either the agent is offline, and
the command stays in stream EXEC (until the next command to the same target
replaces it) and runs when the agent returns, or the agent started it
(its started event is in stream EVENTS) and it still runs; the message says
which. 1 for a runtime failure (including output offloaded to the
result_output object store that cannot be read), 2 for a usage error.`,
	run: runExec,
}

// defaultShell is the shell every machine of this OS has.
func defaultShell() string {
	if runtime.GOOS == "windows" {
		return wire.ShellCmd
	}
	return wire.ShellSh
}

// execRun is one exec invocation after its flags were checked.
type execRun struct {
	inv     *invocation
	cmd     wire.Command
	target  string // the command subject
	pc      string // --pc, or ""
	group   string // --group, or ""
	wait    time.Duration
	json    bool
	key     *signer // --key, or nil
	js      jetstream.JetStream
	results string // results.<request_id>
}

func runExec(ctx context.Context, inv *invocation, args []string) error {
	fs := inv.flags()
	pc := fs.String("pc", "", "run on the agent with pc id `ID`")
	group := fs.String("group", "", "run on the members of group `G`")
	all := fs.Bool("all", false, "run on every agent")
	shell := fs.String("shell", defaultShell(), "`SHELL` to run the script with: sh, cmd, powershell or pwsh")
	timeoutSecs := fs.Int64("timeout-secs", 60, "run timeout `N` of the script on the agent, in seconds")
	execID := fs.String("exec-id", "", "`ID` of this execution, for 'kanade kill' (default a new UUID)")
	keyFile := fs.String("key", "", "sign the command with the key in `FILE` (see 'kanade keygen')")
	wait := fs.Duration("wait", 0, "wait up to `D` for results, such as 45s or 5m (default --timeout with --pc, 10s with --group or --all)")
	jsonOut := fs.Bool("json", false, "print each ExecResult as one JSON line")
	if err := inv.parse(fs, args); err != nil {
		return err
	}
	x := &execRun{inv: inv, pc: *pc, group: *group, json: *jsonOut}

	n := 0
	for _, set := range []bool{*pc != "", *group != "", *all} {
		if set {
			n++
		}
	}
	if n != 1 {
		return usageErrorf("give exactly one target: --pc ID, --group G or --all")
	}
	var err error
	switch {
	case *pc != "":
		x.target, err = subject.CommandsPC(*pc)
	case *group != "":
		x.target, err = subject.CommandsGroup(*group)
	default:
		x.target = subject.CommandsAll
	}
	if err != nil {
		return usageErr(err)
	}
	switch *shell {
	case wire.ShellSh, wire.ShellCmd, wire.ShellPowerShell, wire.ShellPwsh:
	default:
		return usageErrorf("--shell %q is not sh, cmd, powershell or pwsh", *shell)
	}
	if *timeoutSecs < 1 {
		return usageErrorf("--timeout-secs %d must be at least 1", *timeoutSecs)
	}
	if *execID == "" {
		*execID = uuid.NewString()
	} else if _, err := subject.Kill(*execID); err != nil {
		return usageErrorf("--exec-id: %v", err)
	}
	x.wait = *wait
	if flagSet(fs, "wait") {
		if x.wait <= 0 {
			return usageErrorf("--wait %v must be positive, such as 10s", x.wait)
		}
	} else if x.pc != "" {
		x.wait = inv.g.timeout
	} else {
		x.wait = DefaultGroupWait
	}
	script, err := readScript(fs.Args(), inv.env.Stdin)
	if err != nil {
		return err
	}
	if x.key, err = loadSigner(*keyFile); err != nil {
		return err
	}
	x.cmd = wire.Command{
		ID: wire.AdhocID, Version: AdhocVersion, RequestID: uuid.NewString(), ExecID: *execID,
		Shell: *shell, Script: script, TimeoutSecs: *timeoutSecs,
	}
	if err := x.cmd.Validate(); err != nil {
		return usageErr(err)
	}
	x.results, err = subject.Result(x.cmd.RequestID)
	if err != nil {
		return err
	}
	return x.run(ctx)
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// readScript returns the script: args joined by spaces, or stdin for "-".
func readScript(args []string, stdin io.Reader) (string, error) {
	var script string
	if len(args) == 1 && args[0] == "-" {
		b, err := io.ReadAll(io.LimitReader(stdin, MaxScript+1))
		if err != nil {
			return "", fmt.Errorf("reading the script from standard input: %w", err)
		}
		if len(b) > MaxScript {
			return "", usageErrorf("the script on standard input is over %d bytes (1 MiB); store a larger script elsewhere and send a short one that fetches it", MaxScript)
		}
		script = string(b)
	} else {
		script = strings.Join(args, " ")
		if len(script) > MaxScript {
			return "", usageErrorf("the script is %d bytes, over %d (1 MiB)", len(script), MaxScript)
		}
	}
	if strings.TrimSpace(script) == "" {
		return "", usageErrorf("no script: give it as arguments after the flags, or \"-\" to read it from standard input")
	}
	return script, nil
}

func (x *execRun) run(ctx context.Context) error {
	inv := x.inv
	nc, js, err := inv.jetStream(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	x.js = js

	// Watch the result subject before publishing, so no result is missed
	// (the RESULTS stream keeps them; the ordered consumer delivers all).
	cctx, cancel := context.WithTimeout(ctx, inv.g.timeout)
	defer cancel()
	done := make(chan struct{}) // closed when exec returns: unblocks the handlers
	var stops []func()
	defer func() {
		close(done)
		for _, stop := range stops {
			stop()
		}
	}()
	results, stop, err := watch(cctx, js, subject.StreamResults, x.results, done)
	if err != nil {
		return jsError("stream "+subject.StreamResults, err)
	}
	stops = append(stops, stop)
	// The started events tell a command still running from one not yet
	// received. Without the EVENTS stream exec works all the same.
	startedSubj := "events.started." + x.cmd.ExecID + ".*"
	if x.pc != "" {
		startedSubj, _ = subject.EventStarted(x.cmd.ExecID, x.pc)
	}
	started, stop, err := watch(cctx, js, subject.StreamEvents, startedSubj, done)
	if err == nil {
		stops = append(stops, stop)
	}

	body, err := json.Marshal(x.cmd)
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: x.target, Data: body}
	if err := x.key.sign(msg, "command"); err != nil {
		return err
	}
	if err := nc.PublishMsg(msg); err != nil {
		if errors.Is(err, nats.ErrMaxPayload) {
			return fmt.Errorf("the command is %d bytes, over the server's max payload of %d bytes: send a shorter script", len(body), nc.MaxPayload())
		}
		return fmt.Errorf("publish to %s: %w", x.target, err)
	}
	if err := nc.FlushWithContext(cctx); err != nil {
		return fmt.Errorf("publish to %s: %w", x.target, err)
	}
	fmt.Fprintf(inv.env.Stderr, "kanade exec: sent to %s (request_id %s, exec_id %s%s); waiting up to %v\n",
		x.target, x.cmd.RequestID, x.cmd.ExecID, x.key.signedAs(), x.wait)

	return x.collect(ctx, results, started)
}

// watch delivers the data of every message of stream on subj, from the
// first, until stop is called; close done before calling stop.
func watch(ctx context.Context, js jetstream.JetStream, stream, subj string, done <-chan struct{}) (<-chan []byte, func(), error) {
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		return nil, nil, err
	}
	ch := make(chan []byte, 64)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case ch <- m.Data():
		case <-done:
		}
	}, jetstream.ConsumeErrHandler(func(jetstream.ConsumeContext, error) {}))
	if err != nil {
		return nil, nil, err
	}
	return ch, cc.Stop, nil
}

// collect reads results until the one from --pc arrives or --wait has
// passed, printing each. started (nil without the EVENTS stream) carries
// the EventStarted of the command.
func (x *execRun) collect(ctx context.Context, results, started <-chan []byte) error {
	inv := x.inv
	timer := time.NewTimer(x.wait)
	defer timer.Stop()
	seen := map[string]bool{}
	running := map[string]bool{} // pcs that started the command and sent no result yet
	finished := map[string]bool{}
	count, failed := 0, 0
	var outputErr error
	for {
		select {
		case data := <-started:
			if e, err := wire.DecodeEventStarted(data); err == nil && e.PcID != "" && !finished[e.PcID] {
				running[e.PcID] = true
			}
		case data := <-results:
			r, err := wire.DecodeExecResult(data)
			if err != nil {
				fmt.Fprintf(inv.env.Stderr, "kanade exec: ignoring a malformed result on %s: %s\n", x.results, oneLine(err.Error()))
				continue
			}
			key := r.ResultID
			if key == "" {
				key = r.PcID + "|" + r.FinishedAt.String()
			}
			if seen[key] {
				continue
			}
			seen[key] = true
			finished[r.PcID] = true
			delete(running, r.PcID)
			count++
			if r.ExitCode != 0 {
				failed++
			}
			if err := x.print(ctx, r, data); err != nil && outputErr == nil {
				outputErr = err
			}
			if x.pc != "" {
				if outputErr != nil {
					return outputErr
				}
				return &exitError{code: ScriptExitCode(r.ExitCode)}
			}
		case <-timer.C:
			if count == 0 {
				return &exitError{code: ExitNoResult, msg: x.noResult(running)}
			}
			if outputErr != nil {
				return outputErr
			}
			still := ""
			if len(running) > 0 {
				still = fmt.Sprintf("; %d started and still run: %s (their results will be stored on %s)", len(running), pcList(running), x.results)
			}
			fmt.Fprintf(inv.env.Stderr, "kanade exec: %d result(s) within %v: %d with exit code 0, %d other%s\n", count, x.wait, count-failed, failed, still)
			if failed > 0 {
				return &exitError{code: ExitFailure}
			}
			return nil
		case <-ctx.Done():
			return fmt.Errorf("interrupted: the command was sent (request_id %s) and runs anyway ('kanade kill %s' stops it); its results are stored on %s in stream %s",
				x.cmd.RequestID, x.cmd.ExecID, x.results, subject.StreamResults)
		}
	}
}

// pcList lists the pc ids of set, sorted, at most 10.
func pcList(set map[string]bool) string {
	pcs := make([]string, 0, len(set))
	for pc := range set {
		pcs = append(pcs, pc)
	}
	sort.Strings(pcs)
	if len(pcs) > 10 {
		return strings.Join(pcs[:10], ", ") + fmt.Sprintf(" and %d more", len(pcs)-10)
	}
	return strings.Join(pcs, ", ")
}

// noResult says why no result came: the command is still running where
// it started, or it waits in EXEC for the agents.
func (x *execRun) noResult(running map[string]bool) string {
	if len(running) > 0 {
		who := "pc " + x.pc
		if x.pc == "" {
			who = fmt.Sprintf("%d agent(s) (%s)", len(running), pcList(running))
		}
		return fmt.Sprintf("%s started the command but it did not finish within %v; it keeps running (its run timeout is %ds; 'kanade kill %s' stops it) and its result will be stored on %s (request_id %s)",
			who, x.wait, x.cmd.TimeoutSecs, x.cmd.ExecID, x.results, x.cmd.RequestID)
	}
	switch {
	case x.pc != "":
		return fmt.Sprintf("no result from pc %s within %v; the command stays in stream EXEC (until the next command to that pc) and runs when the agent returns (request_id %s)",
			x.pc, x.wait, x.cmd.RequestID)
	case x.group != "":
		return fmt.Sprintf("no result from group %s within %v; the command stays in stream EXEC (until the next command to that group) and runs when its members return (request_id %s)",
			x.group, x.wait, x.cmd.RequestID)
	}
	return fmt.Sprintf("no result from any agent within %v; the command stays in stream EXEC (until the next command to all) and runs when agents return (request_id %s)",
		x.wait, x.cmd.RequestID)
}

// ScriptExitCode maps an ExecResult's exit code to exec's process exit
// code: the code itself when it is 0..255, else 1 (a negative code such as
// -1 for killed or timed out, or a Windows code over 255, is a failure
// that no process exit code can carry).
func ScriptExitCode(code int32) int {
	if code >= 0 && code <= 255 {
		return int(code)
	}
	return ExitFailure
}

// print shows one result.
func (x *execRun) print(ctx context.Context, r *wire.ExecResult, raw []byte) error {
	env := x.inv.env
	if x.json {
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return err
		}
		buf.WriteByte('\n')
		_, err := env.Stdout.Write(buf.Bytes())
		return err
	}
	if x.pc == "" {
		fmt.Fprintf(env.Stdout, "[%s] exit %d%s\n", r.PcID, r.ExitCode, notes(r, false))
	}
	errOut := x.output(ctx, env.Stdout, r.Stdout, r.StdoutObject, x.pc == "")
	endsNL, err := x.outputEnds(ctx, env.Stderr, r.Stderr, r.StderrObject, x.pc == "")
	if errOut == nil {
		errOut = err
	}
	if x.pc != "" {
		if !endsNL {
			fmt.Fprintln(env.Stderr)
		}
		fmt.Fprintf(env.Stderr, "kanade exec: pc %s: exit %d%s\n", r.PcID, r.ExitCode, notes(r, true))
	}
	return errOut
}

// notes describes a result's duration and flags for a summary line.
func notes(r *wire.ExecResult, withDuration bool) string {
	var parts []string
	if withDuration && !r.StartedAt.IsZero() && !r.FinishedAt.IsZero() {
		parts = append(parts, "in "+r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond).String())
	}
	if r.Skipped {
		parts = append(parts, "skipped")
	}
	if r.StdoutTruncated {
		parts = append(parts, "stdout truncated")
	}
	if r.StderrTruncated {
		parts = append(parts, "stderr truncated")
	}
	if len(parts) == 0 {
		return ""
	}
	if withDuration {
		return " " + strings.Join(parts, ", ")
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// output writes a result's output stream to w: inline, or fetched from the
// result_output object store when it was offloaded. With newline, a missing
// final newline is added.
func (x *execRun) output(ctx context.Context, w io.Writer, inline, object string, newline bool) error {
	_, err := x.outputEnds(ctx, w, inline, object, newline)
	return err
}

// outputEnds is output that also reports whether what it wrote ended with
// a newline (or was empty).
func (x *execRun) outputEnds(ctx context.Context, w io.Writer, inline, object string, newline bool) (bool, error) {
	if object == "" {
		if inline == "" {
			return true, nil
		}
		io.WriteString(w, inline)
		if strings.HasSuffix(inline, "\n") {
			return true, nil
		}
		if newline {
			io.WriteString(w, "\n")
			return true, nil
		}
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, x.inv.g.timeout)
	defer cancel()
	what := fmt.Sprintf("output offloaded to %s/%s", subject.ObjectResultOutput, object)
	obs, err := x.js.ObjectStore(ctx, subject.ObjectResultOutput)
	if err != nil {
		return true, jsError(what, err)
	}
	obj, err := obs.Get(ctx, object)
	if err != nil {
		return true, fmt.Errorf("cannot read the %s: %w", what, err)
	}
	defer obj.Close()
	lw := &lastByteWriter{w: w}
	if _, err := io.Copy(lw, obj); err != nil {
		return true, fmt.Errorf("cannot read the %s: %w", what, err)
	}
	if lw.n > 0 && lw.last != '\n' {
		if newline {
			io.WriteString(w, "\n")
			return true, nil
		}
		return false, nil
	}
	return true, nil
}

// lastByteWriter passes writes through and remembers the last byte.
type lastByteWriter struct {
	w    io.Writer
	n    int64
	last byte
}

func (l *lastByteWriter) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	if n > 0 {
		l.n += int64(n)
		l.last = p[n-1]
	}
	return n, err
}
