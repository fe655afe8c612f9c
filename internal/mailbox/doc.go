// Package mailbox provides Mailbox, a bounded multi-producer /
// single-consumer FIFO queue for handing items to one actor goroutine.
//
// # Full and closed
//
// A mailbox holds at most Cap items. What a producer sees when it is full
// depends on the call, and nothing is ever dropped silently:
//
//   - TryPush never blocks: it returns nil (enqueued), ErrFull or ErrClosed.
//   - Push blocks until there is room (nil), ctx is done (ctx.Err(), the item
//     is not enqueued) or the mailbox is closed (ErrClosed). Blocked pushers
//     are served strictly in the order they blocked: when the consumer frees
//     room, the oldest blocked pusher's item is moved into the queue on its
//     behalf before anyone else can take the slot. Waiting parks the
//     goroutine on a channel; there is no spinning and no helper goroutine.
//
// Close is idempotent. After it every push returns ErrClosed and blocked
// pushers wake with ErrClosed, but everything already queued stays: the
// consumer keeps receiving it (Pop returns items until the mailbox is
// empty, then ErrClosed).
//
// When room, or an item, is available, Push and Pop succeed without
// consulting ctx; ctx only bounds how long they wait.
//
// # Consumer
//
// The consumer takes items with Pop (blocks), TryPop (never blocks) or
// Drain (never blocks, batches). Signal returns a channel of capacity 1
// that receives a value whenever an item is pushed into an empty mailbox
// and when the mailbox is closed. Values coalesce, so a consumer that
// selects on Signal must drain until empty after each receive; it may also
// see a signal with nothing queued, which it should ignore. This lets an
// actor wait on its mailbox and a ticker in one select:
//
//	for {
//		select {
//		case <-mb.Signal():
//			batch = mb.Drain(batch[:0], 0) // max 0: everything queued
//			handle(batch)
//			if mb.Closed() && mb.Len() == 0 {
//				return
//			}
//		case <-ticker.C:
//			flush()
//		}
//	}
//
// # Concurrency
//
// Every method is safe for concurrent use. TryPush, Push, Close, Closed,
// Len and Cap may be called from any number of goroutines. The consumer
// methods (Pop, TryPop, Drain, Signal) are meant for exactly one goroutine
// at a time. Several concurrent consumers are still memory-safe, every
// item goes to exactly one of them and blocked Pops all wake, but the
// FIFO statement then holds only for the sequence each one receives, and a
// consumer selecting on Signal may have its signal taken by another.
//
// Items enqueued by one producer are received in the order that producer
// enqueued them; items of different producers interleave in the order
// their pushes took effect.
//
// # Memory
//
// The queue is a ring buffer that starts empty, grows by doubling up to
// Cap as items arrive and shrinks again as the consumer drains it, so a
// mailbox with a capacity in the thousands that holds a few items stays
// small. Slots are zeroed when their item leaves, so the mailbox never
// keeps a received item reachable.
package mailbox
