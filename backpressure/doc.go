// Package backpressure decides when consumption must slow down: credit
// pools with hysteresis, one all-or-nothing way to take and return a set of
// credits, and a valve that turns reasons for holding a source back into
// pause and resume calls.
//
//   - [Pool] is a counting semaphore with a high and a low water mark
//     (records, bytes, offsets of an uncommitted window: whatever its owner
//     counts). Takers take credits ([Pool.TryAcquire], or [Pool.Wait] and
//     [Pool.Acquire] to wait in FIFO order) and give them back when the
//     work is done ([Pool.Release]). Once the pool has been exhausted, a
//     callback fires when the amount held falls back to the low mark, so a
//     paused source resumes only after a real drain rather than flapping
//     around the high mark (hysteresis).
//   - [Take] and [Give] take a set of credits from several pools all or
//     nothing, and give them back: a holder never holds part of a set
//     while it waits for the rest.
//   - [Valve] turns several independent [Reason]s for holding a partition
//     back into one ordered sequence of pause and resume calls: the
//     partition is paused while any reason holds it and resumed when the
//     last one lets go. Its calls run on a goroutine of its own, so reasons
//     may change under any lock; [Valve.Close] stops it and waits.
//
// In orderly, each partition's dispatcher takes a batch's credits (its
// partition's records and bytes, its uncommitted window, the engine's
// records and bytes, a priority level's slice) with one Take, and gives
// them back with one Give per batch of completions; the valve pauses the
// claim's fetching while a pool it waits for is exhausted.
//
// Everything here is safe for concurrent use. Invalid arguments that can only
// come from a bug in the caller (negative amounts, releasing more than held,
// impossible water marks) panic; validating user configuration is the job of
// the engine's options. This package is v0: its API may change before v1.
package backpressure
