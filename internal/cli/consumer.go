package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kanade/kanade-agent/internal/execconsumer"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go/jetstream"
)

var consumerCmd = &command{
	name:    "consumer",
	args:    "sync [--pc PC ...] [--watch] | ls",
	summary: "create and update the agents' EXEC replay consumers (for bind-mode agents)",
	long: `Each agent replays the commands it missed from stream EXEC through its
durable consumer agent-<pc_id>. An agent run with --exec-consumer bind
never creates that consumer (its NATS user may not: see docs/cluster.md);
sync does, with exactly the filters and settings the agent would use:
commands.all, commands.pc.<pc_id> and commands.group.<g> for each group of
the union of its agent_groups and agent_groups_derived keys (a group name
that cannot be a subject token is left out, as the agent does), deliver
policy last per subject, explicit acks, ack wait 30s, max ack pending 1024.

sync --pc PC (repeatable) syncs those PCs. Without --pc it syncs every PC
that has a key in agent_groups or agent_groups_derived and every PC that
already has an agent-* consumer on EXEC. It prints each consumer it
created or updated, with the filters added (+) and removed (-), then a
count. A PC whose groups document does not decode is reported and left as
it is (exit 1), as the agent keeps its previous groups. A consumer whose
deliver policy differs cannot be updated by the server: delete it
('nats consumer rm EXEC agent-<pc_id>') and sync again.

sync --watch then follows both groups buckets and syncs a PC each time its
keys change, until interrupted: run it beside the agents so that their
consumers follow their groups (a bind-mode agent warns while its
consumer's filters differ from its groups).

ls lists the agent-* consumers of EXEC with their filters and the
commands pending for each.`,
	run: runConsumer,
}

// pcFlags is a repeatable --pc flag.
type pcFlags []string

func (l *pcFlags) String() string { return strings.Join(*l, ",") }

func (l *pcFlags) Set(v string) error {
	if err := subject.ValidPcID(v); err != nil {
		return err
	}
	if _, err := execconsumer.Name(v); err != nil {
		return err
	}
	*l = append(*l, v)
	return nil
}

func runConsumer(ctx context.Context, inv *invocation, args []string) error {
	fs := inv.flags()
	var pcs pcFlags
	fs.Var(&pcs, "pc", "sync: only the PC with pc id `ID` (repeatable)")
	watch := fs.Bool("watch", false, "sync: then follow the groups buckets and sync each PC whose groups change, until interrupted")
	pos, err := inv.parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErrorf("consumer needs a subcommand: sync or ls")
	}
	switch sub, rest := pos[0], pos[1:]; {
	case len(rest) > 0:
		return usageErrorf("consumer %s takes no arguments, got %q (name PCs with --pc)", sub, rest)
	case sub == "sync":
		return consumerSync(ctx, inv, pcs, *watch)
	case sub == "ls" || sub == "list":
		if len(pcs) > 0 || *watch {
			return usageErrorf("consumer ls takes no --pc or --watch")
		}
		return consumerList(ctx, inv)
	default:
		return usageErrorf("unknown consumer subcommand %q: want sync or ls", sub)
	}
}

// syncer creates and updates agent-<pc> consumers.
type syncer struct {
	js      jetstream.JetStream
	exec    jetstream.Stream
	groups  jetstream.KeyValue // agent_groups
	derived jetstream.KeyValue // agent_groups_derived
	out     io.Writer
	errOut  io.Writer

	created, updated, unchanged, failed int
}

// syncOutcome is what syncing one PC did.
type syncOutcome int

const (
	syncUnchanged syncOutcome = iota
	syncCreated
	syncUpdated
)

