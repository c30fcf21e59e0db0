package procperf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"time"
)

// userHZ is the unit of the CPU times of /proc/<pid>/stat: USER_HZ, which
// the kernel's ABI fixes at 100 ticks a second whatever its internal HZ.
const userHZ = 100

// procSource reads processes from the proc directory of fsys (the root file
// system, or fixtures in tests).
type procSource struct {
	fsys     fs.FS
	pageSize uint64
	buf      []byte
}

func newSystemSource() source {
	return &procSource{fsys: os.DirFS("/"), pageSize: uint64(os.Getpagesize())}
}

// list reads /proc/<pid>/stat of every numeric entry of /proc.
func (p *procSource) list(ctx context.Context, dst []proc) ([]proc, error) {
	ents, err := fs.ReadDir(p.fsys, "proc")
	if err != nil {
		return dst, fmt.Errorf("procperf: %w", err)
	}
	for i, e := range ents {
		pid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil || pid == 0 {
			continue
		}
		if i%256 == 0 && ctx.Err() != nil {
			return dst, ctx.Err()
		}
		b, err := p.read("proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited, or not readable
		}
		pr, err := parseStat(b, p.pageSize)
		if err != nil {
			continue // a garbled entry costs that process only
		}
		pr.pid = uint32(pid)
		dst = append(dst, pr)
	}
	return dst, nil
}

// readIO reads read_bytes and write_bytes of /proc/<pid>/io.
func (p *procSource) readIO(pr *proc) {
	b, err := p.read("proc/" + strconv.FormatUint(uint64(pr.pid), 10) + "/io")
	if err != nil {
		return
	}
	r, w, err := parseIO(b)
	if err != nil {
		return
	}
	pr.ioRead, pr.ioWritten, pr.ioOK = r, w, true
}

// maxProcFile bounds what is read of one /proc file.
const maxProcFile = 64 << 10

// read reads the file name of p.fsys into p.buf, which it reuses.
func (p *procSource) read(name string) ([]byte, error) {
	f, err := p.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if p.buf == nil {
		p.buf = make([]byte, 4<<10)
	}
	n := 0
	for {
		m, err := f.Read(p.buf[n:])
		n += m
		if errors.Is(err, io.EOF) || err == nil && m == 0 {
			return p.buf[:n], nil
		}
		if err != nil {
			return nil, err
		}
		if n == len(p.buf) {
			if n >= maxProcFile {
				return nil, fmt.Errorf("%w: /%s is larger than %d bytes", ErrMalformed, name, maxProcFile)
			}
			nb := make([]byte, 2*n)
			copy(nb, p.buf)
			p.buf = nb
		}
	}
}

// parseStat parses /proc/<pid>/stat: "pid (comm) state ppid ...". The
// command name may hold spaces and parentheses, so it runs from the first
// '(' to the last ')'. Of the fields after it, the 12th and 13th are utime
// and stime, the 20th starttime and the 22nd rss (in pages).
func parseStat(b []byte, pageSize uint64) (proc, error) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return proc{}, fmt.Errorf("%w: stat: no command name", ErrMalformed)
	}
	var pr proc
	pr.name = string(b[open+1 : end])
	var f [22]uint64
	i := 0
	for field := range bytes.FieldsSeq(b[end+1:]) {
		if i >= len(f) {
			break
		}
		if i > 0 { // the first is the state letter
			if v, err := strconv.ParseInt(string(field), 10, 64); err == nil {
				f[i] = uint64(max(v, 0)) // priority and nice may be negative
			} else if f[i], err = strconv.ParseUint(string(field), 10, 64); err != nil {
				return proc{}, fmt.Errorf("%w: stat: field %d: %q", ErrMalformed, i+3, field)
			}
		}
		i++
	}
	if i < len(f) {
		return proc{}, fmt.Errorf("%w: stat: %d fields after the command name, want %d", ErrMalformed, i, len(f))
	}
	ticks := f[11] + f[12]
	pr.cpu = time.Duration(ticks) * (time.Second / userHZ)
	pr.start = f[19]
	pr.rss = f[21] * pageSize
	return pr, nil
}

// parseIO parses /proc/<pid>/io for read_bytes and write_bytes.
func parseIO(b []byte) (read, written uint64, err error) {
	var haveR, haveW bool
	for line := range bytes.Lines(b) {
		k, v, ok := bytes.Cut(bytes.TrimSpace(line), []byte(":"))
		if !ok {
			continue
		}
		var dst *uint64
		switch string(k) {
		case "read_bytes":
			dst, haveR = &read, true
		case "write_bytes":
			dst, haveW = &written, true
		default:
			continue
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%w: io: %s: %q", ErrMalformed, k, v)
		}
		*dst = n
	}
	if !haveR || !haveW {
		return 0, 0, fmt.Errorf("%w: io: no read_bytes or write_bytes", ErrMalformed)
	}
	return read, written, nil
}
