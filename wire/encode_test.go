package wire

import (
	"math"
	"strconv"
	"testing"
)

// The ryu crate's output (serde_json's f64 format) for these values.
func TestAppendSerdeFloat(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0.0"}, {math.Copysign(0, -1), "-0.0"}, {1, "1.0"}, {-2.5, "-2.5"}, {0.3, "0.3"}, {12.5, "12.5"},
		{100, "100.0"}, {1048576, "1048576.0"}, {1e15, "1000000000000000.0"}, {1e16, "1e16"}, {1.5e16, "1.5e16"},
		{123456789012345680, "1.2345678901234568e17"}, {math.Nextafter(0.3, 1), "0.30000000000000004"},
		{0.0001, "0.0001"}, {0.00001, "0.00001"}, {0.000012, "0.000012"}, {1e-6, "1e-6"}, {1.5e-7, "1.5e-7"},
		{math.MaxFloat64, "1.7976931348623157e308"}, {5e-324, "5e-324"}, {123.456, "123.456"},
		{math.NaN(), "null"}, {math.Inf(1), "null"}, {math.Inf(-1), "null"},
	}
	for _, tt := range tests {
		if got := string(appendSerdeFloat(nil, tt.in)); got != tt.want {
			t.Errorf("appendSerdeFloat(%v) = %s, want %s", tt.in, got, tt.want)
		}
		if tt.want != "null" {
			if back, err := strconv.ParseFloat(tt.want, 64); err != nil || back != tt.in {
				t.Errorf("%s reads back as %v, %v", tt.want, back, err)
			}
		}
	}
}

func FuzzSerdeFloat(f *testing.F) {
	for _, v := range []float64{0, 1, 0.3, 1e16, 1e-6, 1e300} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		s := string(appendSerdeFloat(nil, v))
		if math.IsNaN(v) || math.IsInf(v, 0) {
			if s != "null" {
				t.Fatalf("%v: %s", v, s)
			}
			return
		}
		back, err := strconv.ParseFloat(s, 64)
		if err != nil || back != v || math.Signbit(back) != math.Signbit(v) {
			t.Fatalf("%v written as %s reads back as %v, %v", v, s, back, err)
		}
	})
}

// A heartbeat whose CPU figure is NaN is still sent (the figure as null),
// not lost to an encoding error.
func TestHeartbeatNaN(t *testing.T) {
	nan := math.NaN()
	b, err := Marshal(Heartbeat{PcID: "p", AgentCPUPct: &nan, Outbox: map[string]OutboxStats{"r": {OldestAgeSecs: math.Inf(1)}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"pc_id":"p","at":"0001-01-01T00:00:00Z","agent_version":"","agent_cpu_pct":null,"command_keys":[],"enforcing":false,` +
		`"outbox":{"r":{"pending":0,"oldest_age_secs":null,"stuck":0}}}`; string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	if _, err := Marshal(HostPerf{CPUPct: math.NaN()}); err != nil {
		t.Error(err)
	}
}

func TestMarshalNoHTMLEscapes(t *testing.T) {
	b, err := Marshal(ExecResult{Stdout: "a<b>&c", ManifestID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `"stdout":"a<b>&c"`; !contains(string(b), want) {
		t.Errorf("%s does not hold %s", b, want)
	}
	if b[len(b)-1] != '}' {
		t.Errorf("trailing bytes: %q", b)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// The first HostPerf sample omits the figures it cannot know, as upstream does.
func TestHostPerfRatesUnknown(t *testing.T) {
	b, err := Marshal(HostPerf{PcID: "p", CPUCount: 2, MemTotalBytes: 4, CPUPct: 3, NetRxBytesPerSec: 5, RatesUnknown: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"pc_id":"p","at":"0001-01-01T00:00:00Z","cpu_count":2,"mem_used_bytes":0,"mem_total_bytes":4,` +
		`"swap_used_bytes":0,"swap_total_bytes":0}`; string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}
