package agent

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// kvState holds what the agent learns from the KV buckets: the config
// scopes, the group lists and the gate state. A KV error never empties it:
// every value is kept until the bucket says it was deleted.
type kvState struct {
	mu sync.Mutex
	// scopes maps an agent_config key to its decoded scope.
	scopes map[string]*wire.ConfigScope
	// groups and derived are this pc's lists from agent_groups and agent_groups_derived.
	groups, derived []string
	// current and status mirror script_current and script_status.
	current, status map[string]string
	// gateSynced is set once both gate buckets were read completely.
	gateSynced [2]bool
	// staleSince is when the gate watchers were last known to be live; zero while live.
	staleSince time.Time
}

func newKVState() *kvState {
	return &kvState{
		scopes:  map[string]*wire.ConfigScope{},
		current: map[string]string{},
		status:  map[string]string{},
	}
}

// effectiveGroups returns the union of both group lists, sorted, without
// duplicates.
func (s *kvState) effectiveGroups() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append(slices.Clone(s.groups), s.derived...)
	sort.Strings(out)
	return slices.Compact(out)
}

// effectiveConfig merges defaults, global, groups.<g> in alphabetical order
// and pcs.<pcID>; later wins per field. Problems in scopes are returned so
// they can be logged; the offending fields are ignored.
func (s *kvState) effectiveConfig(defaults wire.Config, pcID string) (wire.Config, []error) {
	groups := s.effectiveGroups()
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := defaults
	var problems []error
	apply := func(key string) {
		var errs []error
		cfg, errs = cfg.Apply(s.scopes[key])
		for _, e := range errs {
			problems = append(problems, errors.Join(errors.New(key), e))
		}
	}
	apply(subject.ConfigGlobalKey)
	for _, g := range groups {
		apply(subject.ConfigGroupsPrefix + g)
	}
	apply(subject.ConfigPCsPrefix + pcID)
	return cfg, problems
}

// gate returns the cached gate state of a script id and how old the cache is.
// ok is false when the gate buckets were never read completely.
func (s *kvState) gate(id string, now time.Time) (current string, hasCurrent bool, status string, age time.Duration, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	current, hasCurrent = s.current[id]
	status = s.status[id]
	if !s.staleSince.IsZero() {
		age = now.Sub(s.staleSince)
	}
	return current, hasCurrent, status, age, s.gateSynced[0] && s.gateSynced[1]
}

// markGateLive records whether the gate watchers are live (connected and
// caught up).
func (s *kvState) markGateLive(live bool, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case live:
		s.staleSince = time.Time{}
	case s.staleSince.IsZero():
		s.staleSince = now
	}
}

// reconnected marks the gate state live again if it was ever synced: the
// watchers resume where they were.
func (s *kvState) reconnected(now time.Time) {
	s.mu.Lock()
	synced := s.gateSynced[0] && s.gateSynced[1]
	s.mu.Unlock()
	if synced {
		s.markGateLive(true, now)
	}
}

// watchKV keeps a watch on bucket (keys, or all keys when keys is empty)
// running until ctx ends, calling put for each value, del for each delete,
// and synced once the initial values are delivered. A failing watch is
// re-created with backoff; state is never reset by a failure.
func (a *Agent) watchKV(ctx context.Context, bucket string, keys []string,
	put func(key string, val []byte), del func(key string), synced func()) {
	var b backoff
	for ctx.Err() == nil {
		err := a.watchOnce(ctx, bucket, keys, put, del, synced, &b)
		if ctx.Err() != nil {
			return
		}
		if isGateBucket(bucket) {
			a.kv.markGateLive(false, time.Now())
		}
		d := b.next()
		a.log.Warn("kv watch failed; state kept", "bucket", bucket, "err", err, "retry_in", d.Round(time.Millisecond))
		if !sleepCtx(ctx, d) {
			return
		}
	}
}

func isGateBucket(b string) bool {
	return b == subject.BucketScriptCurrent || b == subject.BucketScriptStatus
}

var errWatchEnded = errors.New("agent: kv watch ended")

