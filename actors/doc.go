// Package actors is orderly's actor runtime: a scheduler of worker
// goroutines and groups of per-key actors, each with a bounded mailbox
// (package mailbox).
//
// An actor is a key's mailbox and the turns it is given: it runs on a
// worker only while it has messages, so an idle actor is a few words of
// memory and no goroutine. Two pieces make the runtime:
//
//   - Scheduler runs ready work on at most N goroutines at once (the
//     engine's concurrency limit). Workers stay warm and park when there
//     is nothing to do. Cheap work is taken in batches (one trip to the
//     shared queue per batch, results handed over per batch); work that
//     blocks fans out one piece per worker; idle workers steal from busy
//     ones, and a monitor wakes workers for work stuck behind a blocked
//     one. NewLevelScheduler adds priority levels: a ready queue per
//     level, work-in-progress limits, reserved slots and minimum shares.
//   - Group runs per-key actors for one owner goroutine: Send(messages)
//     queues each behind every earlier message that shares any of its
//     keys; a message runs once it heads all of them, and messages with
//     no key in common run in parallel. Workers hand finished turns back
//     in batches, and the owner's Collect moves the keys on. A key's
//     actor is created on its first message and passivated in bulk once
//     idle, so a million distinct keys over time do not mean a million
//     goroutines or an ever-growing map. On a scheduler with levels, a
//     message runs at the highest level of the messages waiting for it
//     (priority inheritance), so key order never holds high work at a low
//     level.
//
// Ownership: a Group's keys, mailboxes and turns belong to its owner (the
// goroutine that calls Send, Collect and WakeAll), guarded by the group's
// own lock only so that other goroutines can read them (Walk, Load, ...);
// a worker touches only the turn it runs and its own buffer of finished
// turns. The Scheduler's queues are guarded by its lock, each worker's
// batch by the worker's lock. Every goroutine the runtime starts is
// joined by Scheduler.Close.
//
// Receive functions that panic do not kill the runtime: the panic is
// recovered, reported to the PanicHandler, and the message counts as
// received, so its key moves on.
//
// This package is v0: its API may change before v1.
package actors
