// Package spill keeps the books of a partition's spilled keys: which keys
// are spilled, which of their records the dispatcher dropped from memory,
// and the re-read that hands those records back to their keys, in order.
//
// A key over its buffer is spilled: the dispatcher stops queueing its
// records and drops them instead (they stay registered, not done, so the
// watermark waits for them). Once a spilled key can take records again, a
// re-read (a pass) reads the partition from the lowest offset any such key
// is waiting for, and hands the dropped records of the keys taking part in
// it (its members) to them in offset order, skipping everything else. When
// the pass reaches the dispatcher's position, every member is back in
// memory: its next records are queued by the dispatcher again.
//
// # Invariants
//
// Under the owner's lock, at every moment:
//
//  1. A record is dropped only with every one of its keys spilled, and a
//     key stays spilled until every record dropped with it was handed back.
//     So a key's records reach it in offset order: those the dispatcher
//     queued before it spilled, then the dropped ones (handed back by
//     passes in offset order), then, after it is back, those the
//     dispatcher queues again.
//  2. A member of the running pass has been handed back every record
//     dropped with it below the pass's position. A key that spills during
//     a pass is a member (the dispatcher is ahead of the pass).
//  3. A spilled key's behind is at or below each of its dropped records
//     not yet handed back; a pass starting at from makes members of the
//     keys whose behind is at or above from.
//  4. A record is handed back at most once: the dropped set forgets it when
//     it is handed back.
//
// A key that cannot take a record the pass reaches (it is over its buffer
// again, or another of the record's keys is not a member) stops being a
// member: it is spilled again from that record, for a later pass. The pass
// waits for a full key only while no other spilled key is idle, so that a
// stuck key does not hold up the re-read of the others.
//
// State is pure bookkeeping: no goroutines, no locks, no I/O. It is not
// safe for concurrent use; the engine keeps it under its partition's lock.
package spill