func (a *Agent) watchOnce(ctx context.Context, bucket string, keys []string,
	put func(string, []byte), del func(string), synced func(), b *backoff) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	kv, err := a.js.KeyValue(cctx, bucket)
	cancel()
	if err != nil {
		return err
	}
	var w jetstream.KeyWatcher
	if len(keys) == 0 {
		w, err = kv.WatchAll(ctx)
	} else {
		w, err = kv.WatchFiltered(ctx, keys)
	}
	if err != nil {
		return err
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errWatchEnded
			}
			if e == nil {
				*b = backoff{}
				if synced != nil {
					synced()
				}
				continue
			}
			switch e.Operation() {
			case jetstream.KeyValuePut:
				put(e.Key(), e.Value())
			default:
				del(e.Key())
			}
		}
	}
}

// watchState starts the KV watchers. They run until ctx ends.
func (a *Agent) watchState(ctx context.Context, wg *sync.WaitGroup) {
	s := a.kv
	goWatch := func(bucket string, keys []string, put func(string, []byte), del func(string), synced func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.watchKV(ctx, bucket, keys, put, del, synced)
		}()
	}
	// agent_config: every scope. A scope that does not decode, or that
	// upstream would refuse to decode (max_local_concurrent 0), is logged
	// and ignored whole, as upstream's config supervisor does: the key
	// keeps its previous value, so the effective config does not change.
	goWatch(subject.BucketConfig, nil, func(k string, v []byte) {
		sc, err := wire.DecodeConfigScope(v)
		if err != nil {
			a.log.Warn("ignoring rejected config scope; keeping its previous value", "key", k, "err", err)
			return
		}
		s.mu.Lock()
		s.scopes[k] = sc
		s.mu.Unlock()
		a.configChanged()
	}, func(k string) {
		s.mu.Lock()
		delete(s.scopes, k)
		s.mu.Unlock()
		a.configChanged()
	}, nil)

	groupsWatch := func(bucket string, dst *[]string) {
		goWatch(bucket, []string{a.opts.PcID}, func(k string, v []byte) {
			g, err := wire.DecodeGroups(v)
			if err != nil {
				a.log.Warn("ignoring malformed groups document; keeping previous groups", "bucket", bucket, "err", err)
				return
			}
			valid := make([]string, 0, len(g.Groups))
			for _, name := range g.Groups {
				if err := subject.ValidToken("group", name); err != nil {
					a.log.Warn("ignoring invalid group name", "bucket", bucket, "err", err)
					continue
				}
				valid = append(valid, name)
			}
			s.mu.Lock()
			*dst = valid
			s.mu.Unlock()
			a.groupsChanged()
		}, func(string) {
			s.mu.Lock()
			*dst = nil
			s.mu.Unlock()
			a.groupsChanged()
		}, nil)
	}
	groupsWatch(subject.BucketGroups, &s.groups)
	groupsWatch(subject.BucketGroupsDerived, &s.derived)

	gateWatch := func(i int, bucket string, dst map[string]string) {
		goWatch(bucket, nil, func(k string, v []byte) {
			s.mu.Lock()
			dst[k] = strings.TrimSpace(string(v))
			s.mu.Unlock()
		}, func(k string) {
			s.mu.Lock()
			delete(dst, k)
			s.mu.Unlock()
		}, func() {
			s.mu.Lock()
			s.gateSynced[i] = true
			s.mu.Unlock()
			a.kv.markGateLive(true, time.Now())
		})
	}
	gateWatch(0, subject.BucketScriptCurrent, s.current)
	gateWatch(1, subject.BucketScriptStatus, s.status)
}

// fetchGate reads the gate state of id straight from the buckets, for the
// strict staleness mode when the cache is too old.
func (a *Agent) fetchGate(ctx context.Context, id string) (current string, hasCurrent bool, status string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	get := func(bucket string) (string, bool, error) {
		kv, err := a.js.KeyValue(ctx, bucket)
		if err != nil {
			return "", false, err
		}
		e, err := kv.Get(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return "", false, nil
		}
		if err != nil {
			return "", false, err
		}
		return strings.TrimSpace(string(e.Value())), true, nil
	}
	if current, hasCurrent, err = get(subject.BucketScriptCurrent); err != nil {
		return "", false, "", err
	}
	status, _, err = get(subject.BucketScriptStatus)
	return current, hasCurrent, status, err
}
