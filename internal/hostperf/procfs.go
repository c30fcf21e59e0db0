package hostperf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// maxProcFile bounds how much of one /proc file is read.
const maxProcFile = 16 << 20

// sectorSize is the unit of the sector counts in /proc/diskstats.
const sectorSize = 512

// procSource reads a Linux machine's figures from the proc and sys
// directories of fsys (the root file system, or fixtures in tests).
type procSource struct {
	fsys  fs.FS
	buf   []byte
	gen   uint64
	disks map[string]*devState
	nets  map[string]*devState
}

func (p *procSource) read(r *reading) error {
	// The read buffer is kept only during a sample: a process embedding a
	// thousand agents would otherwise hold up to 16 KiB per sampler
	// between samples, minutes apart.
	defer func() { p.buf = nil }()
	b, err := p.readFile("proc/stat")
	if err != nil {
		return err
	}
	if r.cpuBusy, r.cpuTotal, r.cpuCount, err = parseStat(b); err != nil {
		return err
	}
	b, err = p.readFile("proc/meminfo")
	if err != nil {
		return err
	}
	if r.memTotal, r.memUsed, r.swapTotal, r.swapUsed, err = parseMeminfo(b); err != nil {
		return err
	}
	p.gen++
	if p.disks == nil {
		p.disks = make(map[string]*devState)
		p.nets = make(map[string]*devState)
	}
	if r.diskRead, r.diskWritten, err = p.readDisks(); err != nil {
		return err
	}
	if r.netRx, r.netTx, err = p.readNets(); err != nil {
		return err
	}
	return nil
}

// readDisks returns the bytes read and written by the whole disks since the
// previous read. A missing /proc/diskstats counts as no disk.
func (p *procSource) readDisks() (read, written uint64, err error) {
	b, err := p.readFile("proc/diskstats")
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	var sums devSums
	err = parseDiskstats(b, func(name []byte, sectorsRead, sectorsWritten uint64) error {
		d := p.disks[string(name)]
		if d == nil {
			d = &devState{class: p.diskClass(string(name))}
			p.disks[string(name)] = d
		} else if d.gen == p.gen {
			return fmt.Errorf("%w: /proc/diskstats: device %q listed twice", ErrMalformed, name)
		}
		dr, dw := d.advance(sectorsRead, sectorsWritten, p.gen)
		sums.add(d.class, dr*sectorSize, dw*sectorSize)
		return nil
	})
	prune(p.disks, p.gen)
	if err != nil {
		return 0, 0, err
	}
	read, written = sums.result()
	return read, written, nil
}

// readNets returns the bytes received and sent by the network interfaces
// since the previous read. A missing /proc/net/dev counts as no interface.
func (p *procSource) readNets() (rx, tx uint64, err error) {
	b, err := p.readFile("proc/net/dev")
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	var sums devSums
	err = parseNetDev(b, func(name []byte, rxBytes, txBytes uint64) error {
		d := p.nets[string(name)]
		if d == nil {
			d = &devState{class: p.netClass(string(name))}
			p.nets[string(name)] = d
		} else if d.gen == p.gen {
			return fmt.Errorf("%w: /proc/net/dev: interface %q listed twice", ErrMalformed, name)
		}
		drx, dtx := d.advance(rxBytes, txBytes, p.gen)
		sums.add(d.class, drx, dtx)
		return nil
	})
	prune(p.nets, p.gen)
	if err != nil {
		return 0, 0, err
	}
	rx, tx = sums.result()
	return rx, tx, nil
}

// diskClass classifies the block device name of /proc/diskstats.
func (p *procSource) diskClass(name string) devClass {
	// sysfs spells a slash in a device name (cciss/c0d0) as '!'.
	dir := "sys/block/" + strings.ReplaceAll(name, "/", "!")
	if !fs.ValidPath(dir) {
		return classExcluded
	}
	if _, err := fs.Stat(p.fsys, dir+"/device"); err == nil {
		return classPhysical
	}
	if _, err := fs.Stat(p.fsys, dir); err != nil {
		return classExcluded // a partition, or no sysfs
	}
	for _, virt := range []string{"loop", "ram", "zram"} {
		if strings.HasPrefix(name, virt) {
			return classExcluded
		}
	}
	return classFallback
}

