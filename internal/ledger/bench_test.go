package ledger

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/internal/natstest"
)

// BenchmarkLaunchFinish measures a command's ledger cost (Claim, then a
// durable Launching and a durable Finished: two fsynced records) with 1 and
// 16 concurrent callers; group commit lets concurrent callers share fsyncs.
func BenchmarkLaunchFinish(b *testing.B) {
	for _, par := range []int{1, 16} {
		b.Run(fmt.Sprint("parallel=", par), func(b *testing.B) {
			l := openT(b, natstest.TempDir(b), Options{})
			var next atomic.Int64
			syncs0 := l.syncs.Load()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for g := 0; g < par; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						id := fmt.Sprint("req-", i)
						if ok, _, err := l.Claim(id); err != nil || !ok {
							b.Error("claim", ok, err)
							return
						}
						if err := l.Launching(id, []byte(`{"exec_id":"e"}`)); err != nil {
							b.Error(err)
							return
						}
						if err := l.Finished(id); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "ops/s")
			b.ReportMetric(float64(l.syncs.Load()-syncs0)/float64(b.N), "fsyncs/op")
		})
	}
}
