package session

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// The test binary doubles as a fake helper: run with HelperFlag and
// fakeHelperEnv set, it plays a script instead of running the tests.
const (
	fakeHelperEnv = "KANADE_SESSION_TEST_HELPER"
	// fakeCountEnv names a file the fake helper appends a line to at each start.
	fakeCountEnv = "KANADE_SESSION_TEST_COUNT"
)

func TestMain(m *testing.M) {
	if IsHelper(os.Args[1:]) {
		if script, ok := os.LookupEnv(fakeHelperEnv); ok {
			os.Exit(fakeHelper(script, os.Args[1:]))
		}
		// Without a script (the environment did not reach it: a helper
		// launched with the console user's environment), the real helper.
		os.Exit(RunHelper(context.Background(), os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// fakeHelper plays script: items separated by '|', one printed per sample
// period (from IntervalFlag): a line printed as is, "LONG" (a 10 KiB
// line), "EXIT:n" (exit with n at once), "LOOP:n" (run the real helper
// loop with a reader that always says n ms), "FLOOD:n:line" (line n times
// at once), "FIRST:line" (line at the first start only, with
// fakeCountEnv). After the script it waits for
// stdin to close and exits 0.
func fakeHelper(script string, args []string) int {
	first := true
	if p := os.Getenv(fakeCountEnv); p != "" {
		_, err := os.Stat(p)
		first = err != nil
		f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err == nil {
			fmt.Fprintln(f, os.Getpid())
			f.Close()
		}
	}
	every, err := helperInterval(args, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	for item := range strings.SplitSeq(script, "|") {
		switch {
		case strings.HasPrefix(item, "FLOOD:"):
			// FLOOD:n:line prints line n times without pause.
			n, line, _ := strings.Cut(strings.TrimPrefix(item, "FLOOD:"), ":")
			k, _ := strconv.Atoi(n)
			for range k {
				if _, err := fmt.Println(line); err != nil {
					return 0
				}
			}
		case strings.HasPrefix(item, "FIRST:"):
			// FIRST:line prints line at the first start only.
			if first {
				fmt.Println(strings.TrimPrefix(item, "FIRST:"))
			}
		case item == "LONG":
			fmt.Println(`{"idle_ms":` + strings.Repeat("1", 10<<10) + `}`)
		case strings.HasPrefix(item, "EXIT:"):
			n, _ := strconv.Atoi(strings.TrimPrefix(item, "EXIT:"))
			fmt.Fprintln(os.Stderr, "fake helper exits", n)
			return n
		case strings.HasPrefix(item, "LOOP:"):
			n, _ := strconv.ParseUint(strings.TrimPrefix(item, "LOOP:"), 10, 64)
			return helperLoop(context.Background(), every, constIdle(n), os.Stdin, os.Stdout, os.Stderr)
		default:
			fmt.Println(item)
		}
		time.Sleep(every) // the helper's own pace, not a test wait
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

type constIdle uint64

func (c constIdle) idle(context.Context) (uint64, bool, error) { return uint64(c), true, nil }

// events collects what a Source emits.
type events struct {
	mu  sync.Mutex
	evs []wire.ObsEvent
}

func (e *events) emit(_ context.Context, ev wire.ObsEvent) error {
	if err := ev.Validate(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
	return nil
}

func (e *events) kinds() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var k []string
	for _, ev := range e.evs {
		k = append(k, ev.Kind)
	}
	return strings.Join(k, ",")
}

func (e *events) all() []wire.ObsEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]wire.ObsEvent(nil), e.evs...)
}

// startSource runs a Source with the test binary as its helper playing
// script, and stops it at the end of the test.
func startSource(t *testing.T, script string, o Options) (*Source, *events) {
	t.Helper()
	t.Setenv(fakeHelperEnv, script)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	o.HelperPath = exe
	if o.Sample == 0 {
		o.Sample = 20 * time.Millisecond
	}
	if o.StaleAfter == 0 {
		o.StaleAfter = time.Hour
	}
	if o.launch == nil {
		o.launch = childLauncher{}
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ev.emit) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	return s, ev
}
