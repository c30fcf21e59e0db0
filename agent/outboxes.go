package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kanade/kanade-agent/outbox"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
)

// inlineOutputMax is the largest stdout or stderr sent inline in an
// ExecResult; larger output is offloaded to the result_output object store.
const inlineOutputMax = 256 << 10

// Outbox names, as reported in the heartbeat.
const (
	outboxResults   = "results"
	outboxEvents    = "events"
	outboxObs       = "obs"
	outboxInventory = "inventory"
)

func newOutbox[T any](a *Agent, name string, subj func(T) (string, error), prep func(context.Context, string, T) (T, error)) (*outbox.Outbox[T], error) {
	return openOutbox(a, outbox.Options[T]{Name: name, Subject: subj, Prepare: prep})
}

func newOutboxAck[T any](a *Agent, name string, subj func(T) (string, error), onAck func(string, T)) (*outbox.Outbox[T], error) {
	return openOutbox(a, outbox.Options[T]{Name: name, Subject: subj, OnAck: onAck})
}

// outboxMaxBytes bounds each outbox's pending bytes on disk
// (outbox.Options.MaxBytes): room for days of results with large output
// while the server is away, and far less for the small, frequent items.
// A full outbox refuses new items (outbox.ErrFull); the results outbox's
// caller keeps a refused result in memory and retries it until stored.
var outboxMaxBytes = map[string]int64{
	outboxResults:   1 << 30,   // 1 GiB: up to 64 MiB per result
	outboxEvents:    64 << 20,  // 64 MiB: EventStarted, ~300 bytes each
	outboxObs:       256 << 20, // 256 MiB: ObsEvents, emit lines included
	outboxInventory: 256 << 20, // 256 MiB: inventory reports, the latest matter most
}

func openOutbox[T any](a *Agent, o outbox.Options[T]) (*outbox.Outbox[T], error) {
	name := o.Name
	if o.MaxBytes == 0 {
		o.MaxBytes = outboxMaxBytes[name]
	}
	o.Dir = filepath.Join(a.opts.DataDir, "outbox", name)
	o.Logger = a.log
	ob, err := outbox.New(o)
	if err != nil {
		return nil, fmt.Errorf("agent: %s outbox: %w", name, err)
	}
	return ob, nil
}

// openOutboxes opens the results, events, obs and inventory outboxes,
// returning ctx.Err() between them once ctx ended (opening one reads its
// pending items). The caller closes those opened on error.
func (a *Agent) openOutboxes(ctx context.Context) error {
	var err error
	if a.results, err = newOutbox(a, outboxResults, func(r wire.ExecResult) (string, error) {
		return subject.Result(r.RequestID)
	}, a.offloadOutput); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if a.events, err = newOutbox(a, outboxEvents, func(e wire.EventStarted) (string, error) {
		return subject.EventStarted(e.ExecID, e.PcID)
	}, nil); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	pc := a.opts.PcID
	if a.obs, err = newOutbox(a, outboxObs, func(wire.ObsEvent) (string, error) {
		return subject.Obs(pc)
	}, nil); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return a.openInventory()
}

