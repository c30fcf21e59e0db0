package wire_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/wire"
)

// BenchmarkDecodeCommand measures DecodeCommand (serde-strict decoding plus
// Validate) against a plain json.Unmarshal plus Validate of the same
// document, and reports the ratio as the "strict/plain" metric: the cost of
// the strict pre-pass (issue #7).
func BenchmarkDecodeCommand(b *testing.B) {
	docs := []struct {
		name string
		doc  string
	}{
		{"full", commandFull},
		{"minimal", commandMinimal},
		{"script_64KiB", `{"id":"j","version":"1","request_id":"r","shell":"powershell","script":"` +
			strings.Repeat(`Write-Output \"line\"\r\n`, 64<<10/24) + `","timeout_secs":5}`},
		{"case_variants", cmdDoc(`,"SCRIPT":"b","Shell":"cmd","staleness":{"mode":"cached","MODE":"x"}`)},
	}
	for _, d := range docs {
		doc := []byte(d.doc)
		if _, err := wire.DecodeCommand(doc); err != nil {
			b.Fatalf("%s: %v", d.name, err)
		}
		b.Run(d.name, func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if _, err := wire.DecodeCommand(doc); err != nil {
					b.Fatal(err)
				}
			}
			strict := time.Since(start)
			b.StopTimer()
			start = time.Now()
			for i := 0; i < b.N; i++ {
				// Errors are ignored: for case_variants the plain decoder
				// lets "MODE":"x" win, which Validate then refuses.
				var c wire.Command
				if json.Unmarshal(doc, &c) == nil {
					_ = c.Validate()
				}
			}
			plain := time.Since(start)
			b.ReportMetric(float64(strict)/float64(plain), "strict/plain")
		})
	}
}
