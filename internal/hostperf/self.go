package hostperf

import (
	"sync"
	"time"
)

// SelfSample is one sample of the agent process's own figures.
type SelfSample struct {
	// CPUPct is the process's CPU use between the previous sample and this
	// one, in percent of one core (so above 100 when several threads run at
	// once). It is meaningful only when HasCPU is set.
	CPUPct float64
	// HasCPU is false on the first sample, which has no baseline to compare
	// with, and true on every later one.
	HasCPU bool
	// RSSBytes is the process's resident memory (the working set on Windows).
	RSSBytes uint64
	// DiskReadBytes and DiskWrittenBytes are the bytes the process has read
	// and written since it started, cumulative. They are meaningful only when
	// HasDisk is set.
	DiskReadBytes, DiskWrittenBytes uint64
	// HasDisk is false when the system does not tell the process's I/O
	// counts (no /proc/self/io, as on kernels without I/O accounting).
	HasDisk bool
}

// Self samples the agent process's own CPU, memory and disk use. The zero
// value is ready to use. Its methods are safe for concurrent use.
type Self struct {
	mu      sync.Mutex
	primed  bool
	prevAt  time.Time
	prevCPU time.Duration
}

// Sample returns the process's figures at now, which should be the current
// time. The CPU use covers the interval since the previous sample; the first
// sample only sets the baseline (HasCPU false). When now is not after the
// previous sample's now, CPUPct is 0. An error means the CPU time or the
// memory could not be read; a missing disk figure is not an error (HasDisk
// false).
func (s *Self) Sample(now time.Time) (SelfSample, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cpu, rss, err := selfUsage()
	if err != nil {
		return SelfSample{}, err
	}
	out := SelfSample{RSSBytes: rss}
	if r, w, err := selfIO(); err == nil {
		out.DiskReadBytes, out.DiskWrittenBytes, out.HasDisk = r, w, true
	}
	if s.primed {
		out.HasCPU = true
		if el := now.Sub(s.prevAt); el > 0 && cpu >= s.prevCPU {
			out.CPUPct = 100 * float64(cpu-s.prevCPU) / float64(el)
		}
	}
	s.primed, s.prevAt, s.prevCPU = true, now, cpu
	return out, nil
}
