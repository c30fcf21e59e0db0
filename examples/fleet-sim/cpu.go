package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"time"
)

// CPU is the processor time the simulation's processes used over one
// period (the commands.all fan-out), read from /proc: it tells whether a
// slow fan-out waits on the agents, the server, the simulator itself or a
// machine already busy with other work. All zero where there is no /proc.
type CPU struct {
	// Period is the wall time measured.
	Period time.Duration
	// Server, Hosts and Sim are the CPU time (user + system) of the server
	// child, of the agent host processes (with the scripts they ran and
	// reaped) and of the simulator process (its backend connection that
	// publishes the commands and counts the results and heartbeats).
	Server, Hosts, Sim time.Duration
	// Scripts is the part of Hosts that the scripts (child processes)
	// used, counted once their host reaped them.
	Scripts time.Duration
	// Machine is the busy time of every processor of the machine (all
	// processes, other users' too); Cores is their number.
	Machine time.Duration
	Cores   int
}

// cpuSample is a reading of the counters CPU diffs.
type cpuSample struct {
	at                      time.Time
	server, hosts, sim, all time.Duration
	scripts                 time.Duration
	cores                   int
}

// clkTck is the kernel's USER_HZ, the unit of /proc's CPU times: 100 on
// every Linux architecture Go supports.
const clkTck = 100

func ticks(n uint64) time.Duration { return time.Duration(n) * time.Second / clkTck }

// procCPU returns pid's user + system time, with its reaped children's
// when children is set (/proc/<pid>/stat fields 14 to 17).
func procCPU(pid int, children bool) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return 0
	}
	var sum uint64
	n := 2 // utime, stime
	if children {
		n = 4 // cutime, cstime
	}
	for _, v := range f[11 : 11+n] {
		x, _ := strconv.ParseUint(v, 10, 64)
		sum += x
	}
	return ticks(sum)
}

// machineCPU returns the busy time of every processor (/proc/stat's cpu
// line without idle and iowait) and the number of processors.
func machineCPU() (time.Duration, int) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	var busy uint64
	cores := 0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if f[0] != "cpu" {
			cores++
			continue
		}
		for j, v := range f[1:] {
			if j == 3 || j == 4 { // idle, iowait
				continue
			}
			x, _ := strconv.ParseUint(v, 10, 64)
			busy += x
		}
	}
	return ticks(busy), cores
}

func sampleCPU(srv *child, hosts []*child) cpuSample {
	s := cpuSample{at: time.Now(), sim: procCPU(os.Getpid(), false)}
	if srv != nil {
		s.server = procCPU(srv.cmd.Process.Pid, false)
	}
	for _, h := range hosts {
		all := procCPU(h.cmd.Process.Pid, true)
		s.hosts += all
		s.scripts += all - procCPU(h.cmd.Process.Pid, false)
	}
	s.all, s.cores = machineCPU()
	return s
}

func (s cpuSample) since(t cpuSample) CPU {
	return CPU{Period: s.at.Sub(t.at), Server: s.server - t.server, Hosts: s.hosts - t.hosts, Scripts: s.scripts - t.scripts,
		Sim: s.sim - t.sim, Machine: s.all - t.all, Cores: s.cores}
}

// settle waits until the server (when it is a child) and the hosts
// together used less than share of a core over one second, or timeout
// passed, and returns the share of the last second. Without /proc (or an
// external server) it returns at once.
func settle(ctx context.Context, srv *child, hosts []*child, share float64, timeout time.Duration) float64 {
	if srv == nil {
		return 0
	}
	deadline := time.Now().Add(timeout)
	prev := sampleCPU(srv, hosts)
	if prev.all == 0 {
		return 0
	}
	for {
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(time.Second):
		}
		cur := sampleCPU(srv, hosts)
		u := cur.since(prev)
		used := (u.Server + u.Hosts).Seconds() / u.Period.Seconds()
		if used < share || time.Now().After(deadline) {
			return used
		}
		prev = cur
	}
}
