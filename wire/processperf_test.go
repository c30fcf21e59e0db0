package wire_test

import (
	"testing"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// TestProcessPerfEncoding: the bytes upstream's serde writes (floats with
// a fraction, absent rates omitted, processes [] when empty), and upstream's
// own test document decodes.
func TestProcessPerfEncoding(t *testing.T) {
	rate, zero := 1048576.0, 0.0
	p := wire.ProcessPerf{
		PcID: "minipc", At: time.Date(2026, 5, 24, 1, 0, 0, 0, time.UTC),
		Processes: []wire.ProcessSnapshot{
			{PID: 4321, Name: "chrome.exe", CPUPct: 87.5, RSSBytes: 2000000000, DiskReadBytesPerSec: &rate, DiskWrittenBytesPerSec: &zero},
			{PID: 100, Name: "systemd", CPUPct: 0, RSSBytes: 50000000},
		},
	}
	b, err := wire.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"pc_id":"minipc","at":"2026-05-24T01:00:00Z","processes":[` +
		`{"pid":4321,"name":"chrome.exe","cpu_pct":87.5,"rss_bytes":2000000000,"disk_read_bytes_per_sec":1048576.0,"disk_written_bytes_per_sec":0.0},` +
		`{"pid":100,"name":"systemd","cpu_pct":0.0,"rss_bytes":50000000}]}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	back, err := wire.DecodeProcessPerf(b)
	if err != nil || len(back.Processes) != 2 || *back.Processes[0].DiskReadBytesPerSec != rate || back.Processes[1].DiskReadBytesPerSec != nil {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	b, _ = wire.Marshal(wire.ProcessPerf{PcID: "x", At: p.At})
	if string(b) != `{"pc_id":"x","at":"2026-05-24T01:00:00Z","processes":[]}` {
		t.Fatalf("empty: %s", b)
	}
	up := `{"pc_id":"pc","at":"2026-05-24T01:00:00Z","processes":[{"pid":1,"name":"init","cpu_pct":0.0,"rss_bytes":1000000}]}`
	if got, err := wire.DecodeProcessPerf([]byte(up)); err != nil || got.Processes[0].Name != "init" {
		t.Fatalf("upstream document: %+v %v", got, err)
	}
	if _, err := wire.DecodeProcessPerf([]byte(`{"pc_id":"a","pc_id":"b"}`)); err == nil {
		t.Fatal("duplicate key accepted")
	}
}
