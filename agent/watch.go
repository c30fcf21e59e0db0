package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// How the agent follows the KV buckets (docs/protocol.md, section 4)
// without a JetStream consumer per bucket:
//
//   - Core subscriptions on the buckets' subjects ($KV.<bucket>.<key>)
//     see every put, delete and purge as it is published: agent_config's
//     global, pcs.<pc_id> and groups.* keys, this pc's key in agent_groups
//     and agent_groups_derived, and every key of script_current and
//     script_status. A core message carries no revision and may overtake
//     the store, so it only says which key changed: the key is then read
//     by a direct get by subject (DIRECT.GET.KV_<bucket>.<subject>, which
//     per-agent permissions can restrict to the agent's own keys), and
//     read again a few times until the announced value is there.
//   - A snapshot when the state loop starts and after every reconnect:
//     the config and group keys are read one by one, the gate buckets are
//     walked by a short-lived consumer that is deleted once the walk is
//     done. A snapshot replaces the state only once complete (a partial
//     one keeps the previous state), so a key deleted while the agent was
//     away is noticed, even when its delete marker is gone.
//   - One goroutine per agent (stateLoop) reads, applies and recomputes:
//     the effective groups and config are applied in the order the
//     buckets changed, never from two goroutines at once.
//   - The gate state is live once both gate buckets were walked since the
//     last connect; a disconnect makes it stale (conn.go).
//
// The subscriptions are made before the snapshot, so a change is either in
// the snapshot or announced after it. A server that drops messages for the
// agent (a slow consumer) causes a new snapshot.

// kvOpHeader is the header of KV delete and purge markers; a message
// with jetstream.MarkerReasonHeader (a server's TTL or purge marker) is a
// deletion too, as nats.go's KV reads it.
const kvOpHeader = "KV-Operation"

// stateKey names one key of one bucket.
type stateKey struct{ bucket, key string }

// announce is what a core message said about a key, and how many times
// the key was read since without finding it.
type announce struct {
	del   bool
	data  []byte
	tries int
	due   time.Time
}

// stateLoop owns the agent's KV state updates.
type stateLoop struct {
	a     *Agent
	msgs  chan *nats.Msg
	subs  []*nats.Subscription
	drops int
	// pending are keys announced and not read yet; retry those read but
	// not found as announced yet.
	pending map[stateKey]*announce
	// kv caches the bucket handles of the walks.
	kv map[string]jetstream.KeyValue
	// needConfig, needGates and needSched ask for a snapshot of that part
	// (needSched: the local scheduler's buckets, schedule.go).
	needConfig, needGates, needSched bool
	// groups are the effective groups last applied.
	groups  []string
	fails   backoff
	nextTry time.Time
}

// maxPending bounds the announced keys waiting to be read; past it the
// announcements are dropped and a snapshot is taken instead.
const maxPending = 4096

// announceRetries is how long the loop waits, after each read that did
// not find the announced value, before reading again. A JetStream stream
// stores a message shortly after core subscribers see it; past the last
// retry the value read stands (a later change announced itself).
var announceRetries = []time.Duration{20 * time.Millisecond, 100 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second, 8 * time.Second}

// watchState starts the state loop. It runs until ctx ends.
func (a *Agent) watchState(ctx context.Context, wg *sync.WaitGroup) {
	l := &stateLoop{a: a, msgs: make(chan *nats.Msg, 256), pending: map[stateKey]*announce{},
		kv: map[string]jetstream.KeyValue{}, needConfig: true, needGates: true, needSched: !a.opts.DisableScheduler}
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.run(ctx)
	}()
}

