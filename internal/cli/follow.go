package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var obsCmd = &command{
	name:    "obs",
	args:    "tail [--pc PC] [--since D] [--count N] [--json]",
	summary: "follow the obs events (the PCs' timeline) live",
	long: `obs tail follows stream OBS_EVENTS (subjects obs.<pc_id>) and prints one
line per event as it arrives:

  <at> <pc_id> <kind> <source> <event_record_id or -> <payload as compact JSON>

--pc limits it to one PC (obs.<PC>). --since D starts D ago (such as 1h)
instead of with the next event. --count N stops after N events (default:
until interrupted). --json prints each event as the JSON stored instead.
An event that does not decode is reported on stderr and skipped.`,
	run: runObs,
}

var tailCmd = &command{
	name:    "tail",
	args:    "PC RESULT_ID [--follow] [--every D] [--key FILE]",
	summary: "print the live output of a running command (job.tail)",
	long: `Sends {"result_id":RESULT_ID} on job.tail.<PC> and prints what the agent
holds of that run's output: the last 128 KiB of its stdout (on stdout) and
of its stderr (on stderr), then a status line on stderr. The result_id is
the one of the run's events.started and ExecResult. The agent keeps a run's
output while it runs and for a minute after. Exits 1 when the agent holds
none for RESULT_ID (the run is not on that PC, or finished over a minute
ago: its ExecResult is in stream RESULTS) or no agent answers.

--follow asks again every --every (default 2s), printing only what is new,
until the run has finished.

An agent that enforces command signatures answers only a request signed
for its own subject: give --key FILE as for 'logs --key'.`,
	run: runTail,
}

func runObs(ctx context.Context, inv *invocation, args []string) error {
	fs := inv.flags()
	pc := fs.String("pc", "", "only the events of the PC with pc id `ID`")
	since := fs.Duration("since", 0, "start `D` ago (such as 1h) instead of with the next event")
	count := fs.Int("count", 0, "stop after `N` events (0: until interrupted)")
	asJSON := fs.Bool("json", false, "print each event's stored JSON")
	pos, err := inv.parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "tail" {
		return usageErrorf("obs needs the subcommand tail (kanade obs tail [--pc PC])")
	}
	if *count < 0 || *since < 0 {
		return usageErrorf("--count and --since must not be negative")
	}
	filter := subject.ObsWildcard
	if *pc != "" {
		if filter, err = subject.Obs(*pc); err != nil {
			return usageErr(err)
		}
	}
	nc, js, err := inv.jetStream(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverNewPolicy}
	if *since > 0 {
		start := time.Now().Add(-*since)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	cctx, cancel := context.WithTimeout(ctx, inv.g.timeout)
	cons, err := js.OrderedConsumer(cctx, subject.StreamObs, cfg)
	cancel()
	if err != nil {
		return jsError("stream "+subject.StreamObs, err)
	}
	msgs := make(chan jetstream.Msg, 64)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-ctx.Done():
		}
	}, jetstream.ConsumeErrHandler(func(jetstream.ConsumeContext, error) {}))
	if err != nil {
		return jsError("follow "+filter, err)
	}
	defer cc.Stop()
	for n := 0; *count == 0 || n < *count; {
		var m jetstream.Msg
		select {
		case <-ctx.Done():
			return nil
		case m = <-msgs:
		}
		if *asJSON {
			if err := writeLine(inv.env.Stdout, strings.TrimSpace(string(m.Data()))); err != nil {
				return err
			}
			n++
			continue
		}
		ev, err := wire.DecodeObsEvent(m.Data())
		if err != nil {
			fmt.Fprintf(inv.env.Stderr, "kanade obs tail: skipping a malformed event on %s: %s\n", m.Subject(), oneLine(err.Error()))
			continue
		}
		if err := writeLine(inv.env.Stdout, obsLine(ev)); err != nil {
			return err
		}
		n++
	}
	return nil
}

// obsLine formats one event for obs tail.
func obsLine(ev *wire.ObsEvent) string {
	rid := ev.EventRecordID
	if rid == "" {
		rid = "-"
	}
	payload := "null"
	if b, err := compact(ev.Payload); err == nil && len(b) > 0 {
		payload = string(b)
	}
	return strings.Join([]string{ev.At.UTC().Format(time.RFC3339Nano), ev.PcID, ev.Kind, ev.Source, rid, payload}, " ")
}

