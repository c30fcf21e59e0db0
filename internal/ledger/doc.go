// Package ledger is the agent's durable dedup ledger, keyed by a command's
// request_id (docs/protocol.md, "Command pipeline", step 3). A command seen
// before does not run again, across restarts, whether it arrived on
// commands.all, commands.pc.<id>, a group subject or the EXEC replay.
//
// # Use
//
//	l, err := ledger.Open(filepath.Join(dataDir, "ledger"), ledger.Options{Logger: log})
//	for _, e := range l.Recovered() { // crashed mid-launch: outcome unknown
//		enqueue(resultExit121(e.RequestID, e.Meta))
//		l.Finished(e.RequestID)
//	}
//	ok, st, err := l.Claim(cmd.RequestID) // per command, after the signature check
//	if !ok { /* duplicate (st says how far the other copy got): drop */ }
//	// gates refused: enqueue the skipped result, then l.Finished(id)
//	// shutting down before launch: l.Release(id)
//	err = l.Launching(cmd.RequestID, meta) // durable; only then spawn
//	... run, enqueue the ExecResult durably ...
//	err = l.Finished(cmd.RequestID)
//
// # States and what each call promises
//
// An entry moves pending → launching → finished, never back.
//
//   - Claim makes a pending entry in memory only, and is atomic: of many
//     concurrent claims of one id exactly one wins. Pending is deliberately
//     not persisted: a crash while pending means nothing started, and the
//     EXEC replay delivers the command again after the restart, which is
//     what should happen. Persisting it would also need a tombstone for
//     Release and would cost an fsync per command for no gain. (The EXEC
//     stream keeps only the last command per subject, so a command
//     superseded on its subject while this agent was down is not replayed;
//     no ledger state could run it anyway, as the ledger holds no command
//     bodies.)
//   - Launching returns nil only once its record is written and fsynced. After
//     that, any crash or power loss leaves the entry launching or finished
//     on reopen; Recovered lists the launching ones (with their metadata,
//     e.g. exec_id) so the agent reports exit 121 and then calls Finished.
//   - Finished returns nil only once its record is fsynced. A crash before
//     that leaves the entry launching: the result may then be reported
//     twice (the real one, already in the outbox, and a 121), never run
//     twice.
//   - Release drops a pending claim (e.g. shutdown before launch), so the
//     replay after restart runs the command.
//
// A write or fsync error makes the ledger failed (ErrFailed) until it is
// reopened: after a failed fsync the file's contents are unknown and the
// kernel may have dropped the dirty pages, so retrying is unsafe. In-memory
// states stay as they were set, which errs towards not running.
//
// # Retention and memory
//
// Finished entries are kept for Options.Retention (default 30 days, at
// least 8: the EXEC stream replays commands for 7 days, and a replayed
// command whose entry was pruned would run again) and at most
// Options.MaxEntries of them (default 100 000; the oldest go first; this cap
// wins over Retention, so size it above a week's commands). Pruning happens
// at compaction, which also runs hourly when an entry has expired and when
// the count exceeds MaxEntries by an eighth; memory is therefore bounded by
// about 1.125 × MaxEntries finished entries, plus launching entries (never
// pruned) and pending claims (bounded by commands in flight). An entry costs
// roughly 100 bytes plus its id and metadata.
//
// # Files
//
// The directory holds:
//
//	ledger.log                 the log (a snapshot followed by appended records)
//	ledger.log.tmp             a compaction in progress; removed at Open
//	ledger.lock                held with flock / LockFileEx while open
//	ledger.corrupt-<UTC time>  damaged bytes preserved by Open; never deleted by the ledger
//
// ledger.log starts with a 16-byte header: the magic "KNDLEDGR", a version
// (uint32, little-endian, 1) and a reserved uint32 (0). Records follow,
// back to back:
//
//	length  uint32 LE   payload length, 12 .. 11+1024+65536
//	crc     uint32 LE   CRC-32C (Castagnoli) of the 4 length bytes, then the payload
//	payload:
//	  kind  uint8       1 = launching, 2 = finished
//	  at    int64 LE    Unix nanoseconds of the transition (Options.Now)
//	  idlen uint16 LE   1 .. 1024
//	  id    [idlen]     the request id
//	  meta  [rest]      launching: the metadata (≤ 64 KiB); finished: empty
//
// Records are monotone (they only move an entry forward), so replaying them
// is idempotent: a later launching record for a finished id changes nothing.
//
// Writes: Launching and Finished queue one encoded record each; a single
// committer goroutine takes everything queued, writes it with one write and
// one fsync, and then answers every caller (group commit: concurrent callers
// share an fsync, and callers arriving during an fsync form the next batch).
// The committer runs only while records are queued: the write that finds it
// stopped starts it, and it stops when it finds nothing queued, so an idle
// ledger holds no goroutine.
//
// Compaction, on the committer between batches (and at an hourly check on
// a timer, since entries also expire with time alone), when the log exceeds
// max(CompactBytes, 2 × its size after the previous compaction), or the
// finished count exceeds MaxEntries by an eighth, or an entry expired:
// prune; encode every launching and finished entry, oldest first, as a
// complete log file; write it to ledger.log.tmp, fsync, close; close the log;
// rename the tmp file over ledger.log; fsync the directory; reopen for
// appending. The snapshot is taken from memory, which always holds at least
// what the log holds (states are set in memory before their record is
// queued), so a record queued but not yet written is in the snapshot too and
// appending it again afterwards is harmless.
//
// On Windows a directory cannot be fsynced (os.File.Sync on it fails with
// "Access is denied"), so the rename uses MoveFileEx with
// MOVEFILE_REPLACE_EXISTING|MOVEFILE_WRITE_THROUGH, which returns only after
// the move is flushed, and the directory fsync is a no-op; NTFS journals the
// metadata. The log is opened without O_APPEND there, because Go then opens
// it without GENERIC_WRITE, which FlushFileBuffers needs.
//
// # Crash states and recovery
//
// Open removes a stray ledger.log.tmp, reads ledger.log and replays it.
//
//   - Crash during an append: the tail is a partial record (its length field
//     is plausible but runs past the end of the file). No caller was told it
//     was durable; it is dropped with a warning.
//   - Crash during compaction before the rename: ledger.log is the old,
//     complete log; the tmp file is removed.
//   - Crash after the rename: ledger.log is the complete snapshot.
//   - Damage (bad length, CRC mismatch, bad payload, bad header): the valid
//     prefix is kept; the bytes from the first bad record to the end are
//     written to ledger.corrupt-<time> (fsynced) and logged at error level;
//     the damaged region is scanned byte by byte for CRC-valid records,
//     which are applied too (salvage, first 64 MiB), so a valid launching
//     entry after a damaged one is not lost. A CRC-32C false positive would
//     need a random match of length, kind, CRC and id length.
//
// Whenever Open found damage, pruned something or the log is over
// CompactBytes, it rewrites the log by compaction before returning, so later
// appends follow a clean file. Open never panics on bad input and fails only
// on I/O errors (including failing to preserve damaged bytes, which it will
// not discard).
//
// A ledger directory must be used by one Ledger at a time; Open takes a lock
// on ledger.lock and fails with ErrLocked otherwise.
package ledger