// netClass classifies the interface name of /proc/net/dev.
func (p *procSource) netClass(name string) devClass {
	if name == "lo" {
		return classExcluded
	}
	dir := "sys/class/net/" + name
	if !fs.ValidPath(dir) {
		return classExcluded
	}
	if _, err := fs.Stat(p.fsys, dir+"/device"); err == nil {
		return classPhysical
	}
	return classFallback
}

// readFile reads the file name of p.fsys into p.buf, which it reuses.
func (p *procSource) readFile(name string) ([]byte, error) {
	f, err := p.fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("hostperf: %w", err)
	}
	defer f.Close()
	if p.buf == nil {
		p.buf = make([]byte, 0, 8<<10)
	}
	b := p.buf[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if len(b) > maxProcFile {
			p.buf = b[:0]
			return nil, fmt.Errorf("%w: /%s is larger than %d bytes", ErrMalformed, name, maxProcFile)
		}
		if err == io.EOF {
			p.buf = b
			return b, nil
		}
		if err != nil {
			p.buf = b
			return nil, fmt.Errorf("hostperf: read /%s: %w", name, err)
		}
	}
}

// parseStat parses /proc/stat: the cumulative busy and total CPU time of the
// "cpu" line, in clock ticks, and the number of "cpuN" lines.
func parseStat(b []byte) (busy, total uint64, cpus int, err error) {
	found := false
	n := 0
	for line := range bytes.Lines(b) {
		n++
		if !bytes.HasPrefix(line, []byte("cpu")) {
			continue
		}
		rest := line[3:]
		switch {
		case len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t'):
			if found {
				return 0, 0, 0, fmt.Errorf("%w: /proc/stat line %d: second cpu line", ErrMalformed, n)
			}
			found = true
			// user nice system idle iowait irq softirq steal guest guest_nice
			var v [8]uint64
			i := 0
			for f := range bytes.FieldsSeq(rest) {
				u, ok := parseUint(f)
				if !ok {
					return 0, 0, 0, fmt.Errorf("%w: /proc/stat line %d: bad number %q", ErrMalformed, n, f)
				}
				if i < len(v) {
					v[i] = u
				}
				i++
			}
			if i < 4 {
				return 0, 0, 0, fmt.Errorf("%w: /proc/stat line %d: %d fields in the cpu line, want at least 4", ErrMalformed, n, i)
			}
			for _, u := range v {
				if total+u < total {
					return 0, 0, 0, fmt.Errorf("%w: /proc/stat line %d: counters overflow", ErrMalformed, n)
				}
				total += u
			}
			idle := v[3] + v[4]
			if idle < v[3] || idle > total {
				return 0, 0, 0, fmt.Errorf("%w: /proc/stat line %d: counters overflow", ErrMalformed, n)
			}
			busy = total - idle
		case len(rest) > 0 && rest[0] >= '0' && rest[0] <= '9':
			id, _, _ := bytes.Cut(rest, []byte(" "))
			if _, ok := parseUint(id); !ok {
				return 0, 0, 0, fmt.Errorf("%w: /proc/stat line %d: bad cpu line", ErrMalformed, n)
			}
			cpus++
		default:
			return 0, 0, 0, fmt.Errorf("%w: /proc/stat line %d: bad cpu line", ErrMalformed, n)
		}
	}
	if !found {
		return 0, 0, 0, fmt.Errorf("%w: /proc/stat: no cpu line", ErrMalformed)
	}
	if cpus == 0 {
		return 0, 0, 0, fmt.Errorf("%w: /proc/stat: no cpuN line", ErrMalformed)
	}
	return busy, total, cpus, nil
}

