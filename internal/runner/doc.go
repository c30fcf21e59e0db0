// Package runner runs one script as a child process tree, with a timeout,
// whole-tree kill and bounded output capture. It is step 6 ("Run") of the
// agent's command pipeline in PROTOCOL.md; everything around it (gates,
// retries, notes in the result, publishing) is the agent's job.
//
// # Shells
//
//   - sh (Unix only): /bin/sh -c <script>.
//   - cmd (Windows only): cmd.exe /S /C "<script>", passed verbatim on the
//     command line (no Go argument quoting); /S makes cmd strip exactly the
//     outer quotes that the runner added. A script with a line break, or
//     longer than 8000 characters, cannot run that way (cmd /C stops at the
//     first line break and refuses a command line over 8191 characters):
//     it is staged as a batch file kanade-*.cmd in Spec.StageDir (CRLF line
//     endings, "@echo off" first) and run as cmd.exe /S /C "<file>", so
//     batch rules apply to it (%% in for loops, labels, goto). A single
//     line of a batch file is limited to 8191 characters as well.
//   - powershell (Windows only) and pwsh (wherever a pwsh executable is
//     found; on Windows also %ProgramFiles%\PowerShell\7): the script is
//     staged as kanade-*.ps1 in Spec.StageDir, written with a UTF-8 BOM, run
//     with -NoProfile -NonInteractive -ExecutionPolicy Bypass -File <file>,
//     and removed after the run.
//
// Anything else, or a shell whose executable is missing, is unsupported:
// [Supported] says so up front and [Run] returns a Result whose Err wraps
// [ErrUnsupported] and whose ExitCode is 122 (wire.ExitUnsupported).
//
// # Process tree
//
// On Unix the script gets its own process group (Setpgid). On a timeout or
// when ctx ends, the group gets SIGTERM, then SIGKILL after Spec.KillGrace
// if the main process is still alive. When the main process exits — by
// itself or after SIGTERM — whatever is left of its group gets SIGKILL at
// once: a script's background jobs never outlive it, and so cannot hold the
// output pipes open (sh -c 'sleep 1000 & echo hi' returns as soon as sh
// exits). On Linux the main process is left unreaped (waitid WNOWAIT) until
// the group has been signalled, so the process group id cannot have been
// reused. A process that leaves the group (setsid, setpgid) escapes the
// kill; if it still holds stdout or stderr, Run stops reading 2 s after
// the kill, closes its ends of the pipes and returns.
//
// On Windows the script is created suspended, assigned to a new Job Object
// with JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE, then resumed, so every process
// it starts is in the job. A timeout or ctx ending terminates the job at
// once (Windows has no SIGTERM for console trees; KillGrace is not used);
// after the main process exits the job is terminated and closed, which ends
// any stragglers, as on Unix. Only the three standard handles are
// inherited (PROC_THREAD_ATTRIBUTE_HANDLE_LIST), so concurrent runs do not
// leak pipes into each other's children.
//
// # Output
//
// Standard output and standard error are read from pipes by one goroutine
// each, which keep reading until EOF whatever the script writes, so the
// script never blocks on a full pipe. The first Spec.MaxOutput bytes of each
// (4 MiB by default) are kept; the rest is counted in StdoutBytes /
// StderrBytes and dropped, with StdoutTruncated / StderrTruncated set.
// Memory per stream is the kept bytes (at most MaxOutput; briefly 1.5 times
// that while the buffer grows by copying) plus one 64 KiB read buffer.
// Standard input is the null device.
//
// # Accounts
//
// RunAs user and system_gui exist on Windows only. user runs the script
// with the token of the user logged on to the console session
// (WTSGetActiveConsoleSessionId, WTSQueryUserToken, CreateProcessAsUser),
// that user's environment block and the winsta0\default desktop; a staged
// .ps1 file gets an ACE that lets the user read it. system_gui runs it as
// the agent's own account with a copy of its token moved to the console
// session. Both need the agent to run as LocalSystem (the Windows service)
// and fail with [ErrNoSession] when no one is at the console. On Unix they
// are unsupported.
//
// # Concurrency
//
// [Run] may be called from many goroutines at once; each call owns its
// process tree, pipes and staged file, and returns only when they are
// gone. It uses four goroutines of its own while it runs.
package runner
