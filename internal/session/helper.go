package session

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// IsHelper reports whether the command line args (without the program
// name) ask for the helper mode: HelperFlag anywhere, as upstream's clap
// flag, also written with one dash or as HelperFlag=true.
func IsHelper(args []string) bool {
	for _, a := range args {
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if a == "session-agent" || a == "session-agent=true" {
			return true
		}
	}
	return false
}

// idleReader reads the time since the last user input of the session.
type idleReader interface {
	// idle returns the idle time; known is false when it cannot be told
	// right now (printed as null), err says why (logged on stderr).
	idle(ctx context.Context) (ms uint64, known bool, err error)
}

// RunHelper runs the helper mode (kanade-agent --session-agent) and returns
// its exit code: 0 when stdin closes (the supervisor went away), stdout
// breaks or ctx ends; 2 for a bad command line; ExitUnsupported when this
// machine offers no idle reading (the reason is printed on stderr). It
// prints one NDJSON line {"idle_ms":N} on stdout at once and then every
// sample period (IntervalFlag, else IntervalEnv, else DefaultSample), N
// being the milliseconds since the last user input, or {"idle_ms":null}
// when that cannot be read at the moment. It touches no data directory,
// network or service manager.
func RunHelper(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	every, err := helperInterval(args, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "kanade-agent %s: %v\n", HelperFlag, err)
		return 2
	}
	r, err := newIdleReader(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "kanade-agent %s: %v\n", HelperFlag, err)
		if errors.Is(err, ErrUnsupported) {
			return ExitUnsupported
		}
		return 1
	}
	return helperLoop(ctx, every, r, stdin, stdout, stderr)
}

// helperInterval parses the helper's command line.
func helperInterval(args []string, getenv func(string) string) (time.Duration, error) {
	fs := flag.NewFlagSet("kanade-agent "+HelperFlag, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Bool(strings.TrimPrefix(HelperFlag, "--"), false, "run as the in-session idle helper")
	every := fs.Duration(strings.TrimPrefix(IntervalFlag, "--"), 0, "sample period")
	if err := fs.Parse(args); err != nil {
		return 0, err
	}
	if fs.NArg() > 0 {
		return 0, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *every == 0 {
		if v := getenv(IntervalEnv); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return 0, fmt.Errorf("%s=%q: %w", IntervalEnv, v, err)
			}
			*every = d
		}
	}
	if *every == 0 {
		*every = DefaultSample
	}
	if *every < 10*time.Millisecond {
		return 0, fmt.Errorf("sample period %s is too short", *every)
	}
	return *every, nil
}

// helperLoop prints a reading of r every period until stdin ends, stdout
// fails or ctx ends. A reading error is printed on stderr when it differs
// from the previous one.
func helperLoop(ctx context.Context, every time.Duration, r idleReader, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, stdin) // returns when the supervisor closes it or goes away
		cancel()
	}()
	t := time.NewTicker(every)
	defer t.Stop()
	lastErr := ""
	for {
		ms, known, err := r.idle(ctx)
		if ctx.Err() != nil {
			return 0
		}
		if err != nil && err.Error() != lastErr {
			fmt.Fprintf(stderr, "kanade-agent %s: %v\n", HelperFlag, err)
		}
		lastErr = ""
		if err != nil {
			lastErr = err.Error()
		}
		line := `{"idle_ms":null}` + "\n"
		if known {
			line = `{"idle_ms":` + strconv.FormatUint(ms, 10) + "}\n"
		}
		if _, err := io.WriteString(stdout, line); err != nil {
			return 0 // the supervisor closed its end
		}
		select {
		case <-ctx.Done():
			return 0
		case <-t.C:
		}
	}
}