func consumerSync(ctx context.Context, inv *invocation, pcs []string, watch bool) error {
	nc, js, err := inv.jetStream(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	s := &syncer{js: js, out: inv.env.Stdout, errOut: inv.env.Stderr}
	octx, cancel := context.WithTimeout(ctx, inv.g.timeout)
	defer cancel()
	if s.exec, err = js.Stream(octx, subject.StreamExec); err != nil {
		return jsError("stream "+subject.StreamExec, err)
	}
	if s.groups, err = js.KeyValue(octx, subject.BucketGroups); err != nil {
		return jsError("bucket "+subject.BucketGroups, err)
	}
	if s.derived, err = js.KeyValue(octx, subject.BucketGroupsDerived); err != nil {
		return jsError("bucket "+subject.BucketGroupsDerived, err)
	}
	// With --watch the watches start first: a change made while the full
	// sync runs is synced again after it, never missed.
	var w *groupWatch
	if watch {
		if w, err = s.watch(ctx, pcs); err != nil {
			return err
		}
		defer w.stop()
	}
	if len(pcs) == 0 {
		if pcs, err = s.allPCs(octx); err != nil {
			return err
		}
	}
	cancel()
	for _, pc := range pcs {
		s.syncOne(ctx, inv.g.timeout, pc)
	}
	fmt.Fprintf(s.out, "synced %d consumers: %d created, %d updated, %d unchanged, %d failed\n",
		len(pcs), s.created, s.updated, s.unchanged, s.failed)
	if !watch {
		if s.failed > 0 {
			return &exitError{code: ExitFailure}
		}
		return nil
	}
	fmt.Fprintf(s.errOut, "kanade consumer: following %s and %s; interrupt to stop\n", subject.BucketGroups, subject.BucketGroupsDerived)
	return w.run(ctx, func(pc string) { s.syncOne(ctx, inv.g.timeout, pc) })
}

// allPCs lists, sorted, the PCs with a key in either groups bucket and
// those with an agent-* consumer on EXEC.
func (s *syncer) allPCs(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	for _, kv := range []jetstream.KeyValue{s.groups, s.derived} {
		l, err := kv.ListKeys(ctx)
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			continue
		}
		if err != nil {
			return nil, jsError("list "+kv.Bucket(), err)
		}
		for k := range l.Keys() {
			seen[k] = true
		}
		_ = l.Stop()
		if ctx.Err() != nil { // the lister ends silently with its ctx
			return nil, jsError("list "+kv.Bucket(), ctx.Err())
		}
	}
	names := s.exec.ConsumerNames(ctx)
	for n := range names.Name() {
		if pc, ok := strings.CutPrefix(n, "agent-"); ok {
			seen[pc] = true
		}
	}
	if err := names.Err(); err != nil {
		return nil, jsError("list the consumers of "+subject.StreamExec, err)
	}
	var out []string
	for pc := range seen {
		if err := subject.ValidPcID(pc); err != nil {
			fmt.Fprintf(s.errOut, "kanade consumer: skipping %q: %v\n", pc, err)
			continue
		}
		if _, err := execconsumer.Name(pc); err != nil {
			fmt.Fprintf(s.errOut, "kanade consumer: skipping %q: %v\n", pc, err)
			continue
		}
		out = append(out, pc)
	}
	slices.Sort(out)
	return out, nil
}

// syncOne syncs pc's consumer within timeout, printing what it did and
// counting it.
func (s *syncer) syncOne(ctx context.Context, timeout time.Duration, pc string) {
	octx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	what, detail, err := s.sync(octx, pc)
	name, _ := execconsumer.Name(pc)
	switch {
	case err != nil:
		s.failed++
		fmt.Fprintf(s.errOut, "kanade consumer: %s: %s\n", name, oneLine(err.Error()))
	case what == syncCreated:
		s.created++
		fmt.Fprintf(s.out, "created %s: %s\n", name, detail)
	case what == syncUpdated:
		s.updated++
		fmt.Fprintf(s.out, "updated %s: %s\n", name, detail)
	default:
		s.unchanged++
	}
}