// offloadOutput uploads stdout or stderr over inlineOutputMax to
// result_output as <request_id>/<pc_id>/stdout|stderr (resultOutputKey)
// and empties the inline field. It runs at drain time, so results stored
// while offline are offloaded when the server is back; a failed upload is
// a failed publish attempt.
func (a *Agent) offloadOutput(ctx context.Context, _ string, r wire.ExecResult) (wire.ExecResult, error) {
	if len(r.Stdout) <= inlineOutputMax && len(r.Stderr) <= inlineOutputMax {
		return r, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	store, err := a.js.ObjectStore(ctx, subject.ObjectResultOutput)
	if err != nil {
		return r, fmt.Errorf("agent: result_output: %w", err)
	}
	for _, f := range []struct {
		name   string
		inline *string
		key    *string
	}{{"stdout", &r.Stdout, &r.StdoutObject}, {"stderr", &r.Stderr, &r.StderrObject}} {
		if len(*f.inline) <= inlineOutputMax {
			continue
		}
		key, err := resultOutputKey(r, f.name)
		if err != nil {
			return r, err
		}
		if _, err := store.PutBytes(ctx, key, []byte(*f.inline)); err != nil {
			return r, fmt.Errorf("agent: upload %s: %w", key, err)
		}
		*f.inline, *f.key = "", key
	}
	return r, nil
}

// resultOutputKey returns the result_output object name of r's stdout or
// stderr: <request_id>/<pc_id>/<stream>. Upstream names it
// <request_id>/<stream>, which every PC of a fan-out shares, so one PC's
// upload replaced another's; the pc_id makes it one object per result
// (a PC runs a request once). The backend follows the stdout_object and
// stderr_object fields, so the name is free to choose (docs/protocol.md).
func resultOutputKey(r wire.ExecResult, stream string) (string, error) {
	if _, err := subject.ResultOutputKey(r.RequestID, stream); err != nil {
		return "", err
	}
	if err := subject.ValidToken("pc_id", r.PcID); err != nil {
		return "", err
	}
	return r.RequestID + "/" + r.PcID + "/" + stream, nil
}

// each calls f for every open outbox, as its name and a generic view.
func (a *Agent) eachOutbox(f func(name string, o outboxView)) {
	if a.results != nil {
		f(outboxResults, a.results)
	}
	if a.events != nil {
		f(outboxEvents, a.events)
	}
	if a.obs != nil {
		f(outboxObs, a.obs)
	}
	if a.invBox != nil {
		f(outboxInventory, a.invBox)
	}
}

// outboxView is what the agent needs of an Outbox whatever its item type.
type outboxView interface {
	Serve(context.Context) (func(), error)
	Stats() outbox.Stats
	Flush(context.Context) error
	Close() error
}

// drainers returns the Serve functions of every outbox, with the connection
// handed over first. An outbox served holds a goroutine only while it has
// items to deliver (and IdleLinger after).
func (a *Agent) drainers() []func(context.Context) (func(), error) {
	var out []func(context.Context) (func(), error)
	a.results.SetJetStream(a.js)
	a.events.SetJetStream(a.js)
	a.obs.SetJetStream(a.js)
	if a.invBox != nil {
		a.invBox.SetJetStream(a.js)
	}
	a.eachOutbox(func(_ string, o outboxView) { out = append(out, o.Serve) })
	return out
}

// outboxStats reports every outbox for the heartbeat.
func (a *Agent) outboxStats() map[string]wire.OutboxStats {
	m := map[string]wire.OutboxStats{}
	a.eachOutbox(func(name string, o outboxView) {
		s := o.Stats()
		m[name] = wire.OutboxStats{Pending: s.Pending, OldestAgeSecs: s.OldestAge.Seconds(), Stuck: s.Stuck}
	})
	return m
}

// finalFlush gives the drains up to d to empty every outbox at shutdown,
// but only if the protocol's streams were ever found: without them nothing
// can be delivered, and a stop during startup would wait d for nothing.
func (a *Agent) finalFlush(d time.Duration) {
	if !a.infraUp.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	a.flushOutboxes(ctx)
}

// flushOutboxes waits until every outbox has finished what it held when
// called (outbox.Flush: acknowledged, or moved aside as stuck or corrupt),
// the connection goes down, or ctx ends. It is the one place that waits for
// the outboxes to drain, and it does not poll.
func (a *Agent) flushOutboxes(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	status := a.nc.StatusChanged(nats.DISCONNECTED, nats.CLOSED)
	defer a.nc.RemoveStatusListener(status)
	if !a.nc.IsConnected() {
		return
	}
	go func() {
		select {
		case <-status:
			cancel()
		case <-ctx.Done():
		}
	}()
	var wg sync.WaitGroup
	a.eachOutbox(func(_ string, o outboxView) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = o.Flush(ctx) // ctx ended or the outbox closed: nothing more to wait for
		}()
	})
	wg.Wait()
}

// closeStores closes the outboxes and the ledger.
func (a *Agent) closeStores() {
	a.eachOutbox(func(name string, o outboxView) {
		if err := o.Close(); err != nil {
			a.log.Warn("closing outbox", "outbox", name, "err", err)
		}
	})
	if a.ledger != nil {
		if err := a.ledger.Close(); err != nil {
			a.log.Warn("closing ledger", "err", err)
		}
	}
}
