package hostperf

import (
	"sync"
	"time"
)

// initTime stands in for the process start time when the system cannot tell.
var initTime = time.Now()

// Self samples the agent process's own CPU and memory use. The zero value is
// ready to use. Its methods are safe for concurrent use.
type Self struct {
	mu      sync.Mutex
	primed  bool
	prevAt  time.Time
	prevCPU time.Duration
}

// Sample returns the process's CPU use since the previous sample, in percent
// of one core (so above 100 when several threads run at once), and its
// resident memory in bytes (the working set on Windows). The first sample
// covers the time since the process started (since this package was
// initialised, should the system not tell the start time). The interval ends at now, which
// should be the current time; when now is not after the previous sample's,
// cpuPct is 0.
func (s *Self) Sample(now time.Time) (cpuPct float64, rss uint64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cpu, rss, err := selfUsage()
	if err != nil {
		return 0, 0, err
	}
	if !s.primed {
		start, err := processStart()
		if err != nil {
			start = initTime
		}
		s.prevAt, s.prevCPU = start, 0
	}
	if el := now.Sub(s.prevAt); el > 0 && cpu >= s.prevCPU {
		cpuPct = 100 * float64(cpu-s.prevCPU) / float64(el)
	}
	s.primed, s.prevAt, s.prevCPU = true, now, cpu
	return cpuPct, rss, nil
}
