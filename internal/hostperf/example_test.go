package hostperf_test

import (
	"fmt"
	"time"

	"github.com/kanade/kanade-agent/internal/hostperf"
)

func ExampleHost_Sample() {
	var host hostperf.Host
	// The first sample primes the rates; they are 0 in it.
	if _, err := host.Sample(time.Now()); err != nil {
		fmt.Println(err)
		return
	}
	// ... later, on the agent's HostPerf timer:
	perf, err := host.Sample(time.Now())
	if err != nil {
		fmt.Println(err)
		return
	}
	perf.PcID = "pc-01"
	fmt.Printf("cpu %.0f%% of %d CPUs, %d of %d bytes of memory used\n",
		perf.CPUPct, perf.CPUCount, perf.MemUsedBytes, perf.MemTotalBytes)
}

func ExampleSelf_Sample() {
	var self hostperf.Self
	// On the agent's heartbeat timer:
	s, err := self.Sample(time.Now())
	if err != nil {
		fmt.Println(err)
		return
	}
	if s.HasCPU { // not on the first sample: it sets the baseline
		fmt.Printf("agent: %.1f%% of one core\n", s.CPUPct)
	}
	fmt.Printf("agent: %d bytes resident\n", s.RSSBytes)
	if s.HasDisk {
		fmt.Printf("agent: %d bytes read, %d written since it started\n", s.DiskReadBytes, s.DiskWrittenBytes)
	}
}

func ExampleLastLogon() {
	l, err := hostperf.LastLogon()
	if err != nil {
		fmt.Println(err)
		return
	}
	if l.User != "" { // only Windows records it
		fmt.Printf("last signed in: %s (%s)\n", l.User, l.DisplayName)
	}
}

func ExampleBootTime() {
	boot, err := hostperf.BootTime()
	if err != nil {
		fmt.Println(err)
		return
	}
	// The agent_online event carries it as epoch seconds.
	fmt.Printf("booted %s ago (boot_time %d)\n", time.Since(boot).Round(time.Second), boot.Unix())
}
