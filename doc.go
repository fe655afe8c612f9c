// Package orderly is an embedded, actor-based consumption engine for
// partitioned message streams, Kafka first.
//
// A service gives it a Source (a consumer group member: the Kafka adapters
// adapters/orderlysarama and adapters/orderlykgo, or adapters/memory in
// process), a Handler and an Ordering, and gets records of one key handled
// strictly in offset order while different keys run in parallel, offsets
// committed only when everything before them is done (at-least-once),
// bounded memory, and failure handling that never stops a partition.
//
//	eng, err := orderly.New(source, orderly.HandlerFunc(handle),
//		orderly.WithOrdering(orderly.ByKey()), orderly.WithMaxConcurrency(100))
//	if err != nil { ... } // errors wrapping ErrInvalidOption
//	err = eng.Run(ctx)    // blocks; cancel ctx to drain, commit and return
//
// # How a record flows
//
//	claim ──batches──► dispatcher ──turns──► workers ──finished turns──► dispatcher ──notices──► committer
//	  ▲ pause/resume     (one per claim:        (≤ WithMaxConcurrency:     (collects: credits       (one actor: owns
//	  └──── valve ◄───── credits, keys,          the failure chain,          back, keys move on)      every watermark,
//	                     bounded mailboxes)      then hand back in batches)                          commits)
//
// Each claimed partition has a dispatcher, the goroutine the source
// started for the claim, which owns the partition's key actors and
// credits. It takes a batch's credits at once (package backpressure),
// pushes each record into its key's bounded mailbox (packages actors and
// mailbox; a key whose mailbox refuses spills, or pauses the partition),
// and hands the keys that became ready to the scheduler as turns. Workers
// run a turn's records through the failure chain and hand finished turns
// back in batches; the dispatcher then gives the credits back and tells
// the committer actor (package committer) what was dispatched and
// completed, one message per round. The committer advances each
// partition's watermark from those notices and commits it.
//
// # Read more
//
// GUIDE.md in the repository states the guarantees (and what is not
// promised), the commit protocol, the memory bound, hot and stuck keys,
// revoke and shutdown, the failure chain, priorities and what each
// goroutine owns; the README has the diagram of the whole and the figures.
// The options' documentation says each default and limit.
package orderly
