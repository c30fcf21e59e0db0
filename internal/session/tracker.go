package session

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// presence is what the tracker knows of the user.
type presence int

const (
	unknown presence = iota // no reading yet
	active
	idle
)

func (p presence) kind() string {
	if p == active {
		return KindActive
	}
	return KindIdle
}

// parseLine reads one helper line: {"idle_ms":N} with N a non-negative
// integer, or {"idle_ms":null} when the helper could not read the idle
// time (known is false then). Other members are ignored, as upstream does;
// anything else is an error.
func parseLine(b []byte) (ms uint64, known bool, err error) {
	var v struct {
		IdleMS json.RawMessage `json:"idle_ms"`
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return 0, false, errors.New("not a JSON object")
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return 0, false, err
	}
	switch raw := string(v.IdleMS); raw {
	case "":
		return 0, false, errors.New("no idle_ms")
	case "null":
		return 0, false, nil
	default:
		n, err := strconv.ParseUint(raw, 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("idle_ms %.32s is not a non-negative integer", raw)
		}
		return n, true, nil
	}
}

// readLines calls fn with each line of r (without its end of line) until r
// ends. A line longer than max bytes is dropped and reported to fn as
// ErrLineTooLong; memory stays bounded by max whatever r sends.
func readLines(r io.Reader, max int, fn func(line []byte, err error)) error {
	br := bufio.NewReaderSize(r, max+1)
	var long bool // inside a line already reported too long
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			if !long {
				fn(nil, ErrLineTooLong)
				long = true
			}
			continue
		case err == nil:
			if !long {
				fn(bytes.TrimRight(line, "\r\n"), nil)
			}
			long = false
			continue
		}
		if len(line) > 0 && !long {
			fn(bytes.TrimRight(line, "\r\n"), nil) // a last line without its newline
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
}

// tracker turns idle readings into active/idle transitions: the first
// known presence is reported (it anchors the timeline), then only changes.
type tracker struct {
	threshold time.Duration
	state     presence
}

// classify maps an idle time to a presence: at or over the threshold is idle.
func (t *tracker) classify(ms uint64) presence {
	if ms >= uint64(t.threshold/time.Millisecond) {
		return idle
	}
	return active
}

// step folds p into the state and reports whether it is a change to emit.
func (t *tracker) step(p presence) bool {
	if p == unknown || p == t.state {
		return false
	}
	t.state = p
	return true
}

// event is the ObsEvent for a transition to p at at: upstream's shape, with
// the event_record_id "<kind>:<unix ms>" and a null payload.
func presenceEvent(p presence, at time.Time) wire.ObsEvent {
	at = at.UTC().Truncate(time.Millisecond)
	return wire.ObsEvent{
		At:            at,
		Kind:          p.kind(),
		Source:        SourceIdle,
		EventRecordID: p.kind() + ":" + strconv.FormatInt(at.UnixMilli(), 10),
	}
}
