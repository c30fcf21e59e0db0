package timeline

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// SourceJournal is the ObsEvent source of the events read from the
// systemd journal.
const SourceJournal = "journal"

// The journal entries read: systemd-sleep's catalog message ids.
const (
	// MessageSleepStart is SD_MESSAGE_SLEEP_START, "System is entering sleep state".
	MessageSleepStart = "6bbd95ee977941e497c48be27c254128"
	// MessageSleepStop is SD_MESSAGE_SLEEP_STOP, "System returned from sleep state".
	MessageSleepStop = "8811e6df2a8e40f58a94cea26f8ebf14"
)

const (
	journalWatermarkFile = "journal-reader-watermark.json"
	maxJournalOutput     = 16 << 20 // journalctl output read per poll at most
	maxJournalLine       = 1 << 20
)

// journalMark is the journal watermark: the cursor of the last entry handled.
type journalMark struct {
	Cursor string `json:"cursor"`
}

// journalReader reads sleep and resume from the systemd journal through
// journalctl.
type journalReader struct {
	s    *Source
	cmd  string
	path string
	wm   journalMark
}

func (j *journalReader) load() {
	j.wm = journalMark{}
	if !j.s.loadJSON(j.path, &j.wm) {
		j.wm = journalMark{}
	}
}

// args returns journalctl's arguments for a poll.
func (j *journalReader) args(since time.Time) []string {
	a := []string{"--output=json", "--no-pager", "--quiet", "--utc", "--since=@" + strconv.FormatInt(since.Unix(), 10)}
	if j.wm.Cursor != "" {
		a = append(a, "--after-cursor="+j.wm.Cursor)
	}
	return append(a, "MESSAGE_ID="+MessageSleepStart, "MESSAGE_ID="+MessageSleepStop)
}

// journalEntry is the part of a journalctl --output=json line read. A
// field may be a string, an array (a field set more than once) or null (a
// binary value): jsonString keeps a string only.
type journalEntry struct {
	Cursor    jsonString `json:"__CURSOR"`
	Realtime  jsonString `json:"__REALTIME_TIMESTAMP"`
	MessageID jsonString `json:"MESSAGE_ID"`
	Sleep     jsonString `json:"SLEEP"`
}

// jsonString is a JSON string, or "" for any other JSON value.
type jsonString string

// UnmarshalJSON keeps b when it is a string.
func (s *jsonString) UnmarshalJSON(b []byte) error {
	var v string
	if json.Unmarshal(b, &v) == nil {
		*s = jsonString(v)
	}
	return nil
}

// poll runs journalctl and emits the entries after the cursor.
func (j *journalReader) poll(ctx context.Context, emit Emit) {
	s := j.s
	since := s.now().Add(-s.opts.LookBack)
	out, err := j.run(ctx, since)
	if err != nil && j.wm.Cursor != "" && ctx.Err() == nil {
		// A cursor journalctl refuses (a journal rebuilt, a corrupt file):
		// read the look-back again.
		s.log.Warn("timeline: journal cursor refused; reading the look-back again", "err", err)
		j.wm.Cursor = ""
		out, err = j.run(ctx, since)
	}
	if err != nil {
		s.log.Warn("timeline: journal", "err", err)
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), maxJournalLine)
	for sc.Scan() {
		var e journalEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Cursor == "" {
			s.log.Warn("timeline: journal line dropped", "err", err)
			continue
		}
		if ev := journalEvent(e); ev != nil && !ev.At.Before(since) {
			if err := emit(ctx, *ev); err != nil {
				s.log.Warn("timeline: journal", "err", fmt.Errorf("emit (tried again next poll): %w", err))
				return
			}
		}
		j.wm.Cursor = string(e.Cursor)
		if err := s.saveJSON(j.path, &j.wm); err != nil {
			s.log.Error("timeline: journal events may be emitted again after a restart", "err", err)
		}
	}
	if err := sc.Err(); err != nil {
		s.log.Warn("timeline: journal output", "err", err)
	}
}

// run runs journalctl under ctx and returns its output.
func (j *journalReader) run(ctx context.Context, since time.Time) ([]byte, error) {
	cmd := exec.CommandContext(ctx, j.cmd, j.args(since)...)
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4 << 10}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("journalctl: %w", err)
	}
	out, rerr := io.ReadAll(io.LimitReader(stdout, maxJournalOutput))
	if rerr == nil {
		_, _ = io.Copy(io.Discard, stdout) // the rest is read next poll
	}
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("journalctl: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	if rerr != nil {
		return nil, fmt.Errorf("journalctl: %w", rerr)
	}
	if len(out) == maxJournalOutput {
		if i := bytes.LastIndexByte(out, '\n'); i >= 0 {
			out = out[:i+1] // whole lines only
		}
	}
	return out, nil
}

// limitedWriter keeps the first n bytes written.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.n -= k
		_, _ = l.w.Write(p[:k])
	}
	return len(p), nil
}

// journalEvent is the ObsEvent of a journal entry, nil for none.
func journalEvent(e journalEntry) *wire.ObsEvent {
	var kind string
	switch e.MessageID {
	case MessageSleepStart:
		kind = KindSleep
	case MessageSleepStop:
		kind = KindResume
	default:
		return nil
	}
	us, err := strconv.ParseInt(string(e.Realtime), 10, 64)
	if err != nil || us <= 0 {
		return nil
	}
	sum := sha256.Sum256([]byte(e.Cursor))
	return &wire.ObsEvent{
		At:            time.UnixMicro(us).UTC(),
		Kind:          kind,
		Source:        SourceJournal,
		EventRecordID: hex.EncodeToString(sum[:8]),
		Payload:       marshalPayload(map[string]any{"sleep": strOrNil(string(e.Sleep), e.Sleep != "")}),
	}
}

// lookJournalctl is journalctl's path, "" when it is not installed.
func lookJournalctl() string {
	p, err := exec.LookPath("journalctl")
	if err != nil || errors.Is(err, exec.ErrDot) {
		return ""
	}
	return p
}
