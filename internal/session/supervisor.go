package session

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

func uitoa(n uint64) string { return strconv.FormatUint(n, 10) }
func itoa(n int64) string   { return strconv.FormatInt(n, 10) }

// errNoUser is returned by a launcher when nobody is logged on to the
// console: there is no session to launch the helper in.
var errNoUser = errors.New("session: no user at the console")

// launcher starts helpers.
type launcher interface {
	// target returns the session the helper must run in, or errNoUser.
	target() (uint32, error)
	// follows reports whether the helper must move when target changes.
	follows() bool
	// start starts a helper in session id.
	start(o *Options, id uint32) (helperProc, error)
}

// helperProc is a running helper.
type helperProc interface {
	// stdout is the helper's output; it ends when the helper exits.
	stdout() io.Reader
	// kill ends the helper at once; safe to call more than once.
	kill()
	// wait waits for the helper to exit, killing it after stopTimeout,
	// releases it and returns its exit code (-1 when killed by a signal).
	wait() int
	// stderr returns the end of what the helper wrote on stderr.
	stderr() string
}

// helperArgs is the helper's command line after the program.
func helperArgs(o *Options) []string {
	return []string{HelperFlag, IntervalFlag + "=" + o.Sample.String()}
}

// pumpResult is how one helper ended.
type pumpResult struct {
	code  int
	moved bool // stopped because the console session changed
}

// supervise keeps a helper running until ctx ends, restarting it with
// backoff (2 s doubling to 60 s) when it exits, and moving it when the
// console session changes (wake is signalled on session changes).
func (s *Source) supervise(ctx context.Context, msgs chan<- msg, wake <-chan struct{}) {
	l := s.o.launch
	if l == nil {
		l = platformLauncher()
	}
	send := func(m msg) {
		if m.at.IsZero() {
			m.at = time.Now()
		}
		select {
		case msgs <- m:
		case <-ctx.Done():
		}
	}
	log := s.o.Log
	backoff := s.o.backoffMin
	noUser := false
	for ctx.Err() == nil {
		id, err := l.target()
		if err == nil {
			var p helperProc
			if p, err = l.start(&s.o, id); err == nil {
				noUser = false
				s.starts.Add(1)
				send(msg{kind: msgStarted})
				log.Debug("session helper started", "session", id)
				began := time.Now()
				res := s.pump(ctx, p, l, id, send, wake)
				switch {
				case ctx.Err() != nil:
					return
				case res.code == ExitUnsupported:
					log.Warn("no idle time on this machine: active/idle events are off", "helper_stderr", p.stderr())
					send(msg{kind: msgUnsupported})
					<-ctx.Done()
					return
				case res.moved:
					log.Info("console session changed: session helper restarted", "from", id)
					backoff = s.o.backoffMin
					continue
				}
				if time.Since(began) > s.o.backoffMax {
					backoff = s.o.backoffMin
				}
				log.Warn("session helper exited; restarting", "exit_code", res.code, "in", backoff.String(), "helper_stderr", p.stderr())
			}
		}
		if errors.Is(err, errNoUser) {
			if !noUser {
				log.Info("nobody is logged on to the console: no session helper", "reason", err)
				noUser = true
			}
			send(msg{kind: msgNoUser})
			sleep(ctx, pollInterval, wake)
			continue
		}
		if err != nil {
			log.Warn("cannot start the session helper", "err", err, "retry_in", backoff.String())
		}
		sleep(ctx, backoff, nil) // session changes do not cut the backoff short
		backoff = min(backoff*2, s.o.backoffMax)
	}
}

// sleep waits for d, ctx or a wake (nil: none).
func sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-wake:
	}
}

type lineMsg struct {
	line []byte
	err  error
	at   time.Time
}

// pump reads p's lines until it exits, the console session moves or ctx ends.
func (s *Source) pump(ctx context.Context, p helperProc, l launcher, id uint32, send func(msg), wake <-chan struct{}) pumpResult {
	lines := make(chan lineMsg)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(lines)
		// Lines are taken at most one per Sample/4 (the helper prints one
		// per Sample): a helper that floods blocks on its full pipe instead
		// of costing the agent CPU.
		pace := s.o.Sample / 4
		var last time.Time
		_ = readLines(p.stdout(), MaxLine, func(line []byte, err error) {
			if wait := pace - time.Since(last); !last.IsZero() && wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-done:
					t.Stop()
					return
				}
			}
			last = time.Now()
			select {
			case lines <- lineMsg{line: append([]byte(nil), line...), err: err, at: last}:
			case <-done:
			}
		})
	}()
	stop := func(moved bool) pumpResult {
		p.kill()
		close(done)
		code := p.wait()
		wg.Wait()
		return pumpResult{code: code, moved: moved}
	}
	moved := func() bool {
		if !l.follows() {
			return false
		}
		now, err := l.target()
		return err != nil || now != id
	}
	for {
		select {
		case <-ctx.Done():
			return stop(false)
		case <-wake:
			if moved() {
				return stop(true)
			}
		case lm, ok := <-lines:
			if !ok {
				code := p.wait()
				close(done)
				wg.Wait()
				return pumpResult{code: code}
			}
			s.line(lm, send)
			if moved() {
				return stop(true)
			}
		}
	}
}

// line handles one helper line.
func (s *Source) line(lm lineMsg, send func(msg)) {
	err := lm.err
	var ms uint64
	var known bool
	if err == nil {
		ms, known, err = parseLine(lm.line)
	}
	if err != nil {
		n := s.badLines.Add(1)
		if n == 1 || n%100 == 0 {
			s.o.Log.Warn("session helper: bad line skipped", "err", err, "line", truncate(lm.line, 64), "bad_lines", n)
		}
		return
	}
	send(msg{kind: msgReading, ms: ms, known: known, at: lm.at})
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return strings.ToValidUTF8(string(b[:n]), "?") + "..."
	}
	return strings.ToValidUTF8(string(b), "?")
}

// tail keeps the last bytes written to it (a helper's stderr).
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailMax = 1024

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailMax {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailMax:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(strings.ToValidUTF8(string(t.buf), "?"))
}