// stateSubjects are the core subjects the loop subscribes to.
func (a *Agent) stateSubjects() []string {
	kv := func(bucket, key string) string { return "$KV." + bucket + "." + key }
	return append([]string{
		kv(subject.BucketConfig, subject.ConfigGlobalKey),
		kv(subject.BucketConfig, subject.ConfigPCsPrefix+a.opts.PcID),
		kv(subject.BucketConfig, subject.ConfigGroupsPrefix+"*"),
		kv(subject.BucketGroups, a.opts.PcID),
		kv(subject.BucketGroupsDerived, a.opts.PcID),
		kv(subject.BucketScriptCurrent, ">"),
		kv(subject.BucketScriptStatus, ">"),
	}, a.schedSubjects()...)
}

func (l *stateLoop) run(ctx context.Context) {
	a := l.a
	defer func() {
		for _, s := range l.subs {
			_ = s.Unsubscribe()
		}
	}()
	for _, subj := range a.stateSubjects() {
		s, err := a.nc.ChanSubscribe(subj, l.msgs)
		if err != nil {
			// Only a closed connection or a bad subject fail here.
			a.log.Error("cannot subscribe to KV subject", "subject", subj, "err", err)
			return
		}
		l.subs = append(l.subs, s)
	}
	// The subscriptions reach the server before the first snapshot; when
	// they cannot (disconnected), the reconnect asks for a snapshot again.
	_ = a.nc.FlushTimeout(5 * time.Second)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		rctx, endReads := a.kv.beginReads(ctx)
		l.step(rctx)
		endReads()
		wait := time.Hour
		if l.needConfig || l.needGates || l.needSched {
			wait = time.Until(l.nextTry)
		}
		for _, p := range l.pending {
			if p.tries > 0 {
				wait = min(wait, time.Until(p.due))
			} else {
				wait = 0
			}
		}
		resetTimer(timer, max(wait, 0))
		select {
		case <-ctx.Done():
			return
		case m := <-l.msgs:
			l.announced(m)
			// Take what else is queued before reading the buckets.
			for more := true; more; {
				select {
				case m := <-l.msgs:
					l.announced(m)
				default:
					more = false
				}
			}
		case <-a.kv.resync:
			l.needConfig, l.needGates, l.needSched = true, true, !a.opts.DisableScheduler
			l.fails, l.nextTry = backoff{}, time.Time{}
		case <-timer.C:
		}
	}
}

// announced records a core message on a KV subject.
func (l *stateLoop) announced(m *nats.Msg) {
	rest, ok := strings.CutPrefix(m.Subject, "$KV.")
	if !ok {
		return
	}
	bucket, key, ok := strings.Cut(rest, ".")
	if !ok {
		return
	}
	if len(l.pending) >= maxPending {
		l.overflow()
		return
	}
	del := m.Header.Get(kvOpHeader) != "" || m.Header.Get(jetstream.MarkerReasonHeader) != ""
	l.pending[stateKey{bucket, key}] = &announce{del: del, data: m.Data}
}

// overflow drops the announcements and asks for a snapshot instead.
func (l *stateLoop) overflow() {
	clear(l.pending)
	l.needConfig, l.needGates, l.needSched = true, true, !l.a.opts.DisableScheduler
}

// step takes the snapshots asked for and reads the announced keys due.
func (l *stateLoop) step(ctx context.Context) {
	a := l.a
	if n := l.dropped(); n > l.drops {
		l.drops = n
		a.log.Warn("KV announcements were dropped by a slow subscription; reading the buckets again")
		l.overflow()
	}
	if (l.needConfig || l.needGates || l.needSched) && !time.Now().Before(l.nextTry) {
		err := l.snapshot(ctx)
		if err == nil {
			l.fails = backoff{}
		} else if ctx.Err() == nil {
			d := l.fails.next()
			l.nextTry = time.Now().Add(d)
			a.log.Warn("cannot read the KV buckets; state kept", "err", err, "retry_in", d.Round(time.Millisecond))
		}
	}
	now := time.Now()
	for k, p := range l.pending {
		if ctx.Err() != nil {
			return
		}
		if p.tries > 0 && now.Before(p.due) {
			continue
		}
		found, err := l.refresh(ctx, k, p)
		switch {
		case err != nil:
			// The bucket cannot be read now: a snapshot brings the
			// state up to date once it can.
			delete(l.pending, k)
			if ctx.Err() == nil {
				a.log.Debug("cannot read announced KV key", "bucket", k.bucket, "key", k.key, "err", err)
				l.needPart(k.bucket)
			}
		case found || p.tries >= len(announceRetries):
			delete(l.pending, k)
		default:
			p.due = time.Now().Add(announceRetries[p.tries])
			p.tries++
		}
	}
}

