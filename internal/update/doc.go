// Package update is the agent's self-update (PROTOCOL.md, "Self-update"):
// it downloads a release from the agent_releases object store, verifies it,
// swaps it in for the running binary, and guards the new binary with a boot
// sentinel that rolls it back when it does not become healthy.
//
// # Wiring
//
// The daemon calls [Boot] first thing in main, before anything else runs:
//
//	res, err := update.Boot(filepath.Join(dataDir, "update"), "")
//	if errors.Is(err, update.ErrRestart) { return update.ExitRestart } // rolled back: exit 64
//	if err != nil { log it and go on }
//
// The agent makes an [Updater] with [New], runs [Updater.Run] beside its
// other parts and hands it every effective config with [Updater.Offer] (or
// calls [Updater.Consider] itself). When Run returns [ErrRestart] the agent
// stops and the process exits 64 (ErrRestart has an ExitCode() int method
// returning 64). At start it enqueues [Updater.PendingEvents] into the obs
// outbox, calling [Updater.EventRecorded] for each; it reports
// [Updater.Quarantined] in every heartbeat; and 30 s after a healthy start it
// calls [Updater.Healthy].
//
// # Procedure
//
// [Updater.Consider] skips a target that is empty, the running version,
// quarantined, or the version of the last attempt. Otherwise it waits a
// random 0..target_version_jitter (cancellable; under Run a new target
// restarts the decision), then downloads object <version> to a staging file
// <exe>.staging-* beside the executable, up to 3 attempts with a doubling
// pause. Before reading any data it checks the object info: the digest must
// be "SHA-256=<base64url>" (missing or malformed: refused, fail closed), the
// size between 1 byte and Options.MaxSize, the signature when one is
// required, and the version order (no downgrade unless allowed). It then streams the object to the staging file while hashing
// it, compares size and digest (a mismatch removes the file), fsyncs it and
// gives it the executable's permission bits.
//
// The swap is three renames, each undone on failure:
//
//  1. staged → <exe>.new
//  2. <exe> → <exe>.old
//  3. <exe>.new → <exe>
//
// The running executable is only renamed, never overwritten: Windows allows
// renaming a running image but not replacing it. Renames use fsutil.Rename
// (MoveFileEx with MOVEFILE_WRITE_THROUGH on Windows), then the directory is
// fsynced.
//
// # Release signatures (ours)
//
// A release must be signed when the agent enforces command signatures
// (Options.RequireSignature: an agent that refuses unsigned commands does
// not install an unsigned binary) or when a release keyring is configured
// (Options.Keyring not nil, even empty). The keyring has the command
// keyring's format (package signing); an empty one refuses every release
// ([ErrNoReleaseKeys], before anything is downloaded), and so does
// RequireSignature without a keyring. Otherwise only the digest is checked.
//
// A signed release carries in its object metadata
// (jetstream.ObjectMeta.Metadata; the object's headers are read as a
// fallback, keys matched without regard to case):
//
//	kanade-sig            standard base64 (padded) of the 64-byte ed25519 signature
//	kanade-sig-kid        the kid of the signing key in the release keyring
//	kanade-release-flags  the flags, comma separated; absent or "" for none
//
// The signed bytes are exactly ([SignedBytes]):
//
//	"kanade-release-v2" 0x00 <version> 0x00 <raw 32-byte SHA-256 of the binary> 0x00 <flags>
//
// where <version> is the object name and <flags> the kanade-release-flags
// value as published. The digest covers the content; the version binds the
// signature to the name, so a signed old release cannot be re-published as
// a newer version; the flags bind what the publisher allowed. The one flag
// is allow-downgrade ([Flags]); an unknown flag refuses the release
// ([ErrReleaseFlags]). Signatures of earlier formats (the digest alone, or
// "kanade-release-v1" without flags) do not verify: re-sign with
// 'kanade release put'. [SignRelease] makes the metadata and [PutRelease]
// publishes a release. Unsigned, unknown kid and bad signature are refused
// ([ErrUnsigned], [ErrUnknownKid], [ErrBadSignature]) before the content
// is read.
//
// # Downgrades
//
// A release whose version is lower than the running one in semantic-version
// precedence ([CompareVersions]), or that cannot be ordered against it (a
// version that is not MAJOR[.MINOR[.PATCH]][-PRE][+BUILD]), is refused
// ([ErrDowngrade]) unless its flags carry allow-downgrade (covered by the
// signature when signatures are required) or Options.AllowDowngrade is set.
// The boot sentinel's rollback is not affected: it restores the last good
// binary whatever its version.
//
// # Refusals
//
// A release refused for its signature, flags or version is logged at error
// level and recorded in the state file (refused: version, reason, time;
// [Updater.LastRefusal]); the executable is untouched and the refusal does
// not count as an attempt, so once the release or the keyring is fixed the
// update goes through. Run retries a refused target like a failed one.
//
// # Files
//
// In the state directory (the agent uses <data-dir>/update) there is one
// file, update.json, rewritten whole with fsutil.WriteFileAtomic (temporary
// file, fsync, rename, directory fsync) at every change, so it is always one
// consistent version. It holds:
//
//   - attempt: the last update swapped in (version, from, digest, time).
//     Only the last one is kept: a release whose binary reports another
//     version cannot loop, yet an operator can move back and forth between
//     versions (back only as allowed, see Downgrades).
//   - refused: the last release refused for its signature, flags or
//     version; cleared by a swap.
//   - quarantined: versions that failed their trial boots, oldest first, at
//     most [MaxQuarantined]. They are never tried again. To retry one, stop
//     the agent and delete the state file.
//   - sentinel: the armed boot sentinel: phase (armed or rollback), from,
//     to, the SHA-256 of the binary on trial, the boots counted so far.
//   - last_good: version and SHA-256 of <exe>.last-good.
//   - events: agent_update ObsEvents not yet handed to the obs outbox.
//
// Stray update.json.tmp-* files are removed when the state is read; an
// undecodable file is moved to update.json.corrupt-<unix-nanos> and the
// state starts empty ([CorruptStateError]).
//
// Beside the executable: <exe>.staging-* (downloads in progress; removed by
// Boot), <exe>.new (step 1 of a swap; removed by Boot), <exe>.old (the binary
// the last update replaced), <exe>.last-good (a copy of the last binary that
// ran healthily, written by Healthy), <exe>.failed (the binary a rollback
// replaced). Only the staging files and <exe>.new are ever removed by this
// package; the others are replaced by the next swap or copy.
//
// # Boot sentinel
//
// [Updater.Consider] arms the sentinel (with the digest of the new binary),
// records the attempt and queues the agent_update event {from, to} in one
// state write before the first rename (see the crash states for why), then
// swaps. A swap that fails writes the previous state back.
//
// [Boot] counts each boot of an armed sentinel, durably. If the executable
// is not the binary the sentinel was armed for, the swap never completed:
// the sentinel is disarmed, the event dropped and the attempt forgotten.
// Boots 1 to 3 go on ([BootResult].Armed). At the 4th boot the version is
// quarantined and the sentinel moves to phase rollback (written before any
// file is touched); then <exe>.last-good is checked against its recorded
// SHA-256 and put in place with the same three renames (the failed binary
// goes to <exe>.failed). Without a usable <exe>.last-good (a fresh install
// never became healthy since its first update) <exe>.old is used: the binary
// the update replaced, which ran before it. Neither may be the failed binary
// itself. The sentinel is disarmed, an agent_update event {from: failed,
// to: restored, rolled_back: true} queued, and Boot returns ErrRestart (exit
// 64). With no fallback at all, Boot quarantines, disarms and returns
// [ErrNoFallback]; the binary in place keeps running.
//
// An update may start while a binary is still on trial: the sentinel is
// then re-armed for the newer version, and <exe>.last-good still holds the
// last binary that proved healthy.
//
// [Updater.Healthy] disarms the sentinel first and then copies the running
// binary to <exe>.last-good (staging file, fsync, rename), recording its
// version and SHA-256; the copy is skipped when last-good already holds the
// running version.
//
// # Events
//
// The agent_update event is queued in the state file, with its time and an
// EventRecordID (the time in Unix nanoseconds) fixed when it is queued. The
// next start hands it to the obs outbox ([Updater.PendingEvents]) and then
// drops it ([Updater.EventRecorded]); a crash in between enqueues it again
// with the same EventRecordID, which the backend deduplicates on
// (pc_id, source, event_record_id).
//
// # Crash states
//
// What a power failure or crash leaves, by the step it interrupts:
//
//   - During the jitter wait or the download: at most a staging file, which
//     the next Boot removes. Nothing was recorded; the update is tried again.
//   - After the state write that arms the sentinel, before rename 1 or 2
//     completed: the old binary is still <exe>. Boot sees that <exe> is not
//     the armed binary and disarms (Abandoned), dropping the event and the
//     attempt, so the update is tried again; a stray <exe>.new is removed.
//   - Between rename 2 and rename 3: <exe> does not exist; the new binary is
//     <exe>.new and the old one <exe>.old. This window (two renames, no data
//     written between them) is inherent to a swap Windows allows; the
//     service cannot start, and neither can this package repair it.
//     Recovery is to rename <exe>.old (or <exe>.new) back to <exe>. On Unix
//     it could be closed with a hard link and a single rename(2), which
//     this package does not do, to keep one procedure on every platform.
//   - After rename 3: the new binary boots with the sentinel armed, the
//     attempt recorded and the event queued: the ordinary path.
//   - During a Boot count: the count is written atomically; a lost write
//     means one boot was not counted (the binary gets one more try).
//   - During a rollback, after the rollback phase was written: the next Boot
//     redoes the restore; if <exe> is no longer the failed binary the restore
//     had completed and only the state is finished.
//   - During Healthy, between disarming and writing <exe>.last-good:
//     <exe>.last-good keeps the previous good binary; the next Healthy
//     writes it.
//
// # Concurrency
//
// [Updater] methods are safe for concurrent use. Consider calls run one at
// a time; Run runs at most one Consider. Boot must run before New, in the
// same process that then runs the agent, and never while an Updater for the
// same state directory is in use (the agent's data directory lock ensures
// one agent per directory).
package update
