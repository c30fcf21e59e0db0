// Package timeline is the source of the PC's timeline ObsEvents: power
// (boot, shutdown, sleep, resume), session (logon, logoff, lock, unlock)
// and event log service start/stop, read from the operating system's own
// records. A Source implements agent.ObsSource; the daemon runs one in
// the agent (see docs/protocol.md for the events).
//
// # Windows event log
//
// Every Period (5 min) and at start, each row of Rows (upstream kanade's
// matrix, row for row) is queried on its channel with EvtQuery
// (wevtapi.dll), an XPath selecting the row's provider and EventID created
// within LookBack (24 h) and after the row's watermark; each event is
// rendered as XML (EvtRender), decoded (DecodeEventXML), shaped (MapEvent)
// and handed to emit as an ObsEvent with source "winlog:<channel>" and
// event_record_id the EventRecordID in decimal:
//
//	System   Microsoft-Windows-Winlogon             7001  logon     {"session_id","sid","user"}
//	System   Microsoft-Windows-Winlogon             7002  logoff    {"session_id","sid","user"}
//	Security (any)                                  4800  lock      {"session_id","user"}
//	Security (any)                                  4801  unlock    {"session_id","user"}
//	System   Microsoft-Windows-Kernel-General       12    boot      null
//	System   Microsoft-Windows-Kernel-General       13    shutdown  null
//	System   Microsoft-Windows-Kernel-Power         41    unexpected_shutdown null
//	System   Microsoft-Windows-Kernel-Power         42    sleep     null
//	System   Microsoft-Windows-Kernel-Power         107   resume    null
//	System   Microsoft-Windows-Kernel-Power         506   sleep     {"standby":"modern"}
//	System   Microsoft-Windows-Kernel-Power         507   resume    {"standby":"modern"}
//	System   Microsoft-Windows-Kernel-Boot          27    resume    {"from":"hibernate"}, only BootType 2
//	System   Microsoft-Windows-Power-Troubleshooter 1     wake_detail {"sleep_start","wake_time","wake_source"}
//	System   (any)                                  6005  log_service_started null
//	System   (any)                                  6006  log_service_stopped null
//
// The watermark is upstream's file <Dir>/winlog-reader-watermark.json, a
// JSON object mapping Row.Key() ("System:Microsoft-Windows-Winlogon:7001:logon")
// to the highest EventRecordID handled. It advances past an event only
// once emit returned nil for it (or past a record deliberately skipped,
// such as a cold-boot Kernel-Boot 27) and is written (temporary file,
// fsync, rename) after each event, so a restart does not emit an event
// twice and a failed emit is tried again at the next poll. A corrupt
// watermark file is logged and the rows are read again over the look-back;
// the backend drops what it already has, deduplicating on (pc_id, source,
// event_record_id).
//
// # Linux
//
// The wtmp file (/var/log/wtmp, glibc's 384-byte struct utmp records) gives
// boot (BOOT_TIME), shutdown (RUN_LVL with user "shutdown"), logon
// (USER_PROCESS) and logoff (DEAD_PROCESS ending a login seen before), with
// source "wtmp" and event_record_id the first 16 hex digits of the SHA-256
// of the record. Payloads: boot {"kernel": ut_host, the kernel release, or
// null}, shutdown null, logon and logoff {"user", "tty": ut_line, "host":
// ut_host or null, "pid": ut_pid} (a logoff's user, host and pid are the
// login's). Only records within LookBack are emitted; older ones still
// open and close sessions. Its watermark, <Dir>/wtmp-reader-watermark.json, holds the
// file's inode, the offset of the next record, the id of the record before
// it and the open sessions, and is written as the event log's. A rotated
// file's rest is read from <file>.1 when it still has the old inode; a
// file truncated or rewritten in place is read again from its start.
//
// Where journalctl is installed, the systemd journal gives what wtmp lacks,
// sleep and resume: systemd-sleep's entries SD_MESSAGE_SLEEP_START
// (MessageSleepStart) → sleep and SD_MESSAGE_SLEEP_STOP (MessageSleepStop)
// → resume, payload {"sleep": the entry's SLEEP field, such as "suspend"
// or "hibernate"}, source "journal", event_record_id the first 16 hex
// digits of the SHA-256 of the entry's __CURSOR. Each poll runs
//
//	journalctl --output=json --no-pager --quiet --utc --since=@<now-LookBack> [--after-cursor=<cursor>] MESSAGE_ID=<start> MESSAGE_ID=<stop>
//
// under the poll's timeout; the watermark <Dir>/journal-reader-watermark.json
// holds the cursor of the last entry handled ({"cursor": "..."}). A cursor
// journalctl refuses is dropped and the look-back read again.
package timeline