func (l *stateLoop) needPart(bucket string) {
	if isSchedBucket(bucket) {
		l.needSched = true
	} else if isGateBucket(bucket) {
		l.needGates = true
	} else {
		l.needConfig = true
	}
}

func (l *stateLoop) dropped() int {
	n := 0
	for _, s := range l.subs {
		if d, err := s.Dropped(); err == nil {
			n += d
		}
	}
	return n
}

func isGateBucket(b string) bool {
	return b == subject.BucketScriptCurrent || b == subject.BucketScriptStatus
}

// entry is a key's latest value in its bucket; deleted when it has none
// (never written, deleted or purged).
type entry struct {
	deleted bool
	value   []byte
}

// errNoStream is returned by lastValue when the bucket does not exist.
var errNoStream = errors.New("agent: KV bucket not found")

// lastValue reads a key's latest value with a direct get by subject
// (<api>.DIRECT.GET.KV_<bucket>.$KV.<bucket>.<key>, as nats.go's KV Get
// does): the key is in the request subject, so a per-agent NATS user can be
// allowed exactly its own keys (docs/examples/permissions.conf), which a
// STREAM.MSG.GET request, whose subject is in the body, cannot. A replica
// that lags may answer; an announced value is therefore compared and read
// again until it arrives (refresh), and a snapshot is a point in time that
// the next announcement corrects.
func (l *stateLoop) lastValue(ctx context.Context, bucket, key string) (entry, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	subj := l.a.jsAPIPrefix() + "DIRECT.GET.KV_" + bucket + ".$KV." + bucket + "." + key
	m, err := l.a.nc.RequestWithContext(ctx, subj, nil)
	if errors.Is(err, nats.ErrNoResponders) {
		return entry{}, fmt.Errorf("%w: %s", errNoStream, bucket)
	}
	if err != nil {
		return entry{}, err
	}
	if len(m.Data) == 0 && m.Header.Get("Status") != "" {
		switch code := m.Header.Get("Status"); code {
		case "404":
			return entry{deleted: true}, nil
		default:
			return entry{}, fmt.Errorf("agent: KV read %s/%s: %s %s", bucket, key, code, m.Header.Get("Description"))
		}
	}
	if m.Header.Get(kvOpHeader) != "" || m.Header.Get(jetstream.MarkerReasonHeader) != "" {
		return entry{deleted: true}, nil
	}
	return entry{value: m.Data}, nil
}

// refresh reads an announced key and applies it; found is false while
// the leader does not have the announced value yet.
func (l *stateLoop) refresh(ctx context.Context, k stateKey, p *announce) (found bool, err error) {
	a := l.a
	if k.bucket == subject.BucketConfig && !l.wantScope(k.key) {
		return true, nil // a group scope of a group this pc is not in
	}
	e, err := l.lastValue(ctx, k.bucket, k.key)
	if err != nil {
		return false, err
	}
	found = e.deleted == p.del && (p.del || string(e.value) == string(p.data))
	s := a.kv
	switch k.bucket {
	case subject.BucketConfig:
		if l.setScope(k.key, e) {
			a.configChanged()
		}
	case subject.BucketGroups, subject.BucketGroupsDerived:
		g, ok := l.decodeGroups(k.bucket, e)
		if !ok {
			return found, nil
		}
		s.mu.Lock()
		if k.bucket == subject.BucketGroups {
			s.groups = g
		} else {
			s.derived = g
		}
		s.mu.Unlock()
		if err := l.groupsUpdated(ctx); err != nil {
			return found, err
		}
	case subject.BucketSchedules, subject.BucketJobs, subject.BucketFleetConfig:
		l.refreshSched(ctx, k, e)
	case subject.BucketScriptCurrent, subject.BucketScriptStatus:
		dst := s.current
		if k.bucket == subject.BucketScriptStatus {
			dst = s.status
		}
		s.mu.Lock()
		if e.deleted {
			delete(dst, k.key)
		} else {
			dst[k.key] = strings.TrimSpace(string(e.value))
		}
		s.mu.Unlock()
	}
	return found, nil
}