// sync creates or updates pc's consumer to execconsumer.Config for its
// groups now.
func (s *syncer) sync(ctx context.Context, pc string) (syncOutcome, string, error) {
	var lists [][]string
	for _, kv := range []jetstream.KeyValue{s.groups, s.derived} {
		e, err := kv.Get(ctx, pc)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // none, or deleted
		}
		if err != nil {
			return 0, "", jsError("read "+kv.Bucket()+" "+pc, err)
		}
		g, err := wire.DecodeGroups(e.Value())
		if err != nil {
			return 0, "", fmt.Errorf("%s %s does not decode, consumer left as it is (the agent keeps its previous groups too): %w", kv.Bucket(), pc, err)
		}
		lists = append(lists, g.Groups)
	}
	want, err := execconsumer.Config(pc, execconsumer.Groups(lists...))
	if err != nil {
		return 0, "", err
	}
	cons, err := s.exec.Consumer(ctx, want.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		if _, err := s.exec.CreateConsumer(ctx, want); err != nil {
			return 0, "", jsError("create", err)
		}
		return syncCreated, strings.Join(want.FilterSubjects, " "), nil
	}
	if err != nil {
		return 0, "", jsError("look up", err)
	}
	have := cons.CachedInfo().Config
	diffs := execconsumer.Differences(have, want)
	if len(diffs) == 0 {
		return syncUnchanged, "", nil
	}
	// What sync does not manage stays the operator's: replicas (an R1
	// consumer on an R3 stream), description, metadata.
	want.Replicas, want.Description, want.Metadata = have.Replicas, have.Description, have.Metadata
	if _, err := s.exec.UpdateConsumer(ctx, want); err != nil {
		return 0, "", jsError("update ("+strings.Join(diffs, "; ")+")", err)
	}
	return syncUpdated, strings.Join(diffs, "; "), nil
}

// groupWatch follows the two groups buckets.
type groupWatch struct {
	ws   []jetstream.KeyWatcher
	only map[string]bool // the PCs to follow; nil: all
}

// watch starts watching both groups buckets for changes (updates only).
func (s *syncer) watch(ctx context.Context, pcs []string) (*groupWatch, error) {
	w := &groupWatch{}
	if len(pcs) > 0 {
		w.only = map[string]bool{}
		for _, pc := range pcs {
			w.only[pc] = true
		}
	}
	for _, kv := range []jetstream.KeyValue{s.groups, s.derived} {
		kw, err := kv.WatchAll(ctx, jetstream.UpdatesOnly())
		if err != nil {
			w.stop()
			return nil, jsError("watch "+kv.Bucket(), err)
		}
		w.ws = append(w.ws, kw)
	}
	return w, nil
}

func (w *groupWatch) stop() {
	for _, kw := range w.ws {
		_ = kw.Stop()
	}
}

// run calls sync with the pc of each change until ctx ends. A key that is
// not a valid pc id is skipped.
func (w *groupWatch) run(ctx context.Context, sync func(pc string)) error {
	a, b := w.ws[0].Updates(), w.ws[1].Updates()
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case <-ctx.Done():
			return nil
		case e, ok = <-a:
		case e, ok = <-b:
		}
		if !ok {
			return errors.New("the watch of the groups buckets ended")
		}
		if e == nil {
			continue
		}
		pc := e.Key()
		if w.only != nil && !w.only[pc] {
			continue
		}
		if subject.ValidPcID(pc) != nil {
			continue
		}
		if _, err := execconsumer.Name(pc); err != nil {
			continue
		}
		sync(pc)
	}
}

func consumerList(ctx context.Context, inv *invocation) error {
	js, octx, done, err := inv.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	st, err := js.Stream(octx, subject.StreamExec)
	if err != nil {
		return jsError("stream "+subject.StreamExec, err)
	}
	var infos []*jetstream.ConsumerInfo
	l := st.ListConsumers(octx)
	for info := range l.Info() {
		if strings.HasPrefix(info.Name, "agent-") {
			infos = append(infos, info)
		}
	}
	if err := l.Err(); err != nil {
		return jsError("list the consumers of "+subject.StreamExec, err)
	}
	slices.SortFunc(infos, func(x, y *jetstream.ConsumerInfo) int { return strings.Compare(x.Name, y.Name) })
	tw := tabwriter.NewWriter(inv.env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPENDING\tACK_PENDING\tFILTERS")
	for _, info := range infos {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", info.Name, info.NumPending, info.NumAckPending,
			strings.Join(execconsumer.FiltersOf(info.Config), " "))
	}
	return tw.Flush()
}