// parseMeminfo parses /proc/meminfo into total and used memory and swap, in
// bytes.
func parseMeminfo(b []byte) (memTotal, memUsed, swapTotal, swapUsed uint64, err error) {
	const (
		hasTotal = 1 << iota
		hasAvailable
		hasFree
	)
	var has int
	var avail, free, buffers, cached, swapFree uint64
	n := 0
	for line := range bytes.Lines(b) {
		n++
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		key, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, 0, 0, 0, fmt.Errorf("%w: /proc/meminfo line %d: no colon", ErrMalformed, n)
		}
		var dst *uint64
		switch string(key) {
		case "MemTotal":
			dst, has = &memTotal, has|hasTotal
		case "MemAvailable":
			dst, has = &avail, has|hasAvailable
		case "MemFree":
			dst, has = &free, has|hasFree
		case "Buffers":
			dst = &buffers
		case "Cached":
			dst = &cached
		case "SwapTotal":
			dst = &swapTotal
		case "SwapFree":
			dst = &swapFree
		default:
			continue
		}
		var val, unit []byte
		i := 0
		for f := range bytes.FieldsSeq(rest) {
			switch i {
			case 0:
				val = f
			case 1:
				unit = f
			}
			i++
		}
		v, ok := parseUint(val)
		if !ok || i > 2 || (unit != nil && string(unit) != "kB") {
			return 0, 0, 0, 0, fmt.Errorf("%w: /proc/meminfo line %d: bad value %q", ErrMalformed, n, bytes.TrimSpace(rest))
		}
		if unit != nil {
			if v > (1<<64-1)/1024 {
				return 0, 0, 0, 0, fmt.Errorf("%w: /proc/meminfo line %d: value overflows", ErrMalformed, n)
			}
			v *= 1024
		}
		*dst = v
	}
	if has&hasTotal == 0 || memTotal == 0 {
		return 0, 0, 0, 0, fmt.Errorf("%w: /proc/meminfo: no MemTotal", ErrMalformed)
	}
	if has&hasAvailable == 0 {
		// Kernels before 3.14.
		if has&hasFree == 0 {
			return 0, 0, 0, 0, fmt.Errorf("%w: /proc/meminfo: neither MemAvailable nor MemFree", ErrMalformed)
		}
		avail = satAdd(satAdd(free, buffers), cached)
	}
	if avail < memTotal {
		memUsed = memTotal - avail
	}
	if swapFree < swapTotal {
		swapUsed = swapTotal - swapFree
	}
	return memTotal, memUsed, swapTotal, swapUsed, nil
}

// parseDiskstats parses /proc/diskstats, calling fn with each device's name
// and its counts of sectors read and written. It stops at fn's first error.
func parseDiskstats(b []byte, fn func(name []byte, sectorsRead, sectorsWritten uint64) error) error {
	n := 0
	for line := range bytes.Lines(b) {
		n++
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		// major minor name, then at least 11 counters: reads, reads merged,
		// sectors read, ms reading, writes, writes merged, sectors written,
		// and so on.
		var name []byte
		var rd, wr uint64
		i := 0
		for f := range bytes.FieldsSeq(line) {
			if i == 2 {
				name = f
			} else {
				v, ok := parseUint(f)
				if !ok {
					return fmt.Errorf("%w: /proc/diskstats line %d: bad number %q", ErrMalformed, n, f)
				}
				switch i {
				case 5:
					rd = v
				case 9:
					wr = v
				}
			}
			i++
		}
		if i < 14 {
			return fmt.Errorf("%w: /proc/diskstats line %d: %d fields, want at least 14", ErrMalformed, n, i)
		}
		if err := fn(name, rd, wr); err != nil {
			return err
		}
	}
	return nil
}

