package inventory

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// ErrorsKey is the key in a report's Data under which the collector lists
// the classes (and properties) it could not collect. Its value is a list of
// objects {"class": string, "property": string (optional), "error": string},
// sorted by class, then property, then error. A class that failed entirely is
// absent from Data and appears here without "property"; a class that was read
// but had malformed values is present (the bad values left out) and each
// problem appears here with its "property" when known. Identical problems
// are listed once; at most maxProblemsPerClass entries are kept per class,
// and a last entry then says how many more there were. The key is omitted when nothing failed. Being part of
// Data, the errors are part of the hash: a class starting or ceasing to fail
// changes the hash, and the messages are built so that the same failure gives
// the same text on every run.
const ErrorsKey = "_errors"

// maxProblemsPerClass bounds the error entries reported for one class, so a
// garbled file of many records cannot blow up a report.
const maxProblemsPerClass = 20

// problem is one thing that went wrong while reading a class.
type problem struct {
	Property string // empty when it concerns the class or a whole record
	Err      error
}

// result is what a source returns: the rows it could read and the problems it
// met. A non-nil err means the class as a whole failed (rows are dropped).
type result struct {
	Rows     []map[string]any
	Problems []problem
}

// source collects one class of a category.
type source struct {
	Class string
	// Run reads the class. It should honour ctx, but need not: a Run that
	// blocks is abandoned at the class timeout.
	Run func(ctx context.Context) (result, error)
}

// guard runs work under a timeout and remembers work that was abandoned
// still running, so at most one abandoned goroutine exists per key.
type guard struct {
	mu   sync.Mutex
	busy map[string]bool
}

// do runs fn on its own goroutine under a timeout. It returns fn's outcome,
// or an error wrapping ErrTimeout when fn has not returned within timeout (fn
// keeps running, abandoned, and the key stays busy until it returns), or one
// wrapping ErrStillRunning without calling fn when an earlier call for key is
// still running, or ctx's error when ctx ends first. A panic in fn is
// recovered and returned as an error.
func guardDo[T any](ctx context.Context, g *guard, key string, timeout time.Duration, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	g.mu.Lock()
	if g.busy == nil {
		g.busy = make(map[string]bool)
	}
	if g.busy[key] {
		g.mu.Unlock()
		return zero, fmt.Errorf("%w (%s)", ErrStillRunning, key)
	}
	g.busy[key] = true
	g.mu.Unlock()

	type outcome struct {
		v   T
		err error
	}
	done := make(chan outcome, 1) // buffered: an abandoned fn never blocks on send
	wctx, cancel := context.WithTimeout(ctx, timeout)
	go func() {
		var o outcome
		func() {
			defer func() {
				if p := recover(); p != nil {
					o = outcome{err: fmt.Errorf("inventory: %s: panic: %v", key, p)}
				}
			}()
			o.v, o.err = fn(wctx)
		}()
		// Not busy any more before the caller hears of it, so an
		// immediate next call for key is not refused.
		g.mu.Lock()
		delete(g.busy, key)
		g.mu.Unlock()
		done <- o
	}()
	defer cancel()
	select {
	case o := <-done:
		if o.err != nil && errors.Is(o.err, context.DeadlineExceeded) && wctx.Err() != nil && ctx.Err() == nil {
			return zero, fmt.Errorf("%w after %s (%s)", ErrTimeout, timeout, key)
		}
		return o.v, o.err
	case <-wctx.Done():
		if ctx.Err() != nil {
			return zero, ctx.Err()
		}
		return zero, fmt.Errorf("%w after %s (%s)", ErrTimeout, timeout, key)
	}
}

// runSources runs every source concurrently, each under its own timeout
// through g, and assembles a category's Data: class → rows (sorted by their
// canonical JSON so the order cannot change the hash), plus ErrorsKey. It
// returns ctx's error when ctx ended (the data is then incomplete).
func runSources(ctx context.Context, g *guard, timeout time.Duration, srcs []source) (map[string]any, error) {
	type classOut struct {
		res result
		err error
	}
	outs := make([]classOut, len(srcs))
	var wg sync.WaitGroup
	for i, s := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := guardDo(ctx, g, s.Class, timeout, s.Run)
			outs[i] = classOut{res, err}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data := make(map[string]any, len(srcs)+1)
	var errs []map[string]any
	for i, s := range srcs {
		o := outs[i]
		if o.err != nil {
			errs = append(errs, errorEntry(s.Class, "", o.err))
			continue
		}
		rows := o.res.Rows
		if rows == nil {
			rows = []map[string]any{}
		}
		sortRows(rows)
		data[s.Class] = rows
		seen := map[string]bool{}
		listed, more := 0, 0
		for _, p := range o.res.Problems {
			k := p.Property + "\x00" + p.Err.Error()
			if seen[k] {
				continue // the same problem in many records is listed once
			}
			seen[k] = true
			if listed == maxProblemsPerClass {
				more++
				continue
			}
			listed++
			errs = append(errs, errorEntry(s.Class, p.Property, p.Err))
		}
		if more > 0 {
			errs = append(errs, errorEntry(s.Class, "", fmt.Errorf("inventory: %d more problems not listed", more)))
		}
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b map[string]any) int {
			if c := cmp.Compare(a["class"].(string), b["class"].(string)); c != 0 {
				return c
			}
			pa, _ := a["property"].(string)
			pb, _ := b["property"].(string)
			if c := cmp.Compare(pa, pb); c != 0 {
				return c
			}
			return cmp.Compare(a["error"].(string), b["error"].(string))
		})
		data[ErrorsKey] = errs
	}
	return data, nil
}

func errorEntry(class, property string, err error) map[string]any {
	e := map[string]any{"class": class, "error": err.Error()}
	if property != "" {
		e["property"] = property
	}
	return e
}

// sortRows orders rows by their canonical JSON encoding.
func sortRows(rows []map[string]any) {
	if len(rows) < 2 {
		return
	}
	keys := make([]string, len(rows))
	for i, r := range rows {
		b, _ := json.Marshal(r)
		keys[i] = string(b)
	}
	idx := make([]int, len(rows))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(keys[a], keys[b]) })
	sorted := make([]map[string]any, len(rows))
	for i, j := range idx {
		sorted[i] = rows[j]
	}
	copy(rows, sorted)
}