func runTail(ctx context.Context, inv *invocation, args []string) error {
	fs := inv.flags()
	follow := fs.Bool("follow", false, "ask again every --every until the run finishes, printing what is new")
	every := fs.Duration("every", 2*time.Second, "with --follow, ask every `D`")
	keyFile := fs.String("key", "", "sign the request with the key in `FILE`, for agents that enforce signatures (see 'kanade keygen')")
	pos, err := inv.parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageErrorf("want PC and RESULT_ID (kanade tail PC RESULT_ID), got %d arguments: %q", len(pos), pos)
	}
	pc, resultID := pos[0], pos[1]
	if *every <= 0 {
		return usageErrorf("--every %v must be positive", *every)
	}
	subj, err := subject.JobTail(pc)
	if err != nil {
		return usageErr(err)
	}
	key, err := loadSigner(*keyFile)
	if err != nil {
		return err
	}
	body, err := json.Marshal(wire.JobTailRequest{ResultID: resultID})
	if err != nil {
		return err
	}
	nc, err := inv.connect(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	ask := func() (*wire.JobTailReply, error) {
		msg := &nats.Msg{Subject: subj, Data: body}
		if err := key.sign(msg, "job.tail request"); err != nil {
			return nil, err
		}
		rctx, cancel := context.WithTimeout(ctx, inv.g.timeout)
		defer cancel()
		m, err := nc.RequestMsgWithContext(rctx, msg)
		if err != nil {
			return nil, requestError(subj, pc, inv.g.timeout, err)
		}
		r, err := wire.DecodeJobTailReply(m.Data)
		if err != nil {
			return nil, fmt.Errorf("malformed reply on %s: %s", subj, oneLine(err.Error()))
		}
		if r.Error != "" {
			return nil, fmt.Errorf("pc %s answered: %s", pc, oneLine(r.Error))
		}
		return r, nil
	}
	var prevOut, prevErr string
	for first := true; ; first = false {
		r, err := ask()
		if err != nil {
			return err
		}
		if !r.Found {
			if !first {
				fmt.Fprintf(inv.env.Stderr, "kanade tail: %s finished; pc %s no longer holds its output (see its result)\n", resultID, pc)
				return nil
			}
			return fmt.Errorf("pc %s holds no live output for result_id %s: the run is not on that PC, or finished over a minute ago (its result is in stream RESULTS)", pc, resultID)
		}
		if _, err := fmt.Fprint(inv.env.Stdout, newPart(prevOut, r.Stdout, r.StdoutTruncated)); err != nil {
			return err
		}
		fmt.Fprint(inv.env.Stderr, newPart(prevErr, r.Stderr, r.StderrTruncated))
		prevOut, prevErr = r.Stdout, r.Stderr
		if !*follow || !r.Running {
			fmt.Fprintf(inv.env.Stderr, "kanade tail: %s %s%s\n", resultID, map[bool]string{true: "running", false: "finished"}[r.Running], truncNote(r))
			return nil
		}
		t := time.NewTimer(*every)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// truncNote says which streams lost older output.
func truncNote(r *wire.JobTailReply) string {
	switch {
	case r.StdoutTruncated && r.StderrTruncated:
		return " (older stdout and stderr dropped: the agent keeps the last 128 KiB of each)"
	case r.StdoutTruncated:
		return " (older stdout dropped: the agent keeps the last 128 KiB)"
	case r.StderrTruncated:
		return " (older stderr dropped: the agent keeps the last 128 KiB)"
	}
	return ""
}

// newPart returns what cur, the latest tail of a stream, adds to prev, the
// one printed before. When the ring dropped the front, the end of prev is
// looked for in cur; when it is not found, "[...]" marks the gap.
func newPart(prev, cur string, truncated bool) string {
	if strings.HasPrefix(cur, prev) {
		return cur[len(prev):]
	}
	if truncated && prev != "" {
		anchor := prev[max(0, len(prev)-256):]
		if i := strings.LastIndex(cur, anchor); i >= 0 {
			return cur[i+len(anchor):]
		}
	}
	return "\n[...]\n" + cur
}

// writeLine writes s and a newline to w.
func writeLine(w interface{ Write([]byte) (int, error) }, s string) error {
	_, err := w.Write([]byte(s + "\n"))
	return err
}
