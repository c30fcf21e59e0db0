package timeline

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// UtmpRecordSize is the size of a utmp record: struct utmp of glibc on
// Linux amd64 and arm64 (little-endian).
const UtmpRecordSize = 384

// Offsets of the utmp record fields this package reads.
const (
	utType    = 0   // int16
	utPid     = 4   // int32
	utLine    = 8   // [32]byte
	utUser    = 44  // [32]byte
	utHost    = 76  // [256]byte
	utTvSec   = 340 // int32
	utTvUsec  = 344 // int32
	lineLen   = 32
	userLen   = 32
	hostLen   = 256
	maxOpen   = 1024 // open sessions remembered at most
	wtmpRead  = 1 << 16
	wtmpLabel = "wtmp"
)

// utmp record types (ut_type).
const (
	UtRunLvl      = 1
	UtBootTime    = 2
	UtUserProcess = 7
	UtDeadProcess = 8
)

// SourceWtmp is the ObsEvent source of the events read from wtmp.
const SourceWtmp = wtmpLabel

const wtmpWatermarkFile = "wtmp-reader-watermark.json"

// UtmpRecord is the part of one utmp record the wtmp reader uses.
type UtmpRecord struct {
	// Type is ut_type (UtBootTime, UtUserProcess, ...).
	Type int16
	// Pid is ut_pid.
	Pid int32
	// Line is ut_line, the terminal ("pts/0", "tty1", "~" for boot and shutdown).
	Line string
	// User is ut_user ("reboot" for boot, "shutdown" for shutdown).
	User string
	// Host is ut_host (the remote host, or the kernel release for boot).
	Host string
	// At is ut_tv, in UTC.
	At time.Time
	// ID is the record's event_record_id: the first 16 hex digits of the
	// SHA-256 of its 384 bytes, the same wherever the record is read from
	// (wtmp or, once rotated, wtmp.1).
	ID string
}

// DecodeUtmp decodes one 384-byte utmp record.
func DecodeUtmp(b []byte) (UtmpRecord, error) {
	if len(b) != UtmpRecordSize {
		return UtmpRecord{}, fmt.Errorf("%w: utmp record of %d bytes, want %d", ErrMalformed, len(b), UtmpRecordSize)
	}
	le := binary.LittleEndian
	sum := sha256.Sum256(b)
	sec := int64(le.Uint32(b[utTvSec:])) // unsigned: past 2038, not before 1970
	usec := int64(int32(le.Uint32(b[utTvUsec:])))
	if usec < 0 || usec >= 1e6 {
		usec = 0
	}
	return UtmpRecord{
		Type: int16(le.Uint16(b[utType:])),
		Pid:  int32(le.Uint32(b[utPid:])),
		Line: cString(b[utLine : utLine+lineLen]),
		User: cString(b[utUser : utUser+userLen]),
		Host: cString(b[utHost : utHost+hostLen]),
		At:   time.Unix(sec, usec*1000).UTC(),
		ID:   hex.EncodeToString(sum[:8]),
	}, nil
}

// EncodeUtmp returns r as a 384-byte utmp record (ID is ignored). Tests and
// tools use it to write wtmp files.
func EncodeUtmp(r UtmpRecord) []byte {
	b := make([]byte, UtmpRecordSize)
	le := binary.LittleEndian
	le.PutUint16(b[utType:], uint16(r.Type))
	le.PutUint32(b[utPid:], uint32(r.Pid))
	copy(b[utLine:utLine+lineLen], r.Line)
	copy(b[utUser:utUser+userLen], r.User)
	copy(b[utHost:utHost+hostLen], r.Host)
	le.PutUint32(b[utTvSec:], uint32(r.At.Unix()))
	le.PutUint32(b[utTvUsec:], uint32(r.At.Nanosecond()/1000))
	return b
}

// cString is b up to its first NUL.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(bytes.ToValidUTF8(b, []byte("\uFFFD")))
}

// openSession is a login seen in wtmp and not yet ended.
type openSession struct {
	User string `json:"user"`
	Host string `json:"host,omitempty"`
	Pid  int32  `json:"pid"`
}

// wtmpMark is the wtmp watermark: the file (inode), the offset of the
// first record not yet handled and the id of the record before it (a file
// truncated and written again since has another there), and the sessions
// open at that point (a DEAD_PROCESS record usually has no user: it is
// taken from the login).
type wtmpMark struct {
	Ino      uint64                  `json:"ino"`
	Offset   int64                   `json:"offset"`
	Last     string                  `json:"last,omitempty"`
	Sessions map[string]*openSession `json:"sessions"`
}

// wtmpReader reads a wtmp file.
type wtmpReader struct {
	s    *Source
	file string
	path string
	wm   wtmpMark
	// missing is set once the file was found missing (logged once).
	missing bool
}

func (w *wtmpReader) load() {
	w.wm = wtmpMark{}
	if !w.s.loadJSON(w.path, &w.wm) || w.wm.Offset < 0 || w.wm.Offset%UtmpRecordSize != 0 {
		w.wm = wtmpMark{}
	}
	if w.wm.Sessions == nil {
		w.wm.Sessions = map[string]*openSession{}
	}
	for line, o := range w.wm.Sessions {
		if o == nil || len(w.wm.Sessions) > maxOpen {
			delete(w.wm.Sessions, line)
		}
	}
}

