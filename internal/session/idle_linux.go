//go:build linux

package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// loginctlTimeout bounds each loginctl run.
const loginctlTimeout = 5 * time.Second

// logindIdle reads logind's idle hint of a session through loginctl: the
// session of $XDG_SESSION_ID when the helper runs inside one, else the
// active session of seat0 (the console, as WTSGetActiveConsoleSessionId on
// Windows), asked at every reading.
type logindIdle struct {
	loginctl string
	session  string // fixed session, or "" for seat0's active one
}

func newIdleReader(getenv func(string) string) (idleReader, error) {
	path, err := exec.LookPath("loginctl")
	if err != nil {
		return nil, fmt.Errorf("%w: loginctl not found (%v): the idle time comes from systemd-logind's idle hint", ErrUnsupported, err)
	}
	r := &logindIdle{loginctl: path, session: getenv("XDG_SESSION_ID")}
	ctx, cancel := context.WithTimeout(context.Background(), loginctlTimeout)
	defer cancel()
	// One probe: logind must answer (it does not in a container without systemd).
	if _, err := r.run(ctx, "show-seat", "seat0", "-p", "ActiveSession"); err != nil {
		if r.session == "" {
			return nil, fmt.Errorf("%w: systemd-logind does not answer: %v", ErrUnsupported, err)
		}
		if _, err := r.run(ctx, "show-session", r.session, "-p", "IdleHint"); err != nil {
			return nil, fmt.Errorf("%w: systemd-logind does not answer: %v", ErrUnsupported, err)
		}
	}
	return r, nil
}

// run runs loginctl args and returns its Key=Value output.
func (r *logindIdle) run(ctx context.Context, args ...string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, loginctlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.loginctl, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return nil, fmt.Errorf("loginctl %s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return parseProperties(out.Bytes()), nil
}

// parseProperties reads loginctl show-* output: one Key=Value a line.
func parseProperties(b []byte) map[string]string {
	m := map[string]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			m[k] = v
		}
	}
	return m
}

func (r *logindIdle) idle(ctx context.Context) (uint64, bool, error) {
	id := r.session
	if id == "" {
		seat, err := r.run(ctx, "show-seat", "seat0", "-p", "ActiveSession")
		if err != nil {
			return 0, false, err
		}
		if id = seat["ActiveSession"]; id == "" {
			return 0, false, nil // nobody at the console
		}
	}
	props, err := r.run(ctx, "show-session", id, "-p", "IdleHint", "-p", "IdleSinceHintMonotonic", "-p", "Type")
	if err != nil {
		return 0, false, err
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, false, err
	}
	return logindIdleMS(props, uint64(ts.Nano()/1000))
}

// logindIdleMS computes the idle time from a session's IdleHint,
// IdleSinceHintMonotonic (µs of CLOCK_MONOTONIC) and Type, nowUS being
// CLOCK_MONOTONIC now in µs:
//   - IdleHint yes: the time since IdleSinceHint, when the session became
//     idle (a desktop sets the hint after its own idle delay, so this
//     counts from then);
//   - IdleHint no on a tty session: logind reports the terminal's last
//     access as IdleSinceHint, so the time since then is the time since the
//     last input;
//   - IdleHint no otherwise (a graphical session): 0, in use.
func logindIdleMS(props map[string]string, nowUS uint64) (uint64, bool, error) {
	hint, ok := props["IdleHint"]
	if !ok {
		return 0, false, errors.New("loginctl: no IdleHint")
	}
	since, _ := strconv.ParseUint(props["IdleSinceHintMonotonic"], 10, 64)
	elapsed := func() (uint64, bool, error) {
		if since == 0 || since > nowUS {
			return 0, false, fmt.Errorf("loginctl: IdleSinceHintMonotonic %q unusable", props["IdleSinceHintMonotonic"])
		}
		return (nowUS - since) / 1000, true, nil
	}
	switch hint {
	case "yes":
		return elapsed()
	case "no":
		if props["Type"] == "tty" && since != 0 {
			return elapsed()
		}
		return 0, true, nil
	}
	return 0, false, fmt.Errorf("loginctl: IdleHint %q", hint)
}
