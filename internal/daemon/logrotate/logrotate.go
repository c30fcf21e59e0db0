package logrotate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// Defaults of Options.
const (
	DefaultMaxSize  = 10 << 20 // 10 MiB
	DefaultMaxFiles = 3
)

// ErrClosed is returned by Write and Close after Close.
var ErrClosed = errors.New("logrotate: closed")

// Options configures Open. The zero value is usable.
type Options struct {
	// MaxSize is the size in bytes after which the file is rotated. A single
	// write is never split, so a file can exceed MaxSize by one write.
	// Default DefaultMaxSize.
	MaxSize int64
	// MaxFiles is the number of files kept, the current one included: 3 keeps
	// agent.log, agent.log.1 and agent.log.2. Default DefaultMaxFiles.
	MaxFiles int
	// Perm is the mode of a new log file. Default 0o640.
	Perm fs.FileMode
}

// Writer appends to a size-rotated file. It is safe for concurrent use.
type Writer struct {
	path string
	opts Options

	mu     sync.Mutex
	f      *os.File
	size   int64 // bytes in the current file, as far as rotation is concerned
	closed bool
	err    error // last rotation error
}

// Open opens path for appending, creating it and its directory if needed.
func Open(path string, opts Options) (*Writer, error) {
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.MaxFiles <= 0 {
		opts.MaxFiles = DefaultMaxFiles
	}
	if opts.Perm == 0 {
		opts.Perm = 0o640
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("logrotate: %w", err)
	}
	w := &Writer{path: path, opts: opts}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Writer) open() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, w.opts.Perm)
	if err != nil {
		return fmt.Errorf("logrotate: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("logrotate: %w", err)
	}
	w.f, w.size = f, st.Size()
	return nil
}

// Path returns the path of the current log file.
func (w *Writer) Path() string { return w.path }

// Write appends p to the current file, rotating first if p would take the
// file past MaxSize.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, ErrClosed
	}
	if w.size > 0 && w.size+int64(len(p)) > w.opts.MaxSize {
		if err := w.rotate(); err != nil && w.f == nil {
			return 0, err
		}
	}
	n, err := w.f.Write(p)
	w.size += int64(n)
	return n, err
}

// Rotate rotates the file now, even if it is below MaxSize.
func (w *Writer) Rotate() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	return w.rotate()
}

// Err returns the error of the last failed rotation, or nil if the last
// rotation succeeded.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *Writer) backup(i int) string { return w.path + "." + strconv.Itoa(i) }

// rotate shifts the backups, renames the current file to .1 and opens a new
// one. On failure it reopens the current file, so writes go on, and counts
// the file as empty so that the next attempt waits for MaxSize more bytes.
// w.f is nil only if even the reopen failed.
func (w *Writer) rotate() error {
	if err := w.f.Close(); err != nil {
		w.err = fmt.Errorf("logrotate: close: %w", err)
	}
	w.f = nil
	err := w.shift()
	if oerr := w.open(); oerr != nil {
		w.err = errors.Join(err, oerr)
		return w.err
	}
	if err != nil {
		w.size = 0
	}
	w.err = err
	return err
}

func (w *Writer) shift() error {
	last := w.opts.MaxFiles - 1
	if last == 0 {
		if err := os.Remove(w.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("logrotate: %w", err)
		}
		return nil
	}
	if err := os.Remove(w.backup(last)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("logrotate: %w", err)
	}
	for i := last - 1; i >= 1; i-- {
		if err := os.Rename(w.backup(i), w.backup(i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("logrotate: %w", err)
		}
	}
	if err := os.Rename(w.path, w.backup(1)); err != nil {
		return fmt.Errorf("logrotate: %w", err)
	}
	return nil
}

// Close closes the current file. A second call returns ErrClosed.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("logrotate: %w", err)
	}
	return nil
}