// poll reads the records appended since the last poll. When the file was
// rotated (another inode), the rest of the old file is read first from
// <file>.1 if it is still there under the old inode.
func (w *wtmpReader) poll(ctx context.Context, emit Emit) {
	s := w.s
	fi, err := os.Stat(w.file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if !w.missing {
				s.log.Info("timeline: no wtmp file; boot, shutdown, logon and logoff are not read from it", "file", w.file)
			}
			w.missing = true
			return
		}
		s.log.Warn("timeline: wtmp unreadable", "file", w.file, "err", err)
		return
	}
	w.missing = false
	since := s.now().Add(-s.opts.LookBack)
	ino := inode(fi)
	if w.wm.Ino != 0 && ino != 0 && ino != w.wm.Ino {
		old := w.file + ".1"
		if ofi, err := os.Stat(old); err == nil && inode(ofi) == w.wm.Ino {
			if err := w.read(ctx, old, since, emit); err != nil {
				s.log.Warn("timeline: rotated wtmp", "file", old, "err", err)
				return // its rest is tried again next poll
			}
		}
		w.wm.Ino, w.wm.Offset, w.wm.Last = ino, 0, ""
	} else if fi.Size() < w.wm.Offset || !w.lastMatches(w.file) {
		w.wm.Offset, w.wm.Last = 0, "" // truncated or rewritten: read it again from the start
	}
	w.wm.Ino = ino
	if err := w.read(ctx, w.file, since, emit); err != nil {
		s.log.Warn("timeline: wtmp", "file", w.file, "err", err)
	}
}

// lastMatches reports whether the record before the watermark offset in
// file is the one last handled.
func (w *wtmpReader) lastMatches(file string) bool {
	if w.wm.Offset == 0 || w.wm.Last == "" {
		return true
	}
	f, err := os.Open(file)
	if err != nil {
		return true // read reports it
	}
	defer f.Close()
	b := make([]byte, UtmpRecordSize)
	if _, err := f.ReadAt(b, w.wm.Offset-UtmpRecordSize); err != nil {
		return false
	}
	r, _ := DecodeUtmp(b)
	return r.ID == w.wm.Last
}

// read handles the records of file from the watermark offset on, emitting
// those at or after since, and saves the watermark after every emitted
// event and at the end.
func (w *wtmpReader) read(ctx context.Context, file string, since time.Time, emit Emit) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(w.wm.Offset, io.SeekStart); err != nil {
		return err
	}
	start := w.wm.Offset
	defer func() {
		if w.wm.Offset != start {
			if err := w.s.saveJSON(w.path, &w.wm); err != nil {
				w.s.log.Error("timeline: wtmp events may be emitted again after a restart", "err", err)
			}
		}
	}()
	br := bufio.NewReaderSize(f, wtmpRead)
	buf := make([]byte, UtmpRecordSize)
	for {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		if _, err := io.ReadFull(br, buf); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil // a partial record is being written: read next poll
			}
			return err
		}
		rec, _ := DecodeUtmp(buf) // cannot fail: buf is one record
		ev, apply := w.interpret(rec)
		if ev != nil && !rec.At.Before(since) {
			if err := emit(ctx, *ev); err != nil {
				return fmt.Errorf("emit record at offset %d (tried again next poll): %w", w.wm.Offset, err)
			}
			apply()
			w.wm.Offset, w.wm.Last = w.wm.Offset+UtmpRecordSize, rec.ID
			if err := w.s.saveJSON(w.path, &w.wm); err != nil {
				w.s.log.Error("timeline: wtmp events may be emitted again after a restart", "err", err)
			}
			continue
		}
		apply()
		w.wm.Offset, w.wm.Last = w.wm.Offset+UtmpRecordSize, rec.ID
	}
}

// interpret returns the event rec stands for (nil for none) and the change
// of the open sessions it makes, applied once the event is stored.
func (w *wtmpReader) interpret(rec UtmpRecord) (*wire.ObsEvent, func()) {
	nothing := func() {}
	obs := func(kind string, payload any) *wire.ObsEvent {
		return &wire.ObsEvent{At: rec.At, Kind: kind, Source: SourceWtmp, EventRecordID: rec.ID, Payload: marshalPayload(payload)}
	}
	sessions := w.wm.Sessions
	switch rec.Type {
	case UtBootTime:
		// Every session ended with the previous run of the machine.
		return obs(KindBoot, map[string]any{"kernel": strOrNil(rec.Host, rec.Host != "")}), func() { clear(sessions) }
	case UtRunLvl:
		if rec.User != "shutdown" {
			return nil, nothing
		}
		return obs(KindShutdown, nil), func() { clear(sessions) }
	case UtUserProcess:
		if rec.Line == "" {
			return nil, nothing
		}
		ev := obs(KindLogon, map[string]any{"user": rec.User, "tty": rec.Line, "host": strOrNil(rec.Host, rec.Host != ""), "pid": rec.Pid})
		return ev, func() {
			if _, ok := sessions[rec.Line]; !ok && len(sessions) >= maxOpen {
				return
			}
			sessions[rec.Line] = &openSession{User: rec.User, Host: rec.Host, Pid: rec.Pid}
		}
	case UtDeadProcess:
		// Only the end of a login seen in wtmp is a logoff (as last(1)
		// reads it): a getty or an init process also ends with one.
		o, ok := sessions[rec.Line]
		if !ok {
			return nil, nothing
		}
		user := rec.User
		if user == "" {
			user = o.User
		}
		ev := obs(KindLogoff, map[string]any{"user": user, "tty": rec.Line, "host": strOrNil(o.Host, o.Host != ""), "pid": o.Pid})
		return ev, func() { delete(sessions, rec.Line) }
	}
	return nil, nothing
}
