package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kanade/kanade-agent/internal/execconsumer"
	"github.com/kanade/kanade-agent/subject"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ExecConsumerMode says how the agent gets its durable EXEC replay
// consumer agent-<pc_id> (Options.ExecConsumer).
type ExecConsumerMode string

const (
	// ExecConsumerCreate (the default, and upstream's behaviour): the agent
	// creates the consumer, or updates it to its own filters, at start and
	// whenever its effective groups change. Its NATS user needs
	// $JS.API.CONSUMER.CREATE.EXEC.agent-<pc_id>, which also lets it set
	// any filter, another PC's included (docs/cluster.md, gap 2).
	ExecConsumerCreate ExecConsumerMode = "create"
	// ExecConsumerBind: the agent never creates, updates or deletes the
	// consumer; it only looks it up and consumes it. The operator creates
	// and updates it with the PC's filters (kanade consumer sync, which
	// builds them as the agent would), so the agent's NATS user needs only
	// $JS.API.CONSUMER.INFO.EXEC.agent-<pc_id>,
	// $JS.API.CONSUMER.MSG.NEXT.EXEC.agent-<pc_id> and
	// $JS.ACK.EXEC.agent-<pc_id>.>. A missing consumer is waited for
	// (retried with the usual backoff, cut short by a reconnect), never
	// fatal; one deleted while the agent runs is bound again once it
	// reappears; filters that differ from the agent's are logged as a
	// warning.
	ExecConsumerBind ExecConsumerMode = "bind"
)

// valid reports whether m is a known mode or empty (the default).
func (m ExecConsumerMode) valid() bool {
	return m == "" || m == ExecConsumerCreate || m == ExecConsumerBind
}

// commandFilters lists the agent's own command subjects: commands.all,
// commands.pc.<pc_id> and commands.group.<g> per effective group, as
// execconsumer.Filters builds them for the operator's CLI too.
func (a *Agent) commandFilters() []string {
	f, _ := execconsumer.Filters(a.opts.PcID, a.kv.effectiveGroups()) // pc id checked by Options.Validate
	return f
}

// runConsumer keeps the durable EXEC replay consumer agent-<pc_id>
// consumed until ctx ends. In create mode it creates or updates the
// consumer with the agent's filters, again whenever the effective groups
// change. In bind mode it only looks the consumer up, waits for it while it
// is missing, and checks its filters (bindCheck). In both modes a consume
// that ends (the consumer was deleted under a pending pull) or whose
// consumer is gone (looked up after missing heartbeats or a pull without
// responders) starts over: create mode re-creates, bind mode re-binds.
func (a *Agent) runConsumer(ctx context.Context) {
	name, _ := execconsumer.Name(a.opts.PcID) // checked by Options.Validate
	bind := a.opts.ExecConsumer == ExecConsumerBind
	what := "EXEC consumer " + name
	if bind {
		what += " (bind mode: created by the operator, 'kanade consumer sync')"
	}
	var chk bindCheck
	var pause backoff // between consumes that end at once
	for ctx.Err() == nil {
		var cons jetstream.Consumer
		var cc jetstream.ConsumeContext
		gone := make(chan struct{}, 1)
		err := a.retry(ctx, what, func(ctx context.Context) error {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			var err error
			if bind {
				cons, err = a.js.Consumer(cctx, subject.StreamExec, name)
				if errors.Is(err, jetstream.ErrConsumerNotFound) {
					err = fmt.Errorf("consumer %s not found on stream %s: in bind mode the operator creates it: %w", name, subject.StreamExec, err)
				}
			} else {
				cfg, _ := execconsumer.Config(a.opts.PcID, a.kv.effectiveGroups())
				cons, err = a.js.CreateOrUpdateConsumer(cctx, subject.StreamExec, cfg)
			}
			if err != nil {
				// Ready does not wait for a consumer that cannot be had
				// yet (one the operator has not created, a stream gone
				// since the infrastructure check, a server refusing):
				// live commands arrive meanwhile, and the replay follows.
				a.replayOnce.Do(func() { close(a.replayUp) })
				return err
			}
			cc, err = cons.Consume(func(m jetstream.Msg) {
				a.in.replay(ctx, m.Subject(), m.Headers(), m.Data(), func() {
					if err := m.Ack(); err != nil {
						a.log.Debug("cannot ack replayed command", "err", err)
					}
				})
			}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				a.log.Debug("EXEC consumer", "err", err)
				if errors.Is(err, jetstream.ErrNoHeartbeat) || errors.Is(err, nats.ErrNoResponders) ||
					errors.Is(err, jetstream.ErrConsumerNotFound) {
					signal(gone) // perhaps deleted while no pull was pending: look it up
				}
			}))
			if err == nil {
				a.replayOnce.Do(func() { close(a.replayUp) })
			}
			return err
		})
		if err != nil {
			return
		}
		started := time.Now()
		if bind {
			chk.start(bindSettle) // the groups may still be being read
		}
		switch a.consumeUntil(ctx, cons, cc, gone, bind, &chk) {
		case consumeStopped:
			return
		case consumeEnded:
			// A consume that ends at once (a server refusing the pulls)
			// is not started again in a tight loop.
			if time.Since(started) > time.Minute {
				pause = backoff{}
			} else if !sleepCtx(ctx, pause.next()) {
				return
			}
		}
	}
}