// wantScope reports whether an agent_config key is one of this pc's scopes.
func (l *stateLoop) wantScope(key string) bool {
	if key == subject.ConfigGlobalKey || key == subject.ConfigPCsPrefix+l.a.opts.PcID {
		return true
	}
	g, ok := strings.CutPrefix(key, subject.ConfigGroupsPrefix)
	if !ok {
		return false
	}
	return slices.Contains(l.a.kv.effectiveGroups(), g)
}

// setScope applies an agent_config value to the state and reports whether
// it changed. A scope that does not decode, or that upstream would refuse
// to decode (max_local_concurrent 0), is logged and ignored whole, as
// upstream's config supervisor does: the key keeps its previous value.
func (l *stateLoop) setScope(key string, e entry) bool {
	s := l.a.kv
	if e.deleted {
		s.mu.Lock()
		_, had := s.scopes[key]
		delete(s.scopes, key)
		s.mu.Unlock()
		return had
	}
	sc, err := wire.DecodeConfigScope(e.value)
	if err != nil {
		l.a.log.Warn("ignoring rejected config scope; keeping its previous value", "key", key, "err", err)
		return false
	}
	s.mu.Lock()
	s.scopes[key] = sc
	s.mu.Unlock()
	return true
}

// decodeGroups decodes a groups document, dropping invalid group names;
// ok is false for a document that does not decode (the previous groups are kept).
func (l *stateLoop) decodeGroups(bucket string, e entry) (groups []string, ok bool) {
	if e.deleted {
		return nil, true
	}
	g, err := wire.DecodeGroups(e.value)
	if err != nil {
		l.a.log.Warn("ignoring malformed groups document; keeping previous groups", "bucket", bucket, "err", err)
		return nil, false
	}
	valid := make([]string, 0, len(g.Groups))
	for _, name := range g.Groups {
		if err := subject.ValidToken("group", name); err != nil {
			l.a.log.Warn("ignoring invalid group name", "bucket", bucket, "err", err)
			continue
		}
		valid = append(valid, name)
	}
	return valid, true
}

// groupsUpdated follows a change of the group lists: the scopes of groups
// joined are read, those of groups left forgotten, the group subjects and
// the EXEC consumer follow, and the config is recomputed. A scope that
// cannot be read is an error (a snapshot follows).
func (l *stateLoop) groupsUpdated(ctx context.Context) error {
	a := l.a
	groups := a.kv.effectiveGroups()
	want := map[string]bool{}
	for _, g := range groups {
		want[subject.ConfigGroupsPrefix+g] = true
	}
	s := a.kv
	s.mu.Lock()
	for k := range s.scopes {
		if strings.HasPrefix(k, subject.ConfigGroupsPrefix) && !want[k] {
			delete(s.scopes, k)
		}
	}
	var missing []string
	for k := range want {
		if _, ok := s.scopes[k]; !ok {
			missing = append(missing, k)
		}
	}
	s.mu.Unlock()
	var err error
	for _, k := range missing {
		e, rerr := l.lastValue(ctx, subject.BucketConfig, k)
		if rerr != nil {
			err = rerr
			continue
		}
		l.setScope(k, e)
	}
	l.apply(groups)
	return err
}

