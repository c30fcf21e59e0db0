package procperf_test

import (
	"context"
	"fmt"
	"time"

	"github.com/kanade/kanade-agent/internal/procperf"
)

// A first sample sets the baseline; the next one reports CPU use over the
// time between them.
func ExampleSampler() {
	var s procperf.Sampler
	ctx := context.Background()
	if _, err := s.Sample(ctx, time.Now(), 5); err != nil {
		fmt.Println(err)
		return
	}
	top, err := s.Sample(ctx, time.Now().Add(time.Second), 5)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range top {
		fmt.Printf("%d %s %.1f%% %d bytes\n", p.PID, p.Name, p.CPUPct, p.RSSBytes)
	}
}
