// Package memory is an in-memory partitioned log with consumer groups: the
// embedded orderly.Source for tests and demos. It behaves like Kafka where
// the engine can tell the difference, and is deterministic where Kafka is
// not.
//
// # The log
//
// A Log holds topics made with CreateTopic, each with a fixed number of
// partitions. Records are appended with Produce (partition chosen from the
// key), ProduceTo (partition given) or ProduceRecord; offsets start at 0
// and are contiguous in each partition. Nothing is ever deleted (no
// retention, no compaction). Produce copies what it is given; consumers
// receive the very *orderly.Record the log stores (zero copy), with Topic,
// Partition, Offset and Timestamp set, and must not modify it.
//
// The partition of a keyed record is the 32-bit FNV-1a hash of the key
// modulo the partition count (not Kafka's murmur2: the memory log is not
// wire compatible and need not be). Records with a nil key go round-robin.
//
// # Consumer groups
//
// Log.Member makes a Member of a named group subscribed to some topics; it
// is an orderly.Source. It joins the group when Consume is called and
// leaves when Consume's context is done.
//
//   - Assignment. The group's live members, in join order, share every
//     partition of the topics they subscribe to: partition i of a topic goes
//     to the (i mod n)-th of the n members subscribed to it. It is
//     recomputed on every join, leave and crash, and when a subscribed
//     topic is created.
//   - Cooperative rebalance. Only partitions that change owner are revoked.
//     The old owner's claim is revoked (Revoked closed, its fetcher stops,
//     Records closed after it); the new owner is granted a claim only after
//     the old owner's serve call for it has returned, so its Start sees the
//     old owner's final commit. If the old owner crashed, the new owner is
//     granted the partition at once.
//   - Claims. Each grant calls serve(claim) in a new goroutine. Start is the
//     group's committed position at grant time, or {Offset: NoOffset} if
//     there is none. The claim's fetcher reads from Start().Offset, or from
//     offset 0 when it is NoOffset (Kafka's auto.offset.reset=earliest). A
//     committed offset beyond the end of the partition waits for the
//     partition to grow to it (the first record delivered is never below
//     Start).
//   - Fetching. One fetcher goroutine per claim hands the Records channel
//     batches of what the partition holds, each a zero-copy slice of the
//     log of at most the member's fetch buffer (WithFetchBuffer, default
//     64); the channel holds one batch. With a full channel it waits for
//     room; at the end of the partition it waits for the next append; it
//     never polls. Pause stops it from sending more: after Pause returns at
//     most the fetch buffer more records arrive, the batch already in the
//     channel.
//     Resume lets it continue. Both never block and are idempotent.
//   - Re-reading. Claims are orderly.Rereaders: ReadFrom opens a stream of
//     the partition from any offset, a reader of the log itself (zero
//     copy, batches of at most the fetch buffer, no goroutine), independent
//     of Records and of Pause. Its Next waits for appends at the end of the
//     partition, and returns orderly.ErrStreamClosed after Close or the
//     claim's revoke. The engine re-reads there for keys it spilled.
//   - Commits. Claim.Commit stores the position synchronously while the
//     claim is in service: also after Revoked is closed, until its serve
//     call returns (then ErrClaimEnded). A crashed member's commits fail
//     with ErrFenced. Lower offsets than the last commit are accepted, as in
//     Kafka: monotonic commits are the engine's job, and CommitHistory lets
//     tests check it.
//   - Leaving. When Consume's context is done the member leaves the group:
//     all its claims are revoked, their serve calls may still commit, their
//     partitions go to the remaining members as each serve call returns.
//     Consume returns nil once every serve call and fetcher it started has
//     finished.
//   - Crashing. Member.Crash simulates a process that died: its commits
//     fail with ErrFenced and store nothing, its claims are revoked, its
//     partitions are reassigned at once (so for a while two serve calls may
//     run for one partition, exactly as with Kafka after a session timeout;
//     only the live member's commits count). Its Consume returns ErrCrashed
//     once its serve calls have returned.
//   - Early return. A serve call that returns before its claim is revoked
//     ends the claim; the partition stays assigned to the member but idle
//     until the next rebalance grants it a new claim, as a sarama
//     ConsumeClaim that returns early does.
//
// Every method of Log, Member and the claims is safe for concurrent use.
// Only Consume blocks (and Claim.Commit, briefly, for the Log's lock).
package memory
