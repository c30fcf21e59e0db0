// Package outbox is a durable file outbox drained to JetStream: the
// agent's results, events, obs and inventory reports go through one each.
//
//	ob, err := outbox.New(outbox.Options[wire.ObsEvent]{
//		Dir:     filepath.Join(dataDir, "outbox", "obs"),
//		Subject: func(e wire.ObsEvent) (string, error) { return subject.Obs(e.PcID) },
//	})
//	go ob.Run(ctx)          // drains; waits for a connection (or ob.Serve(ctx), below)
//	ob.SetJetStream(js)     // whenever the agent has connected
//	id, err := ob.Enqueue(ctx, ev)
//	err = ob.Flush(ctx)     // everything enqueued so far is acknowledged
//
// # Promises
//
// A nil error from Enqueue means the item is on disk: its record and the
// directory entry of its segment file have been fsynced (fdatasync on
// Linux, FlushFileBuffers on Windows, see below), so it survives a crash,
// kill -9 and power loss on a disk that honours flushes. From then on the
// item is published until JetStream acknowledges it, or it is moved to
// stuck/ (repeated item failures) or corrupt/ (it no longer reads back).
// Nothing else removes it.
//
// A PubAck means the stream has stored the message; the server writes it to
// its own disk at once but fsyncs only every sync_interval (2 min by
// default), so a server power loss can still lose an acknowledged message.
// Only after the PubAck is the item removed here.
//
// Delivery is at least once. Every publish carries Nats-Msg-Id = the item's
// id (a UUIDv7 fixed at Enqueue; for legacy files the file name stem), so a
// re-publish (after a crash between the ack and the removal, a lost ack, a
// reconnect) is dropped by the server within the stream's duplicate window
// (1 h for the protocol's streams, see provision). An item re-published
// after more than that window is stored twice; consumers dedup on the id.
//
// The outboxes draining over one connection share one JetStream async
// publisher (one reply subscription for all of them, sharedpub.go); each
// PubAck is routed back to the outbox whose item it is, and each outbox
// keeps its own Window and MaxInflightBytes.
//
// Items are published in enqueue order (FIFO) on each pass; a retry after
// a failure can overtake nothing older but is overtaken by newer items.
//
// Flush(ctx) returns nil once every item whose Enqueue returned before the
// call is finished: acknowledged by JetStream, or moved to stuck/ or
// corrupt/ (never delivered from here; Stats.Stuck and Stats.Corrupt count
// them, so a caller that must know compares them before and after). It
// waits for the drain's notification that items finished, never polls, and
// ends early with ctx.Err(), or ErrClosed once the outbox is closed.
//
// # Failures
//
// A transport failure says nothing about the item: no connection, no ack
// within AckTimeout, the publisher closed, JetStream answering 503 or 408.
// It does not count as an attempt; it pauses all publishing (backoff from
// BackoffBase doubling to 30 s, reset by any ack, cut short when the
// connection reports CONNECTED again) and the item is retried in order.
// A long outage therefore never moves anything to stuck/.
//
// No stream answering for the subject (no responders after the client's
// retries) is neither: the stream is not provisioned yet (the deployment's
// state, possibly for hours) or has no leader for a moment (a cluster
// electing one after a node died). Such an item does not count as an
// attempt and never moves to stuck/; it is held, and one held item at a
// time probes the server, BackoffBase doubling to 5 s apart for the first
// two minutes, then to 30 s (never more than MaxBackoff). The first held
// item acknowledged releases all held items at once; a reconnect probes at
// once. Items that never failed keep flowing, so a subject without a
// stream blocks nothing else, and a fleet whose streams are missing sends
// one probe per outbox at a time, not one per item.
//
// An item failure is the server or Prepare refusing that item: any other
// publish error (an API error in the PubAck such as a wrong expected
// sequence or a sealed stream, a Prepare error). It counts as an attempt;
// the item alone backs off (BackoffBase doubling to MaxBackoff) while the
// others keep flowing, and after MaxAttempts it moves to stuck/.
// A message over the server's max payload can never succeed and moves to
// stuck/ at once. Attempt counts live in memory: a restart starts them over.
//
// A publish that gets no answer at all (sent on to a stream leader that
// crashed) would wait for AckTimeout. Instead, once the oldest publish in
// flight has waited HedgeAfter (5 s), a copy of it is sent with the same
// Nats-Msg-Id, one copy at a time, and whichever is answered first settles
// the item. A copy acknowledged while its first publish is not shows that
// the path to the stream works again while what went before it got no
// answer: every publish sent before the copy is sent again at once. Each
// such re-send is dropped by the duplicate window if the first was stored
// after all, so hedging costs a few duplicate publishes, never a duplicate
// item; a copy that fails leaves its first publish waiting, and the next
// copy waits HedgeAfter again.
//
// jetstream.ErrTooManyStalledMsgs is backpressure, not failure: publishing
// waits for acks and the item is retried without counting an attempt.
//
// Enqueue refuses at once, storing nothing, an item whose Subject func fails
// or returns an invalid subject (ErrSubject), that does not encode
// (ErrEncode), or whose message (with the Nats-Msg-Id header) is larger
// than the max payload (ErrTooLarge; with Prepare set, only MaxItemBytes
// applies at Enqueue since Prepare may shrink the item). A write or fsync
// failure (a full disk: the error wraps ENOSPC) fails the Enqueue calls of
// that batch; the partial write is cut off the file, so it is never
// published.
//
// # Size bound
//
// Options.MaxBytes (default 1 GiB) bounds the bytes the outbox holds: the
// sum of the encoded records of the items accepted and not yet finished
// (acknowledged, moved to stuck/ or to corrupt/), recovered by New from the
// files. The committer checks each item in order before writing its batch:
// one that would take the sum over MaxBytes is refused with an error
// wrapping ErrFull and nothing is stored; the others of the batch go on.
// An empty outbox accepts any one item (MaxItemBytes still applies), so a
// caller retrying an item is never refused forever. Accepted items are
// never dropped to make room; the outbox accepts again as it drains.
// Stats.PendingBytes reports the sum. Not counted: stuck/ and corrupt/,
// and the records already finished in a segment file that still holds an
// unfinished one (a segment is deleted once all its items are finished).
//
// # Directory layout and file format
//
//	<dir>/seg-<seq:016x>.log   segments of records, appended, never rewritten
//	<dir>/seg-<seq:016x>.ack   ordinals of finished records of that segment
//	<dir>/<name>.json          legacy items of the previous agent (raw JSON of T)
//	<dir>/stuck/<id>.json      items that failed MaxAttempts times (raw JSON of T)
//	<dir>/corrupt/...          unreadable bytes, preserved for inspection
//	<dir>/outbox.lock          locked (flock / LockFileEx) while an Outbox has
//	                           the directory open: a second New fails with
//	                           ErrLocked instead of corrupting the files
//
// A segment starts with the 8-byte magic "KOBXSEG1", then records:
//
//	u32 LE  body length
//	u32 LE  CRC-32C (Castagnoli) of the body
//	body:   u8 version (1), u8 id length, u16 LE subject length,
//	        i64 LE enqueue time (Unix ns), id, subject, item JSON
//
// An ack file is a sequence of 8-byte entries: u32 LE record ordinal in the
// segment, u32 LE CRC-32C of (u64 LE segment seq, u32 LE ordinal). Entries
// are appended after acks (and stuck/corrupt moves) without fsync.
//
// Stuck items use the legacy format on purpose: moving stuck/<id>.json
// back into <dir> re-queues the item, with the same id.
//
// # Group commit
//
// Enqueue encodes and checksums its record on the caller's goroutine and
// hands it to the committer goroutine (started by the first Enqueue that
// finds it stopped; it stops when it finds nothing queued), which takes every queued record
// (waiting up to 200 µs while other Enqueue calls are still encoding),
// appends them with one write and makes them durable with one fdatasync,
// then answers all their callers. A new segment is created with O_EXCL,
// its magic written and the directory fsynced before any record in it is
// acknowledged. Segments roll at SegmentBytes; each Open starts a new one
// (old segments are never appended to again).
//
// # Crash states and recovery (New)
//
//   - Stray *.tmp files (an interrupted stuck/ or corrupt/ write) in the
//     directory, stuck/ and corrupt/ are removed.
//   - A segment shorter than its magic (crash right after creation) holds
//     no items and is removed.
//   - A torn tail (crash during an append that was never acknowledged, or a
//     failed write whose cut-back failed): the bytes from the first record
//     that does not check out to the end are copied to
//     corrupt/<segment>-<offset>.bin (fsynced), then the segment is
//     truncated there.
//   - A damaged record in the middle (bad checksum or length): the reader
//     resynchronises on the next record that checks out; the bytes in
//     between go to corrupt/ and every later record is still delivered.
//   - Acked but not yet recorded in the ack file (crash between ack and
//     ack write, or the ack write lost in a power cut): re-published and
//     dropped by the server's duplicate window.
//   - Crash between writing stuck/<id>.json and its ack entry: the item is
//     retried and, failing again, rewritten to the same stuck file.
//   - A segment whose records are all finished, or an ack file without its
//     segment (crash during removal), is removed.
//   - A legacy <name>.json that is not valid JSON of T moves to corrupt/;
//     one whose Subject fails moves to stuck/.
//
// Every unreadable thing is logged as a *CorruptError (path, offset,
// destination; unwraps to ErrCorrupt and the cause) and counted in
// Stats.Corrupt.
//
// # Windows
//
// A directory cannot be fsynced through os.File.Sync on Windows ("Access is
// denied"). There, record durability comes from FlushFileBuffers on the
// segment; the directory is flushed by opening it with
// FILE_FLAG_BACKUP_SEMANTICS and calling FlushFileBuffers, which NTFS
// accepts on current versions; where it is refused we rely on NTFS
// journaling the new directory entry (metadata) no later than the flushed
// file data. Renames (stuck/, corrupt/, atomic files) use MoveFileEx with
// MOVEFILE_WRITE_THROUGH, which returns once the rename is on disk.
//
// # Costs and concurrency
//
// Enqueue, Stats, SetJetStream and Close are safe for concurrent use; Run
// runs once at a time (ErrRunning otherwise) and may be called again after
// it returned. Stats is cheap (counters in memory, no disk access). An idle
// outbox costs nothing: Run sleeps on channels (Enqueue, acks, connection
// events) and a timer armed only for the next backoff deadline; there is no
// polling tick. Serve is Run for hosts of many outboxes (an agent has
// three or four, a fleet simulator thousands): it returns at once, and its
// drain goroutine runs only while items are pending and IdleLinger after
// the last ack, then ends and gives up its share of the connection's
// publisher (whose reply subscription and goroutine go with the last
// share); an idle served outbox holds no goroutine at all.
//
// Memory: ids, subjects, enqueue times and items stay on disk. The index
// of pending items is packed per segment, about 3 bytes per item (length
// and state; offsets are kept per block of 64) and no allocation per item:
// 1,000,000 pending items hold ~3.5 MiB of heap once opened. Only the
// enqueue time of each segment's oldest unfinished item is kept (for
// Stats.OldestAge), read from the file by the drain when it changes. An item that failed, or was put back
// after a transport failure, also takes a map entry and a retry heap entry
// (~50 bytes) until it is finished. Add the items in flight (Window and
// MaxInflightBytes bound them: with the defaults and ~600-byte items, ~9
// MiB of Go heap including the NATS client's share). New reads one segment
// at a time into a reused buffer (SegmentBytes, 8 MiB by default) and
// checksums every record: ~0.15 s for 1,000,000 items (580 MB) in the page
// cache. BenchmarkOpen measures these. OnAck and Prepare run
// on the Run goroutine: they must not block for long, since publishing
// waits for them. One Outbox per directory, in one process.
package outbox