// parseNetDev parses /proc/net/dev, calling fn with each interface's name
// and its counts of bytes received and sent. It stops at fn's first error.
func parseNetDev(b []byte, fn func(name []byte, rx, tx uint64) error) error {
	n := 0
	for line := range bytes.Lines(b) {
		n++
		if n <= 2 {
			// Inter-|   Receive ... |  Transmit
			//  face |bytes    packets ...
			if !bytes.Contains(line, []byte("|")) {
				return fmt.Errorf("%w: /proc/net/dev line %d: not a header", ErrMalformed, n)
			}
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		name, rest, ok := bytes.Cut(line, []byte(":"))
		name = bytes.TrimSpace(name)
		if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t") {
			return fmt.Errorf("%w: /proc/net/dev line %d: no interface name", ErrMalformed, n)
		}
		// 8 receive counters (bytes first), then 8 transmit counters.
		var rx, tx uint64
		i := 0
		for f := range bytes.FieldsSeq(rest) {
			v, ok := parseUint(f)
			if !ok {
				return fmt.Errorf("%w: /proc/net/dev line %d: bad number %q", ErrMalformed, n, f)
			}
			switch i {
			case 0:
				rx = v
			case 8:
				tx = v
			}
			i++
		}
		if i < 16 {
			return fmt.Errorf("%w: /proc/net/dev line %d: %d counters, want 16", ErrMalformed, n, i)
		}
		if err := fn(name, rx, tx); err != nil {
			return err
		}
	}
	if n < 2 {
		return fmt.Errorf("%w: /proc/net/dev: no header", ErrMalformed)
	}
	return nil
}

// parseUint parses a non-empty decimal number without sign.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// satAdd returns a+b, or the largest uint64 when that overflows.
func satAdd(a, b uint64) uint64 {
	if a+b < a {
		return 1<<64 - 1
	}
	return a + b
}

// parseStatm parses /proc/self/statm: the resident set size in pages.
func parseStatm(b []byte) (uint64, error) {
	// size resident shared text lib data dt
	var rss uint64
	i := 0
	for f := range bytes.FieldsSeq(b) {
		v, ok := parseUint(f)
		if !ok {
			return 0, fmt.Errorf("%w: /proc/self/statm: bad number %q", ErrMalformed, f)
		}
		if i == 1 {
			rss = v
		}
		i++
	}
	if i < 2 {
		return 0, fmt.Errorf("%w: /proc/self/statm: no resident size", ErrMalformed)
	}
	return rss, nil
}

// parseIO parses /proc/self/io: read_bytes and write_bytes, the bytes the
// process caused to be read from and sent to storage.
func parseIO(b []byte) (read, written uint64, err error) {
	var haveRead, haveWritten bool
	for line := range bytes.Lines(b) {
		k, v, ok := bytes.Cut(bytes.TrimSpace(line), []byte(":"))
		if !ok {
			continue
		}
		var dst *uint64
		var have *bool
		switch string(k) {
		case "read_bytes":
			dst, have = &read, &haveRead
		case "write_bytes":
			dst, have = &written, &haveWritten
		default:
			continue
		}
		n, ok := parseUint(bytes.TrimSpace(v))
		if !ok || *have {
			return 0, 0, fmt.Errorf("%w: /proc/self/io: bad %s line %q", ErrMalformed, k, shortLine(line))
		}
		*dst, *have = n, true
	}
	if !haveRead || !haveWritten {
		return 0, 0, fmt.Errorf("%w: /proc/self/io: no read_bytes or write_bytes", ErrMalformed)
	}
	return read, written, nil
}

// parseBtime parses the btime line of /proc/stat: the boot time in seconds
// since the Unix epoch.
func parseBtime(b []byte) (int64, error) {
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("btime "))
		if !ok {
			continue
		}
		v, ok := parseUint(bytes.TrimSpace(rest))
		if !ok || v == 0 || v > 1<<62 {
			return 0, fmt.Errorf("%w: /proc/stat: bad btime %q", ErrMalformed, shortLine(line))
		}
		return int64(v), nil
	}
	return 0, fmt.Errorf("%w: /proc/stat: no btime line", ErrMalformed)
}

// shortLine returns line without its line ending, cut to 64 bytes, for an
// error message.
func shortLine(line []byte) []byte {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) > 64 {
		line = line[:64]
	}
	return line
}
