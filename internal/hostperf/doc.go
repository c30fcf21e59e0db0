// Package hostperf measures the load of the agent process and of the machine
// it runs on, for the Heartbeat (agent_cpu_pct, agent_rss_bytes,
// agent_disk_read_bytes, agent_disk_written_bytes) and HostPerf messages of
// the kanade protocol, and reads two host facts: the boot time ([BootTime],
// for the startup event) and the last interactive sign-in ([LastLogon], for
// the Heartbeat's last_logon_user and last_logon_display_name).
//
// Two samplers are provided:
//
//   - [Self] reports the agent process's CPU use, in percent of one core, since
//     its previous sample (the first sample has no CPU figure: it only sets
//     the baseline), its resident memory, and the bytes it has read and
//     written since it started.
//   - [Host] reports the machine's figures as a [wire.HostPerf]: CPU use over
//     all cores, CPU count, memory and swap, and disk and network throughput
//     since its previous sample. Its first sample has CPU use and every rate at
//     0 and RatesUnknown set, because there is nothing to compare with: the
//     message leaves them out, as upstream's first sample does.
//
// Both are cheap: a sample reads a handful of small files or makes a handful
// of system calls. Neither starts goroutines or timers; the caller samples on
// its own schedule. Both are safe for concurrent use, but a sampler is meant
// to have one caller: two callers sharing one sampler each see the figures
// since the other's sample.
//
// On Linux the figures come from /proc and /sys:
//
//   - CPU: the "cpu" line of /proc/stat. Busy time is user, nice, system, irq,
//     softirq and steal; idle time is idle and iowait; guest time is already
//     in user and nice. The CPU count is the number of "cpuN" lines (the
//     online CPUs of the machine, not the CPUs this process may run on).
//   - Memory: /proc/meminfo. Used memory is MemTotal - MemAvailable (on
//     kernels older than 3.14, which lack MemAvailable, MemTotal - MemFree -
//     Buffers - Cached).
//     Used swap is SwapTotal - SwapFree.
//   - Disks: /proc/diskstats, counting whole disks only: a device counts when
//     /sys/block/<name>/device exists (a real disk, not a partition, loop,
//     ram, zram, device-mapper or md device, whose traffic would be counted
//     twice). When no device has that link (some virtual machines), every
//     /sys/block entry counts except loop, ram and zram devices. Sectors are
//     512 bytes, whatever the disk's own sector size.
//   - Network: /proc/net/dev, loopback excluded. As with disks, only physical
//     interfaces (/sys/class/net/<name>/device exists) count when there is
//     one, so that traffic through bridges, veth pairs and tunnels is not
//     counted twice; otherwise every interface but lo counts (containers).
//
// On Windows:
//
//   - CPU: GetSystemTimes; the count is GetActiveProcessorCount over all
//     processor groups.
//   - Memory: GlobalMemoryStatusEx. Used memory is ullTotalPhys -
//     ullAvailPhys. Windows reports no swap figure as such: swap total is
//     the page file part of the commit limit, ullTotalPageFile - ullTotalPhys,
//     and swap used is the commit charge beyond physical memory in use,
//     (ullTotalPageFile - ullAvailPageFile) - (ullTotalPhys - ullAvailPhys),
//     kept within 0 and the total. It is an estimate.
//   - Disks: IOCTL_DISK_PERFORMANCE on each \\.\PhysicalDriveN that can be
//     opened and queried (no administrator right is needed). Drives are
//     probed from 0 and the probe stops after four numbers in a row that fail;
//     a drive that fails is left out, and with no drive the rates are 0.
//   - Network: GetIfTable2Ex, loopback and NDIS filter interfaces excluded;
//     like on Linux, only hardware interfaces count when there is one.
//
// The agent process's figures come from getrusage(RUSAGE_SELF),
// /proc/self/statm and /proc/self/io (read_bytes and write_bytes: the bytes
// the process caused to be read from and sent to storage) on Linux, and from
// GetProcessTimes, K32GetProcessMemoryInfo (the working set) and
// GetProcessIoCounters (ReadTransferCount and WriteTransferCount: every read
// and write the process issued) on Windows. A system without per-process I/O
// counts (a Linux kernel without I/O accounting) gives no disk figures, which
// is not an error.
//
// Rates are computed per device: a device that appears counts from its second
// sample, and a counter that goes backwards (a device replaced, a 32-bit
// counter wrapping) counts 0 for that interval, so a rate is never negative.
// A disk or network figure that is missing altogether (no /proc/diskstats, no
// readable drive) is reported as 0, not as an error; malformed input is an
// error wrapping [ErrMalformed]. Nothing here panics on what it reads.
//
// On other systems both samplers return [ErrUnsupported].
package hostperf
