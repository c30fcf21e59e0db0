package wire

import "time"

// ProcessPerf is one sample of the machine's busiest processes, published
// on process_perf.<pc_id> with core NATS while process_perf_enabled is on
// and process_perf_expires_at has not passed (Config.ProcessPerfActiveAt),
// at the host_perf_interval cadence, as upstream's process-perf loop does.
type ProcessPerf struct {
	// PcID is the agent's pc id.
	PcID string `json:"pc_id"`
	// At is when the sample was taken.
	At time.Time `json:"at"`
	// Processes are the top process_perf_top_n processes by CPU, busiest
	// first; always sent ([] when none).
	Processes []ProcessSnapshot `json:"processes"`
}

// ProcessSnapshot is one process of a ProcessPerf.
type ProcessSnapshot struct {
	// PID is the process id.
	PID uint32 `json:"pid"`
	// Name is the image name (basename on Linux, "program.exe" on Windows),
	// not the full path.
	Name string `json:"name"`
	// CPUPct is the process's CPU use since the previous sample in percent
	// of one core: a process busy on two cores reports 200.
	CPUPct float64 `json:"cpu_pct"`
	// RSSBytes is the resident set (the working set on Windows).
	RSSBytes int64 `json:"rss_bytes"`
	// DiskReadBytesPerSec is the process's read rate since the previous
	// sample; nil (omitted) when the process has no earlier sample to diff
	// against, or its I/O counters cannot be read.
	DiskReadBytesPerSec *float64 `json:"disk_read_bytes_per_sec,omitempty"`
	// DiskWrittenBytesPerSec is the write rate, as DiskReadBytesPerSec.
	DiskWrittenBytesPerSec *float64 `json:"disk_written_bytes_per_sec,omitempty"`
}

// MarshalJSON encodes p with processes always present ([] when none).
func (p ProcessPerf) MarshalJSON() ([]byte, error) {
	procs := p.Processes
	if procs == nil {
		procs = []ProcessSnapshot{}
	}
	return marshal(struct {
		PcID      string            `json:"pc_id"`
		At        chronoTime        `json:"at"`
		Processes []ProcessSnapshot `json:"processes"`
	}{p.PcID, chronoTime(p.At), procs})
}

// MarshalJSON encodes s with its floats written as serde_json writes them
// ("87.5", "0.0"; null for NaN or an infinity).
func (s ProcessSnapshot) MarshalJSON() ([]byte, error) {
	return marshal(struct {
		PID                    uint32     `json:"pid"`
		Name                   string     `json:"name"`
		CPUPct                 jsonFloat  `json:"cpu_pct"`
		RSSBytes               int64      `json:"rss_bytes"`
		DiskReadBytesPerSec    *jsonFloat `json:"disk_read_bytes_per_sec,omitempty"`
		DiskWrittenBytesPerSec *jsonFloat `json:"disk_written_bytes_per_sec,omitempty"`
	}{s.PID, s.Name, jsonFloat(s.CPUPct), s.RSSBytes, jsonFloatPtr(s.DiskReadBytesPerSec), jsonFloatPtr(s.DiskWrittenBytesPerSec)})
}

// DecodeProcessPerf decodes a ProcessPerf (a consumer's side: the agent
// only publishes them).
func DecodeProcessPerf(b []byte) (*ProcessPerf, error) {
	var p ProcessPerf
	if err := decode(b, &p, "process perf"); err != nil {
		return nil, err
	}
	return &p, nil
}
