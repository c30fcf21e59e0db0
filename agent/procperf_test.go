package agent_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go"
)

// TestProcessPerf: with process_perf_enabled and an expiry in the future
// the agent publishes its top processes on process_perf.<pc_id> at the
// host_perf_interval, in upstream's shape, and stops at the expiry by
// itself; turned on again it publishes again, and process_perf_enabled
// false stops it.
func TestProcessPerf(t *testing.T) {
	e := newEnv(t)
	hb := make(chan struct{}, 1)
	hsub, err := e.nc.Subscribe("heartbeat.pc-pp", func(*nats.Msg) {
		select {
		case hb <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer hsub.Unsubscribe()
	var mu sync.Mutex
	var got []*wire.ProcessPerf
	var raws []map[string]any
	sub, err := e.nc.Subscribe("process_perf.pc-pp", func(m *nats.Msg) {
		p, err := wire.DecodeProcessPerf(m.Data)
		var raw map[string]any
		if err == nil {
			err = json.Unmarshal(m.Data, &raw)
		}
		if err != nil {
			t.Errorf("bad process_perf %s: %v", m.Data, err)
			return
		}
		mu.Lock()
		got = append(got, p)
		raws = append(raws, raw)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }

	r := e.start("pc-pp", "", func(o *agent.Options) {
		noFloors(o)
		o.Defaults.HeartbeatInterval = 200 * time.Millisecond
	})
	beat := func() {
		t.Helper()
		select {
		case <-hb:
		case <-time.After(20 * time.Second):
			t.Fatal("no heartbeat")
		}
	}
	// Off by default: heartbeats flow, process perf does not.
	beat()
	beat()
	if n := count(); n != 0 {
		t.Fatalf("%d process_perf messages while off", n)
	}

	expires := time.Now().Add(4 * time.Second).UTC()
	e.kvPut(subject.BucketConfig, "pcs.pc-pp", wire.ConfigScope{
		ProcessPerfEnabled: ptr(true), ProcessPerfExpiresAt: &expires,
		ProcessPerfTopN: ptr(uint32(3)), HostPerfInterval: ptr("200ms"),
	})
	natstest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		if n := count(); n < 3 {
			return fmt.Errorf("%d process_perf messages", n)
		}
		return nil
	})
	mu.Lock()
	for i, p := range got {
		if p.PcID != "pc-pp" || len(p.Processes) == 0 || len(p.Processes) > 3 || p.At.IsZero() {
			t.Errorf("message %d: %+v", i, p)
		}
		for _, pr := range p.Processes {
			if pr.PID == 0 && pr.Name == "" || pr.CPUPct < 0 || pr.RSSBytes < 0 {
				t.Errorf("message %d: process %+v", i, pr)
			}
		}
		for _, k := range []string{"pc_id", "at", "processes"} {
			if _, ok := raws[i][k]; !ok {
				t.Errorf("message %d lacks %q: %v", i, k, raws[i])
			}
		}
		procs := raws[i]["processes"].([]any)
		for _, k := range []string{"pid", "name", "cpu_pct", "rss_bytes"} {
			if _, ok := procs[0].(map[string]any)[k]; !ok {
				t.Errorf("message %d: process lacks %q: %v", i, k, procs[0])
			}
		}
	}
	mu.Unlock()

	// The expiry passes: nothing is sampled at or after it.
	natstest.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		if time.Now().Before(expires.Add(time.Second)) {
			return fmt.Errorf("expiry not passed")
		}
		return nil
	})
	beat() // the agent still runs, and had time to publish
	beat()
	mu.Lock()
	n := len(got)
	for _, p := range got {
		if !p.At.Before(expires) {
			t.Errorf("process_perf at %s, after the expiry %s", p.At, expires)
		}
	}
	mu.Unlock()

	// On again without expiry, then off with process_perf_enabled false.
	e.kvPut(subject.BucketConfig, "pcs.pc-pp", wire.ConfigScope{
		ProcessPerfEnabled: ptr(true), ProcessPerfTopN: ptr(uint32(1)), HostPerfInterval: ptr("200ms"),
	})
	natstest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		if c := count(); c < n+2 {
			return fmt.Errorf("%d new process_perf messages", c-n)
		}
		return nil
	})
	e.kvPut(subject.BucketConfig, "pcs.pc-pp", wire.ConfigScope{ProcessPerfEnabled: ptr(false)})
	natstest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		if r.Config().ProcessPerfEnabled {
			return fmt.Errorf("config not applied yet")
		}
		return nil
	})
	off := time.Now()
	beat() // two heartbeats later nothing new was sampled
	beat()
	mu.Lock()
	defer mu.Unlock()
	for _, p := range got[n:] {
		if len(p.Processes) != 1 {
			t.Errorf("top_n 1: %d processes", len(p.Processes))
		}
		if p.At.After(off) {
			t.Errorf("process_perf at %s, after it was turned off at %s", p.At, off)
		}
	}
}
