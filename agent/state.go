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
	// scopes maps an agent_config key to its decoded scope: global,
	// pcs.<pc_id> and groups.<g> of the effective groups only.
	scopes map[string]*wire.ConfigScope
	// groups and derived are this pc's lists from agent_groups and agent_groups_derived.
	groups, derived []string
	// current and status mirror script_current and script_status.
	current, status map[string]string
	// gateSynced is set once both gate buckets were read completely.
	gateSynced [2]bool
	// staleSince is when the gate state was last known to be live; zero while live.
	staleSince time.Time
	// resync is signalled on a reconnect: the state is read again in full.
	resync chan struct{}
	// readMu guards readCancel, which ends the state loop's reads in
	// flight (abortReads).
	readMu     sync.Mutex
	readCancel context.CancelFunc
}

// beginReads returns the ctx of one step of the state loop's reads, which
// abortReads ends; end releases it.
func (s *kvState) beginReads(ctx context.Context) (rctx context.Context, end func()) {
	rctx, cancel := context.WithCancel(ctx)
	s.readMu.Lock()
	s.readCancel = cancel
	s.readMu.Unlock()
	return rctx, func() {
		s.readMu.Lock()
		s.readCancel = nil
		s.readMu.Unlock()
		cancel()
	}
}

// abortReads ends the reads in flight when the connection drops: a read
// or a bucket walk caught by the disconnect would otherwise hold the state
// loop until its own timeout (up to 30 s), and with it the full re-read the
// reconnect asks for. What it was reading is read again by that re-read.
func (s *kvState) abortReads() {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if s.readCancel != nil {
		s.readCancel()
	}
}

func newKVState() *kvState {
	return &kvState{
		scopes:  map[string]*wire.ConfigScope{},
		current: map[string]string{},
		status:  map[string]string{},
		resync:  make(chan struct{}, 1),
	}
}

// effectiveGroups returns the union of both group lists, sorted, without
// duplicates.
func (s *kvState) effectiveGroups() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return unionGroups(s.groups, s.derived)
}

func unionGroups(a, b []string) []string {
	out := append(slices.Clone(a), b...)
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

// markGateLive records whether the gate state is live (connected, and
// read in full since the last connect).
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

// reconnected asks for the whole state to be read again: what changed
// while the connection was down, deletions included, is only known then.
// The gate state stays stale (as the disconnect marked it) until that read
// completes.
func (s *kvState) reconnected(time.Time) { signal(s.resync) }

// fetchGate reads the gate state of id straight from the buckets, for the
// strict staleness mode when the cache is too old.
func (a *Agent) fetchGate(ctx context.Context, id string) (current string, hasCurrent bool, status string, err error) {
	if !a.nc.IsConnected() {
		return "", false, "", errNotConnected // offline: answer now, not after the timeout
	}
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
