package hostperf

import (
	"sync"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// Host samples the machine's load: CPU, memory, swap, disk and network. The
// zero value is ready to use. Its methods are safe for concurrent use.
type Host struct {
	mu        sync.Mutex
	src       source // nil until the first sample; tests set it
	primed    bool
	prevAt    time.Time
	prevBusy  uint64
	prevTotal uint64
}

// reading is one set of raw figures from a source.
type reading struct {
	// cpuBusy and cpuTotal are cumulative CPU times in the source's unit.
	cpuBusy, cpuTotal uint64
	cpuCount          int
	memTotal, memUsed uint64
	swapTotal         uint64
	swapUsed          uint64
	// The byte counts below are increases since the source's previous read.
	diskRead, diskWritten uint64
	netRx, netTx          uint64
}

// source reads the raw figures of one machine. Only Host calls it, under
// Host.mu.
type source interface {
	read(r *reading) error
}

// Sample returns the machine's figures as a wire.HostPerf with At set to now
// and PcID left for the caller to fill. CPUPct is the CPU use over all cores
// between the previous sample and this one, from 0 to 100; the byte rates
// are averaged over now minus the previous sample's now. On the first sample,
// and on the first after an error, CPUPct and the rates are 0 and
// RatesUnknown is set, so that they are left out of the message, as
// upstream leaves them out. An error means no figure could be trusted; the
// next sample starts afresh.
func (h *Host) Sample(now time.Time) (wire.HostPerf, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.src == nil {
		h.src = newSystemSource()
	}
	var r reading
	if err := h.src.read(&r); err != nil {
		h.primed = false
		return wire.HostPerf{}, err
	}
	p := wire.HostPerf{
		At:             now,
		CPUCount:       r.cpuCount,
		MemUsedBytes:   r.memUsed,
		MemTotalBytes:  r.memTotal,
		SwapUsedBytes:  r.swapUsed,
		SwapTotalBytes: r.swapTotal,
	}
	p.RatesUnknown = !h.primed
	if h.primed {
		if r.cpuTotal > h.prevTotal && r.cpuBusy >= h.prevBusy {
			p.CPUPct = min(100, 100*float64(r.cpuBusy-h.prevBusy)/float64(r.cpuTotal-h.prevTotal))
		}
		if el := now.Sub(h.prevAt).Seconds(); el > 0 {
			p.DiskReadBytesPerSec = float64(r.diskRead) / el
			p.DiskWrittenBytesPerSec = float64(r.diskWritten) / el
			p.NetRxBytesPerSec = float64(r.netRx) / el
			p.NetTxBytesPerSec = float64(r.netTx) / el
		}
	}
	h.primed = true
	h.prevAt = now
	h.prevBusy = r.cpuBusy
	h.prevTotal = r.cpuTotal
	return p, nil
}

// devClass says whether a device's traffic counts.
type devClass uint8

const (
	// classExcluded never counts (loopback, partitions, loop devices).
	classExcluded devClass = iota
	// classPhysical counts always.
	classPhysical
	// classFallback counts only when no device is classPhysical.
	classFallback
)

// devState is the previous counters of one disk or interface.
type devState struct {
	class devClass
	seen  bool   // a and b hold counters from an earlier read
	gen   uint64 // the read that last saw the device
	a, b  uint64
}

// advance records the counters a and b of read gen and returns their
// increase since the previous read: 0 for a device not seen before and for a
// counter that went backwards.
func (d *devState) advance(a, b, gen uint64) (da, db uint64) {
	if d.seen {
		if a >= d.a {
			da = a - d.a
		}
		if b >= d.b {
			db = b - d.b
		}
	}
	d.seen, d.gen, d.a, d.b = true, gen, a, b
	return da, db
}

// devSums adds up the increases of the devices of one read.
type devSums struct {
	anyPhysical  bool
	physA, physB uint64
	fallA, fallB uint64
}

// add records the increases da and db of a device of class c.
func (s *devSums) add(c devClass, da, db uint64) {
	switch c {
	case classPhysical:
		s.anyPhysical = true
		s.physA += da
		s.physB += db
	case classFallback:
		s.fallA += da
		s.fallB += db
	}
}

// result returns the totals of the physical devices, or of the fallback ones
// when there is no physical device.
func (s *devSums) result() (a, b uint64) {
	if s.anyPhysical {
		return s.physA, s.physB
	}
	return s.fallA, s.fallB
}

// prune deletes the devices that read gen did not see.
func prune[K comparable](m map[K]*devState, gen uint64) {
	for k, d := range m {
		if d.gen != gen {
			delete(m, k)
		}
	}
}
