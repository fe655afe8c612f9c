// Package backpressure decides when consumption must slow down.
//
// It has two building blocks, both independent of the rest of the engine:
//
//   - [Credits] is a counting semaphore with a high and a low water mark.
//     Producers of work take credits ([Credits.TryAcquire], [Credits.Acquire])
//     and give them back when the work is done ([Credits.Release]). Once the
//     credits have been exhausted, a callback fires when the amount held falls
//     back to the low mark, so a paused source resumes only after a real
//     drain rather than flapping around the high mark (hysteresis).
//   - [Valve] turns several independent [Reason]s for holding a partition
//     back into one ordered sequence of pause and resume calls: the partition
//     is paused while any reason holds it and resumed when the last one lets go.
//
// Everything here is safe for concurrent use. Invalid arguments that can only
// come from a bug in the caller (negative amounts, releasing more than held,
// impossible water marks) panic; validating user configuration is the job of
// the engine's options.
package backpressure
