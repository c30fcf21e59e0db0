package ledger

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/kanade/kanade-agent/internal/fsutil"
)

// load reads the log into memory, handles a torn or corrupt tail, prunes,
// rewrites the log when needed and opens it for appending. It runs in Open,
// before the committer starts.
func (l *Ledger) load() error {
	start := time.Now()
	tmp := filepath.Join(l.dir, tmpName)
	if err := os.Remove(tmp); err == nil {
		l.log.Warn("removed stray tmp file from an interrupted compaction", "file", tmp)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ledger: open: remove stray tmp: %w", err)
	}

	path := filepath.Join(l.dir, logName)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		// A new ledger: write an empty snapshot the durable way.
		if err := l.compactNow(); err != nil {
			return fmt.Errorf("ledger: open: create log: %w", err)
		}
		l.log.Info("ledger created")
		return nil
	}
	if err != nil {
		return fmt.Errorf("ledger: open: %w", err)
	}

	var recs []record
	rewrite := false
	switch {
	case len(data) == 0:
		// A crash between creating and writing a file can leave it empty;
		// this version always renames a complete file into place.
		l.log.Warn("empty log file; starting an empty ledger", "file", path)
		rewrite = true
	case !validHeader(data):
		salvaged := salvage(data, &recs)
		cpath, err := l.preserveCorrupt(data)
		if err != nil {
			return err
		}
		l.log.Error("ledger log has a bad header; preserved it aside and salvaged intact records",
			"file", path, "bytes", len(data), "salvaged", salvaged, "corrupt_file", cpath)
		rewrite = true
	default:
		res := parseLog(data)
		recs = res.records
		switch {
		case res.validEnd == len(data):
		case res.torn:
			// An append whose fsync never returned: no caller was told it
			// was durable, so dropping it loses nothing promised.
			l.log.Warn("ledger log has a torn tail (crash during a write); truncated it",
				"file", path, "kept_bytes", res.validEnd, "dropped_bytes", len(data)-res.validEnd)
			rewrite = true
		default:
			cpath, err := l.preserveCorrupt(data[res.validEnd:])
			if err != nil {
				return err
			}
			l.log.Error("ledger log is corrupt; kept the valid prefix, salvaged intact records after it, preserved the rest aside",
				"file", path, "kept_bytes", res.validEnd, "corrupt_bytes", len(data)-res.validEnd,
				"salvaged", res.salvaged, "corrupt_file", cpath)
			rewrite = true
		}
	}

	for _, r := range recs {
		l.apply(r)
	}
	for id, e := range l.entries {
		if e.state == StateLaunching {
			l.recovered = append(l.recovered, Entry{RequestID: id, State: StateLaunching, Meta: slices.Clone(e.meta), At: time.Unix(0, e.at)})
		}
	}
	slices.SortFunc(l.recovered, func(a, b Entry) int {
		return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.RequestID, b.RequestID))
	})

	l.mu.Lock()
	pruned := l.pruneLocked()
	l.mu.Unlock()
	if rewrite || pruned > 0 || int64(len(data)) > l.opts.CompactBytes {
		if err := l.compactNow(); err != nil {
			return fmt.Errorf("ledger: open: rewrite log: %w", err)
		}
	} else {
		if err := l.openAppend(); err != nil {
			return fmt.Errorf("ledger: open: %w", err)
		}
		l.compactBase = l.logSize
	}
	l.log.Info("ledger opened", "entries", len(l.entries), "launching", len(l.recovered),
		"records", len(recs), "pruned", pruned, "took", time.Since(start))
	return nil
}

// apply merges one record into the in-memory state. Records only move an
// entry forward (none → launching → finished), so applying them is
// idempotent and order-insensitive across states: a launching record for a
// finished entry changes nothing.
func (l *Ledger) apply(r record) {
	e := l.entries[r.id]
	switch r.kind {
	case kindLaunching:
		if e == nil {
			l.entries[r.id] = &entry{state: StateLaunching, at: r.at, meta: slices.Clone(r.meta)}
		}
	case kindFinished:
		if e == nil {
			l.entries[r.id] = &entry{state: StateFinished, at: r.at}
		} else if e.state != StateFinished {
			e.state, e.at, e.meta = StateFinished, r.at, nil
		}
	}
}

// preserveCorrupt writes b to a new ledger.corrupt-<time> file, durably, and
// records its path for CorruptFiles.
func (l *Ledger) preserveCorrupt(b []byte) (string, error) {
	base := corruptBase + time.Now().UTC().Format("20060102T150405.000000000Z")
	for i := 0; ; i++ {
		name := base
		if i > 0 {
			name += "-" + strconv.Itoa(i)
		}
		path := filepath.Join(l.dir, name)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) && i < 100 {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("ledger: open: preserve corrupt log: %w", err)
		}
		_, err = f.Write(b)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = fsutil.SyncDir(l.dir)
		}
		if err != nil {
			return "", fmt.Errorf("ledger: open: preserve corrupt log: %w", err)
		}
		l.corrupt = append(l.corrupt, path)
		return path, nil
	}
}
