package agent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kanade/kanade-agent/internal/fsutil"
	"github.com/kanade/kanade-agent/wire"
)

// The emit watermark (ours).
//
// Upstream leaves de-duplication to the script: its emit.watermark_path is
// only documentation of where the script keeps its own state, and the
// agent forwards every line of a clean run. A script that re-reads a log
// (or whose own watermark write was lost) then publishes the same events
// again. This agent keeps, per named job (Command.id, not adhoc-run), a
// durable high-water mark in the data dir: the latest event time stored
// for the job and the keys of the events stored at exactly that time. A
// line whose event is older than the mark, or at the mark with a key
// already stored, is not stored again. The mark is advanced only after
// every new event of the run is in the obs outbox, so a crash in between
// re-emits (at least once) rather than loses; an event that could not be
// stored leaves the mark where it was, and an event stamped more than
// maxWatermarkSkew ahead of the agent's clock is stored without moving it
// (so it is stored again by later runs: at least once, never hiding the
// job's later events). The script sees the mark in
// KANADE_EMIT_WATERMARK (RFC 3339, UTC), so it can ask its source only for
// newer events.

// EnvEmitWatermark is the environment variable that gives an emit job's
// script the job's watermark: the time (RFC 3339, nanoseconds, UTC) of the
// latest event the agent stored for the job. Unset before the first one.
const EnvEmitWatermark = "KANADE_EMIT_WATERMARK"

// maxWatermarkKeys bounds the keys kept for the events at the mark.
const maxWatermarkKeys = 1024

// maxWatermarkSkew is how far ahead of the agent's clock an event's time
// may be and still move the mark: an event stamped far in the future (a
// wrong clock, a bad parse) is stored but does not move it, or it would
// hide every later event of the job.
const maxWatermarkSkew = 10 * time.Minute

// emitWatermark is a job's emit high-water mark, as stored.
type emitWatermark struct {
	Job  string    `json:"job"`
	At   time.Time `json:"at"`
	Keys []string  `json:"keys,omitempty"` // events stored at At
}

// watermarked reports whether cmd's emitted events are filtered by a
// watermark: named jobs only, ad hoc scripts share no identity.
func watermarked(cmd *wire.Command) bool {
	return cmd.Emit != nil && cmd.ID != "" && cmd.ID != wire.AdhocID
}

func (a *Agent) watermarkPath(job string) string {
	sum := sha256.Sum256([]byte(job))
	return filepath.Join(a.opts.DataDir, "emit", hex.EncodeToString(sum[:16])+".json")
}

// loadWatermark reads job's mark; none yet is the zero mark. A mark that
// does not read is reported and counts as none: events are emitted again
// rather than lost.
func (a *Agent) loadWatermark(job string) (emitWatermark, error) {
	b, err := os.ReadFile(a.watermarkPath(job))
	if errors.Is(err, os.ErrNotExist) {
		return emitWatermark{Job: job}, nil
	}
	var w emitWatermark
	if err == nil {
		err = json.Unmarshal(b, &w)
	}
	if err != nil || w.Job != job {
		if err == nil {
			err = fmt.Errorf("watermark file names job %q", w.Job)
		}
		return emitWatermark{Job: job}, fmt.Errorf("emit watermark of %s: %w", job, err)
	}
	return w, nil
}

func (a *Agent) saveWatermark(w emitWatermark) error {
	b, err := json.Marshal(w)
	if err != nil {
		return err
	}
	p := a.watermarkPath(w.Job)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(p, b, 0o600)
}

// emitEnv is the environment an emit job's script gets: its watermark.
func (a *Agent) emitEnv(cmd *wire.Command) []string {
	if !watermarked(cmd) {
		return nil
	}
	w, err := a.loadWatermark(cmd.ID)
	if err != nil {
		a.log.Warn("cannot read emit watermark; the script gets none", "job", cmd.ID, "err", err)
	}
	if w.At.IsZero() {
		return nil
	}
	return []string{EnvEmitWatermark + "=" + w.At.UTC().Format(time.RFC3339Nano)}
}

// eventKey identifies an event for the watermark: its source and record id
// (the backend's dedup key), or, without a record id, everything it says.
func eventKey(ev *wire.ObsEvent) string {
	if ev.EventRecordID != "" {
		return ev.Source + "\x00" + ev.EventRecordID
	}
	h := sha256.Sum256(ev.Payload)
	return ev.Source + "\x00" + ev.Kind + "\x00" + ev.At.UTC().Format(time.RFC3339Nano) + "\x00" + hex.EncodeToString(h[:8])
}

// emitEvents turns each stdout line of cmd's clean run into an ObsEvent in
// the obs outbox; for a named job, events at or behind its watermark are
// not stored again, and the watermark then advances (see above). Bad lines
// and failures are noted. It returns the number of events stored.
func (a *Agent) emitEvents(ctx context.Context, cmd *wire.Command, stdout []byte, notes *[]string) int {
	var events []*wire.ObsEvent
	bad := 0
	var firstErr error
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	sc.Buffer(make([]byte, 0, 64<<10), len(stdout)+1)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		ev, err := wire.DecodeObsEvent(line)
		if err != nil {
			bad++
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		ev.PcID = a.opts.PcID
		events = append(events, ev)
	}

	wm := watermarked(cmd)
	var w emitWatermark
	if wm {
		a.emitMu.Lock()
		defer a.emitMu.Unlock()
		var err error
		if w, err = a.loadWatermark(cmd.ID); err != nil {
			a.log.Warn("emit watermark unreadable; emitting every event", "job", cmd.ID, "err", err)
			*notes = append(*notes, "kanade-agent: emit: "+err.Error()+"; every event emitted")
		}
	}
	stored := map[string]bool{}
	for _, k := range w.Keys {
		stored[k] = true
	}
	good, old, failed := 0, 0, 0
	horizon := time.Now().Add(maxWatermarkSkew)
	next := w
	next.Keys = append([]string(nil), w.Keys...)
	for _, ev := range events {
		k := eventKey(ev)
		if wm && (ev.At.Before(w.At) || ev.At.Equal(w.At) && stored[k]) {
			old++
			continue
		}
		if wm && stored[k] {
			continue // the same event twice in one run
		}
		if _, err := a.obs.Enqueue(context.WithoutCancel(ctx), *ev); err != nil {
			failed++
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		good++
		stored[k] = true
		switch {
		case ev.At.After(horizon):
		case ev.At.After(next.At):
			next.At, next.Keys = ev.At, []string{k}
		case ev.At.Equal(next.At):
			next.Keys = append(next.Keys, k)
		}
	}
	if n := len(next.Keys); n > maxWatermarkKeys {
		next.Keys = next.Keys[n-maxWatermarkKeys:]
	}
	if bad+failed > 0 {
		*notes = append(*notes, fmt.Sprintf("kanade-agent: emit: %d of %d lines were not stored as events (first error: %v)", bad+failed, len(events)+bad, firstErr))
	}
	if old > 0 {
		*notes = append(*notes, fmt.Sprintf("kanade-agent: emit: %d events at or before the watermark %s were already stored", old, w.At.UTC().Format(time.RFC3339Nano)))
	}
	if wm && good > 0 {
		if failed > 0 {
			// An event that was not stored must come back next run.
			*notes = append(*notes, "kanade-agent: emit: watermark not advanced: an event could not be stored")
		} else if err := a.saveWatermark(next); err != nil {
			a.log.Error("cannot save emit watermark; the events may be emitted again", "job", cmd.ID, "err", err)
			*notes = append(*notes, "kanade-agent: emit: cannot save the watermark (events may be emitted again): "+err.Error())
		}
	}
	return good
}
