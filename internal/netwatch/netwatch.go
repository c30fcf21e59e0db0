package netwatch

import (
	"context"
	"errors"
	"log/slog"
	"slices"
)

// Options configures Run. The zero value is usable.
type Options struct {
	// Log receives the watcher's debug lines (what changed) and warnings
	// (a state that could not be read). Default: slog.Default().
	Log *slog.Logger
	// Started, when set, is called once the watcher is subscribed to the
	// system's notifications and has read the initial state: a change
	// made after it returns is seen. For tests and readiness logs.
	Started func()
}

func (o *Options) setDefaults() {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Started == nil {
		o.Started = func() {}
	}
}

// Run watches the network configuration and calls onChange each time it
// differs from the last state seen (see the package doc for what counts),
// until ctx ends; it then returns nil, with every notification cancelled
// and no goroutine left behind. onChange is called from Run's goroutine,
// one call at a time; it should not block for long (changes arriving
// meanwhile are coalesced, not lost). Run returns an error when it cannot
// subscribe or read the initial state, ErrUnsupported on a system other
// than Linux and Windows.
func Run(ctx context.Context, onChange func(), opts Options) error {
	if onChange == nil {
		return errors.New("netwatch: nil onChange")
	}
	opts.setDefaults()
	return run(ctx, onChange, opts)
}

// state is a reading of the network configuration: one line per
// interface, address and default route, sorted.
type state []string

// diff returns the lines only in a and only in b (both sorted).
func diff(a, b state) (gone, added []string) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			gone = append(gone, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			added = append(added, b[j])
			j++
		default:
			i++
			j++
		}
	}
	return gone, added
}

// newState sorts and deduplicates lines.
func newState(lines []string) state {
	slices.Sort(lines)
	return slices.Compact(lines)
}

// afterCompare, when set (tests), is called after each reading of the
// state following a notification, with whether it differed and the state.
var afterCompare func(changed bool, cur state)

// compare reports whether cur differs from prev, logging what changed.
func compare(log *slog.Logger, prev, cur state) bool {
	gone, added := diff(prev, cur)
	changed := len(gone) > 0 || len(added) > 0
	if changed {
		log.Debug("network configuration changed", "gone", gone, "added", added)
	}
	if afterCompare != nil {
		afterCompare(changed, cur)
	}
	return changed
}