// consumeEnd says why consumeUntil returned.
type consumeEnd int

const (
	consumeStopped consumeEnd = iota // ctx ended
	consumeEnded                     // the consume ended by itself
	consumeAgain                     // the consumer is gone, or (create mode) the groups changed
)

// consumeUntil waits while cc consumes cons, until ctx ends (cc is
// stopped) or the consumer must be created or bound again: the consume
// ended, the consumer is gone, or (create mode) the groups changed. In
// bind mode it checks the filters (chk) at its times and after each change
// of the groups.
func (a *Agent) consumeUntil(ctx context.Context, cons jetstream.Consumer, cc jetstream.ConsumeContext,
	gone <-chan struct{}, bind bool, chk *bindCheck) consumeEnd {
	stop := func() {
		cc.Stop()
		<-cc.Closed()
	}
	for {
		select {
		case <-ctx.Done():
			cc.Stop()
			return consumeStopped
		case <-cc.Closed():
			a.log.Info("EXEC consumer stopped; looking it up again", "bind", bind)
			return consumeEnded
		case <-gone:
			info, err := a.consumerInfo(ctx, cons)
			if errors.Is(err, jetstream.ErrConsumerNotFound) {
				a.log.Warn("EXEC consumer is gone (deleted?); looking it up again", "bind", bind)
				stop()
				return consumeAgain
			}
			if err == nil && bind {
				a.bindCompare(chk, info.Config)
			}
		case <-a.grpChanged:
			if !bind {
				stop()
				return consumeAgain
			}
			chk.start(0) // the operator's sync follows the groups: check after a moment
		case <-chk.due():
			info, err := a.consumerInfo(ctx, cons)
			switch {
			case errors.Is(err, jetstream.ErrConsumerNotFound):
				a.log.Warn("EXEC consumer is gone (deleted?); looking it up again", "bind", bind)
				stop()
				return consumeAgain
			case err != nil:
				a.log.Debug("EXEC consumer info", "err", err)
				chk.again()
			default:
				a.bindCompare(chk, info.Config)
			}
		}
	}
}

// consumerInfo asks the server for cons's current info.
func (a *Agent) consumerInfo(ctx context.Context, cons jetstream.Consumer) (*jetstream.ConsumerInfo, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return cons.Info(cctx)
}

// bindCheck schedules the checks of a bound consumer's filters against the
// agent's: bindSettle after binding and about a second after each change
// of the groups, then, while they differ, again on the retry backoff (1 s
// doubling to 5 min) until they match. logged is the difference last logged, so each
// is logged once.
type bindCheck struct {
	timer  *time.Timer
	b      backoff
	logged string
}

// bindSettle is how long after binding the filters are first checked:
// the agent's groups are read from KV meanwhile.
const bindSettle = 5 * time.Second

// start starts the backoff over and schedules a check after first, or
// after its first step (about a second: the operator's sync follows a
// change of the groups meanwhile) when first is 0.
func (c *bindCheck) start(first time.Duration) {
	c.b = backoff{}
	if first <= 0 {
		c.again()
		return
	}
	c.schedule(first)
}

// again schedules the next check on the backoff.
func (c *bindCheck) again() { c.schedule(c.b.next()) }

// schedule schedules the next check after d.
func (c *bindCheck) schedule(d time.Duration) {
	if c.timer == nil {
		c.timer = time.NewTimer(d)
		return
	}
	c.timer.Reset(d)
}

// due fires when a check is due; nil (never) when none is scheduled.
func (c *bindCheck) due() <-chan time.Time {
	if c.timer == nil {
		return nil
	}
	return c.timer.C
}

// bindCompare compares a bound consumer's filters with the agent's,
// logging a difference once (a WARN naming the missing and extra filters)
// and its end once, and schedules the next check while they differ.
func (a *Agent) bindCompare(c *bindCheck, cfg jetstream.ConsumerConfig) {
	want := a.commandFilters()
	missing, extra := execconsumer.Diff(execconsumer.FiltersOf(cfg), want)
	if len(missing)+len(extra) == 0 {
		if c.logged != "" {
			a.log.Info("EXEC consumer filters now match the agent's", "consumer", cfg.Durable, "filters", want)
		}
		c.logged = ""
		return
	}
	key := strings.Join(missing, ",") + "|" + strings.Join(extra, ",")
	if key != c.logged {
		c.logged = key
		a.log.Warn("EXEC consumer filters differ from the agent's: the operator must update it ('kanade consumer sync --pc "+a.opts.PcID+"'); "+
			"commands stored for a missing filter are not replayed (live ones still arrive through the core subscriptions), "+
			"and those of an extra filter are dropped (and acked) unrun",
			"consumer", cfg.Durable, "missing", missing, "extra", extra, "want", want, "have", slices.Clone(execconsumer.FiltersOf(cfg)))
	}
	c.again()
}
