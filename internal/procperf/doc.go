// Package procperf samples the processes of the machine for the
// ProcessPerf message of the kanade protocol (process_perf.<pc_id>): the
// busiest processes by CPU, with their resident memory and disk rates, as
// upstream's opt-in process-perf loop reports them.
//
// A [Sampler] keeps the previous sample of every process so that the next
// one can report CPU use over the interval between them, in percent of one
// core (a process busy on two cores reports 200). A process that started
// after the previous sample counts all of its CPU time in the interval. The
// first sample after [Sampler.Reset] (or after an error) has no baseline:
// every CPU figure is 0 and no rate is known; callers take one sample to
// set the baseline and publish from the second. A process id reused by a
// new process (told apart by its start time) counts as a new process.
//
// Disk rates are kept, as upstream keeps them, only for the processes that
// were in the previous sample's top list: a process that enters the list
// reports its rates (nil) from its second sample in the list on.
//
// A process that exits while it is read, or that cannot be read at all
// (no permission), is skipped: it is not an error.
//
// On Linux a sample reads /proc/<pid>/stat of every process (command name,
// user and system CPU time in USER_HZ ticks, which the kernel's ABI fixes
// at 100 a second, start time and resident pages) and /proc/<pid>/io of
// the processes returned (read_bytes and write_bytes: the bytes the process
// caused to be read from and sent to storage; readable for other users'
// processes only by root). Threads are not listed, only processes. The name
// is the kernel's command name, at most 15 bytes. Reading these files never
// waits on the process itself (the kernel answers from its own tables).
//
// On Windows a sample lists processes with CreateToolhelp32Snapshot and,
// for each, opens it with PROCESS_QUERY_LIMITED_INFORMATION to call
// GetProcessTimes (kernel and user time, creation time),
// K32GetProcessMemoryInfo (the working set) and GetProcessIoCounters
// (ReadTransferCount and WriteTransferCount: every read and write the
// process issued). None of these calls waits on the target process. The
// System Idle Process (pid 0) and processes that cannot be opened (some
// protected processes) are skipped. The name is the image name
// ("program.exe").
//
// On other systems [Sampler.Sample] returns [ErrUnsupported].
package procperf