// apply applies the state: when the effective groups moved, the group
// subjects and the EXEC consumer follow them; the config is recomputed.
func (l *stateLoop) apply(groups []string) {
	if !slices.Equal(groups, l.groups) {
		l.groups = groups
		l.a.groupsChanged()
		return
	}
	l.a.configChanged()
}

// snapshot reads the parts of the state asked for in full.
func (l *stateLoop) snapshot(ctx context.Context) error {
	var errs []error
	if l.needConfig {
		if err := l.snapshotConfig(ctx); err != nil {
			errs = append(errs, err)
		} else {
			l.needConfig = false
		}
	}
	if l.needGates {
		if err := l.snapshotGates(ctx); err != nil {
			errs = append(errs, err)
		} else {
			l.needGates = false
		}
	}
	if l.needSched {
		if err := l.snapshotSched(ctx); err != nil {
			errs = append(errs, err)
		} else {
			l.needSched = false
		}
	}
	return errors.Join(errs...)
}

// snapshotConfig reads this pc's group lists and config scopes one key at
// a time, and replaces the state with them once all were read.
func (l *stateLoop) snapshotConfig(ctx context.Context) error {
	a := l.a
	s := a.kv
	read := func(bucket, key string) (entry, error) { return l.lastValue(ctx, bucket, key) }
	ge, err := read(subject.BucketGroups, a.opts.PcID)
	if err != nil {
		return err
	}
	de, err := read(subject.BucketGroupsDerived, a.opts.PcID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	groups, derived := s.groups, s.derived
	s.mu.Unlock()
	if g, ok := l.decodeGroups(subject.BucketGroups, ge); ok {
		groups = g
	}
	if g, ok := l.decodeGroups(subject.BucketGroupsDerived, de); ok {
		derived = g
	}
	keys := []string{subject.ConfigGlobalKey, subject.ConfigPCsPrefix + a.opts.PcID}
	for _, g := range unionGroups(groups, derived) {
		keys = append(keys, subject.ConfigGroupsPrefix+g)
	}
	values := make(map[string]entry, len(keys))
	for _, k := range keys {
		if values[k], err = read(subject.BucketConfig, k); err != nil {
			return err
		}
	}
	// Complete: replace. A scope that does not decode keeps its previous value.
	s.mu.Lock()
	old := s.scopes
	s.groups, s.derived = groups, derived
	s.scopes = map[string]*wire.ConfigScope{}
	for _, k := range keys {
		if sc, ok := old[k]; ok {
			s.scopes[k] = sc
		}
	}
	s.mu.Unlock()
	for _, k := range keys {
		l.setScope(k, values[k])
	}
	l.apply(unionGroups(groups, derived))
	return nil
}

// snapshotGates walks both gate buckets with a short-lived consumer each
// (deleted when the walk ends) and replaces the gate state once both were
// read; the state is live from then until the next disconnect.
func (l *stateLoop) snapshotGates(ctx context.Context) error {
	current, err := l.walk(ctx, subject.BucketScriptCurrent)
	if err != nil {
		return err
	}
	status, err := l.walk(ctx, subject.BucketScriptStatus)
	if err != nil {
		return err
	}
	s := l.a.kv
	s.mu.Lock()
	s.current, s.status = current, status
	s.gateSynced = [2]bool{true, true}
	s.mu.Unlock()
	if l.a.nc.IsConnected() {
		s.markGateLive(true, time.Now())
	}
	return nil
}

// walk reads every key of a bucket (walkRaw), values trimmed of white space.
func (l *stateLoop) walk(ctx context.Context, bucket string) (map[string]string, error) {
	raw, err := l.walkRaw(ctx, bucket)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		out[k] = strings.TrimSpace(string(v))
	}
	return out, nil
}
