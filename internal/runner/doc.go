// Package runner runs one script as a child process tree, with a timeout,
// whole-tree kill and bounded output capture. It is step 6 ("Run") of the
// agent's command pipeline in docs/protocol.md; everything around it (gates,
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
//     it is staged as a batch file script.cmd (see Staging; CRLF line
//     endings, "@echo off" first) and run as cmd.exe /S /C "<file>", so
//     batch rules apply to it (%% in for loops, labels, goto). A single
//     line of a batch file is limited to 8191 characters as well.
//   - powershell (Windows only) and pwsh (wherever a pwsh executable is
//     found; on Windows also %ProgramFiles%\PowerShell\7): the script is
//     staged verbatim as script.ps1 after a UTF-8 BOM (Windows PowerShell
//     reads a BOM-less file in the ANSI code page), next to the launcher
//     launch.ps1 (see below), which PowerShell runs as
//     <exe> -NoProfile -NonInteractive -ExecutionPolicy Bypass -File <launch.ps1>.
//
// Anything else, or a shell whose executable is missing, is unsupported:
// [Supported] says so up front and [Run] returns a Result whose Err wraps
// [ErrUnsupported] and whose ExitCode is 122 (wire.ExitUnsupported).
//
// The runner never re-encodes output: a script's result has the bytes the
// programs wrote.
//
// # PowerShell launcher
//
// launch.ps1 is a UTF-8 BOM followed by one line (CRLF-terminated):
//
//	[Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false; $OutputEncoding = [Console]::OutputEncoding; $global:LASTEXITCODE = 0; & '<script.ps1>'; exit $LASTEXITCODE
//
// with the script's path single-quoted (each ' and each typographic quote
// U+2018..U+201B doubled). It makes PowerShell write UTF-8 without a BOM
// to the output pipes, so the non-ASCII output of a machine whose OEM code
// page is, say, CP932 arrives intact, and the call operator keeps a
// [CmdletBinding()] / param() header at the top of the script's own file,
// where PowerShell requires it. The exit code is the script's exit N;
// without one, that of the last native program it ran, else 0; and 1 when
// an error terminates the script. (Upstream kanade's launcher ends after
// the call, so a script's exit N there is lost: exit inside a script run
// with & only leaves that script.)
//
// # Staging
//
// A run that needs files (PowerShell; cmd with a line break or over 8000
// characters; sh over 64 KiB, run as sh <file>) gets a fresh folder
// run-<32 random hex digits> in Spec.StageDir, created in one step private
// to the agent's account (privdir.MkdirFresh: 0700 on Unix; on Windows a
// protected DACL granting full control to SYSTEM and the agent's account
// only) and failing if the name exists. The files are created new
// (O_CREATE|O_EXCL, O_NOFOLLOW on Unix, CREATE_NEW on Windows, mode 0600)
// and synced. On Windows each is then held open for the whole run with a
// share mode that lets the shell read it but no one write, rename or
// delete it. The folder and its files are removed after the run.
//
// Before each such run Spec.StageDir itself, when set, is made private
// with privdir.Ensure: created if missing; an existing one must be a real
// directory (not a symbolic link, junction or other reparse point) owned by
// the agent's account (on Windows also SYSTEM or Administrators) and not
// writable by other accounts. Unix refuses group- or world-writable
// directories and resets other modes to 0700; Windows resets a DACL that
// is not protected or that grants another account anything. Anything else
// fails the run with [ErrStage] wrapping privdir.ErrUnsafe, before any
// file is written or any process started.
//
// For run_as user on Windows the staged files get an ACE that lets the
// user read and execute them (the user can reach them by path through
// "bypass traverse checking", but cannot list or write the folder).
//
// # Environment
//
// A script gets the agent's environment (or, for run_as user, the user's
// environment block) without the variables whose name starts with KANADE_
// or NATS_ (compared case-insensitively on Windows, where names are): the
// agent's settings, including KANADE_NATS_TOKEN, KANADE_NATS_PASSWORD and
// the paths of its credentials, never reach a script. Spec.Env entries are
// then added as given (a later one wins).
//
// # Working directory
//
// On Windows Spec.Cwd is expanded before use, as upstream kanade does: a
// leading "~" (alone, or followed by \ or /) becomes the profile
// directory of the account the script runs as, then each %NAME% is
// replaced by NAME's value in the script's environment (above; names
// compared case-insensitively). A NAME that is not set stays as %NAME%
// (and the directory then most likely does not exist: ErrSpawn); a lone %
// stays. PowerShell's $env:NAME is not expanded. On Unix Cwd is used as
// given.
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
// that while the buffer grows by copying) plus one read buffer, which
// starts at 512 bytes and doubles up to 64 KiB each time a read fills it.
// Standard input is the null device.
//
// # Starting processes (Unix)
//
// The script's process is forked and executed with syscall.ForkExec (no
// os/exec) as the leader of a new process group, and reaped by the runner.
// On Linux the fork does not happen on the calling thread: a fork copies
// the forking thread's file descriptor table, and the exec then closes the
// copy's descriptors one by one, so each script of a process holding
// twelve thousand descriptors (a thousand embedded agents) cost about
// 4 ms of CPU instead of 0.7 ms. Scripts are forked instead from one
// thread per process (started with the first run, alive as long as the
// process) that has a table of its own (unshare(CLONE_FILES) on a thread
// locked to its goroutine), holding only descriptors 0 to 2, the Go
// runtime poller's epoll and eventfd, /dev/null and a socket; each run's
// pipe ends reach it over that socket (SCM_RIGHTS) and are closed there
// once the child has them. Runs are forked one at a time there, as Go
// forks one at a time anyway (syscall.ForkLock). Should that thread not
// be available, the script is forked from the calling thread.
//
// While a script runs, the runner waits for its main process on a pidfd
// through the Go runtime's poller (Linux 5.3 and later; waitid before),
// so a running script holds no OS thread: with a blocking wait each held
// one, and a process whose thousand agents ran a script at once grew to
// hundreds of threads, each with 48 KiB of runtime stacks, that it kept.
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
