// Package mailbox is a bounded mailbox: the queue of one actor's messages,
// with limits in messages and bytes.
//
// A push over the bound is refused: the message is not queued, Push
// returns false at once, and the caller keeps the message (it never blocks
// and never drops anything silently). What the caller does with a refused
// message is its policy; orderly's dispatcher spills the key (drops the
// record from memory, to read it again from the log later) or holds it and
// pauses the partition's fetching.
//
// Water marks give the owner two events, so it can react once per swing
// rather than once per message:
//
//   - High: the mailbox reached its high mark (a push filled it to a
//     limit) or refused a push. From then on it refuses every push.
//   - Low: a pop brought an over mailbox down to its low mark in both
//     limits. It accepts pushes again.
//
// One exception keeps a large message from being refused forever: an empty
// mailbox accepts a message of any size.
//
// A Mailbox has one owner: it is not safe for concurrent use, and no
// method blocks. In orderly it is owned by the partition's dispatcher, the
// only goroutine that pushes (a record routed to its key) and pops (a
// record whose handling finished). This package is v0: its API may change
// before v1.
package mailbox
