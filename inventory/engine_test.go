package inventory

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
)

func TestGuardAbandonsHungWork(t *testing.T) {
	var g guard
	b := newBlocker()
	base := runtime.NumGoroutine()
	hung := func(context.Context) (int, error) { b.wait(); return 1, nil }

	start := time.Now()
	_, err := guardDo(bg, &g, "Win32_Hung", 50*time.Millisecond, hung)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("took %v to time out", el)
	}
	if want := "inventory: timed out after 50ms (Win32_Hung)"; err.Error() != want {
		t.Errorf("message %q, want %q (must be the same every run, it is hashed)", err, want)
	}
	// While it is hung, no second goroutine is started for the key.
	for range 5 {
		_, err = guardDo(bg, &g, "Win32_Hung", 50*time.Millisecond, hung)
		if !errors.Is(err, ErrStillRunning) {
			t.Fatalf("err = %v, want ErrStillRunning", err)
		}
	}
	if b.count() != 1 {
		t.Fatalf("hung function entered %d times, want 1", b.count())
	}
	// Other keys are not delayed.
	v, err := guardDo(bg, &g, "Win32_Fine", time.Second, func(context.Context) (int, error) { return 7, nil })
	if err != nil || v != 7 {
		t.Fatalf("other key: %v, %v", v, err)
	}
	if got := g.busyKeys(); len(got) != 1 || got[0] != "Win32_Hung" {
		t.Fatalf("busy = %v", got)
	}
	close(b.release)
	natstest.CheckFor(t, 5*time.Second, time.Millisecond, func() error {
		if len(g.busyKeys()) != 0 {
			return errors.New("still busy")
		}
		return nil
	})
	goroutinesAtMost(t, base)
	v, err = guardDo(bg, &g, "Win32_Hung", time.Second, func(context.Context) (int, error) { return 2, nil })
	if err != nil || v != 2 {
		t.Fatalf("after release: %v, %v", v, err)
	}
}

func TestGuardPanicAndCancel(t *testing.T) {
	var g guard
	_, err := guardDo(bg, &g, "boom", time.Second, func(context.Context) (int, error) { panic("garbage") })
	if err == nil || !strings.Contains(err.Error(), "panic: garbage") {
		t.Fatalf("err = %v", err)
	}
	ctx, cancel := context.WithCancel(bg)
	cancel()
	_, err = guardDo(ctx, &g, "x", time.Second, func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	// A cooperative function that stops at the deadline is a timeout too.
	_, err = guardDo(bg, &g, "coop", 20*time.Millisecond, func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() })
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v", err)
	}
}

func TestRunSourcesReportsFailuresInData(t *testing.T) {
	var g guard
	b := newBlocker()
	defer close(b.release)
	many := make([]problem, 30)
	for i := range many {
		many[i] = problem{Property: "P", Err: errors.New("inventory: bad " + string(rune('a'+i%26)) + string(rune('a'+i/26)))}
	}
	srcs := []source{
		{Class: "ok", Run: func(context.Context) (result, error) {
			return result{Rows: []map[string]any{{"b": int64(2)}, {"a": int64(1)}}}, nil
		}},
		{Class: "fails", Run: func(context.Context) (result, error) { return result{}, errors.New("inventory: fails: access denied") }},
		{Class: "hangs", Run: func(context.Context) (result, error) { b.wait(); return result{}, nil }},
		{Class: "panics", Run: func(context.Context) (result, error) { var m map[string]int; m["x"] = 1; return result{}, nil }},
		{Class: "noisy", Run: func(context.Context) (result, error) { return result{Rows: nil, Problems: many}, nil }},
	}
	start := time.Now()
	data, err := runSources(bg, &g, 100*time.Millisecond, srcs)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatal("a hung class delayed the others")
	}
	rows := data["ok"].([]map[string]any)
	if len(rows) != 2 || rows[0]["a"] != int64(1) {
		t.Errorf("rows not sorted canonically: %v", rows)
	}
	if _, ok := data["fails"]; ok {
		t.Error("failed class present in data")
	}
	if got := data["noisy"].([]map[string]any); len(got) != 0 {
		t.Errorf("noisy rows = %v", got)
	}
	errs := data[ErrorsKey].([]map[string]any)
	byClass := map[string]int{}
	for _, e := range errs {
		byClass[e["class"].(string)]++
	}
	if byClass["fails"] != 1 || byClass["hangs"] != 1 || byClass["panics"] != 1 || byClass["noisy"] != maxProblemsPerClass+1 {
		t.Fatalf("errors per class = %v\n%v", byClass, errs)
	}
	for _, e := range errs {
		if e["class"] == "hangs" && !strings.Contains(e["error"].(string), "timed out") {
			t.Errorf("hang reported as %v", e)
		}
		if e["class"] == "noisy" && e["property"] == nil && !strings.Contains(e["error"].(string), "10 more problems") {
			t.Errorf("cap entry = %v", e)
		}
	}
	// The hung class is reported as still running next time, not restarted.
	data, _ = runSources(bg, &g, 100*time.Millisecond, srcs)
	for _, e := range data[ErrorsKey].([]map[string]any) {
		if e["class"] == "hangs" && !strings.Contains(e["error"].(string), "still running") {
			t.Errorf("second run: %v", e)
		}
	}
	if b.count() != 1 {
		t.Errorf("hung source entered %d times", b.count())
	}
}

// busyKeys returns the keys whose work is still running (for tests).
func (g *guard) busyKeys() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var ks []string
	for k := range g.busy {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
