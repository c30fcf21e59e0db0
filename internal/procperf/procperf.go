package procperf

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// proc is one process as a source reads it.
type proc struct {
	pid uint32
	// start tells a process from a later one with the same pid: the start
	// time in the source's unit.
	start uint64
	name  string
	// cpu is the CPU time (user and system) used since the process started.
	cpu time.Duration
	rss uint64
	// ioRead and ioWritten are the bytes read and written since the
	// process started, valid when ioOK is set.
	ioRead, ioWritten uint64
	ioOK              bool
}

// source reads the processes of one machine. Only Sampler calls it, under
// Sampler.mu.
type source interface {
	// list appends every process it can read to dst. A process that exits
	// or cannot be read while it is listed is left out.
	list(ctx context.Context, dst []proc) ([]proc, error)
	// readIO fills p's I/O counters, if it can and list did not.
	readIO(p *proc)
}

// mark is what a Sampler remembers of a process from its previous sample.
type mark struct {
	start             uint64
	cpu               time.Duration
	ioRead, ioWritten uint64
	ioOK              bool
}

// Sampler samples the processes of the machine. The zero value is ready
// to use. Its methods are safe for concurrent use, but a sampler is meant
// to have one caller: each sample is measured against the previous one.
type Sampler struct {
	mu     sync.Mutex
	src    source // nil until the first sample; tests set it
	primed bool
	prevAt time.Time
	cpu    map[uint32]mark // every process of the previous sample
	io     map[uint32]mark // the processes returned by the previous sample
	buf    []proc
}

// Reset forgets the previous sample: the next one sets a new baseline.
func (s *Sampler) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.primed = false
	s.cpu, s.io = nil, nil
	s.buf = nil // a long pause between samples need not hold the list
}

// Sample reads every process and returns the n busiest by CPU use since
// the previous sample (at least 1), busiest first; ties go to the larger
// resident set, then the lower pid. now is the time of the sample and
// should come from time.Now (its monotonic reading is used for the
// interval). PcID and At of the message are the caller's.
//
// On the first sample after Reset (or after an error) CPU use is 0 for
// every process and no disk rate is known: it only sets the baseline. A
// disk rate is known for a process that was also returned by the previous
// sample and whose counters can be read. ctx bounds the walk over the
// processes; when it ends the sample fails with its error.
func (s *Sampler) Sample(ctx context.Context, now time.Time, n int) ([]wire.ProcessSnapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.src == nil {
		s.src = newSystemSource()
	}
	procs, err := s.src.list(ctx, s.buf[:0])
	s.buf = procs
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		s.primed, s.cpu, s.io = false, nil, nil
		return nil, err
	}
	elapsed := now.Sub(s.prevAt).Seconds()
	primed := s.primed && elapsed > 0

	type ranked struct {
		i   int
		pct float64
	}
	rank := make([]ranked, len(procs))
	cpu := make(map[uint32]mark, len(procs))
	for i := range procs {
		p := &procs[i]
		pct := 0.0
		if primed {
			used := p.cpu // a process new since the last sample: all of it
			if m, ok := s.cpu[p.pid]; ok && m.start == p.start {
				used = max(0, p.cpu-m.cpu)
			}
			pct = 100 * used.Seconds() / elapsed
		}
		rank[i] = ranked{i, pct}
		cpu[p.pid] = mark{start: p.start, cpu: p.cpu}
	}
	slices.SortFunc(rank, func(a, b ranked) int {
		if c := cmp.Compare(b.pct, a.pct); c != 0 {
			return c
		}
		pa, pb := &procs[a.i], &procs[b.i]
		if c := cmp.Compare(pb.rss, pa.rss); c != 0 {
			return c
		}
		return cmp.Compare(pa.pid, pb.pid)
	})
	rank = rank[:min(max(n, 1), len(rank))]

	out := make([]wire.ProcessSnapshot, 0, len(rank))
	io := make(map[uint32]mark, len(rank))
	for _, r := range rank {
		p := &procs[r.i]
		s.src.readIO(p)
		snap := wire.ProcessSnapshot{
			PID: p.pid, Name: p.name, CPUPct: r.pct,
			RSSBytes: int64(min(p.rss, math.MaxInt64)),
		}
		if p.ioOK {
			if m, ok := s.io[p.pid]; ok && primed && m.ioOK && m.start == p.start {
				rd := float64(sub(p.ioRead, m.ioRead)) / elapsed
				wr := float64(sub(p.ioWritten, m.ioWritten)) / elapsed
				snap.DiskReadBytesPerSec, snap.DiskWrittenBytesPerSec = &rd, &wr
			}
			io[p.pid] = mark{start: p.start, ioRead: p.ioRead, ioWritten: p.ioWritten, ioOK: true}
		}
		out = append(out, snap)
	}
	s.cpu, s.io = cpu, io
	s.prevAt, s.primed = now, true
	return out, nil
}

// sub returns a-b, or 0 when the counter went backwards.
func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}
