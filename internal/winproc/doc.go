// Package winproc starts Windows processes inside a Job Object, for the
// agent's own account or for another token (a logged-on user, or the
// agent's account moved to another session), with chosen standard handles.
// It also names the console session and its user's token.
//
// It is shared by the script runner (internal/runner: run_as user and
// system_gui) and the session helper supervisor (internal/session: the
// idle helper launched into the console session from the service, which
// runs in session 0).
//
// Every process is created suspended, assigned to a new Job Object with
// JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE and only then resumed, so nothing it
// starts can escape the job: killing the job, closing it, or the agent
// dying ends the whole tree. Only the three standard handles are inherited
// (PROC_THREAD_ATTRIBUTE_HANDLE_LIST), whatever else is inheritable in the
// agent at that moment.
//
// WorkingSet and IOTransfer read a process's memory and I/O counters, for
// the agent's own figures (internal/hostperf) and the process list
// (internal/procperf).
//
// On other systems the package is empty.
package winproc
