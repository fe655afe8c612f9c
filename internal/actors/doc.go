// Package actors is orderly's small actor runtime.
//
// An actor is a queue of typed messages and a receive function. It runs on a
// goroutine only while it has messages: an idle actor is a few words of
// memory and no goroutine. Two pieces make the runtime:
//
//   - Scheduler runs ready work on at most N goroutines at once (the engine's
//     concurrency limit). Its goroutines exist only while there is ready
//     work; when the ready queue empties they park, and exit after an idle
//     time. NewLevelScheduler adds priority levels: a ready queue per
//     level, work-in-progress limits, reserved slots and minimum shares.
//   - Group runs per-key actors: Send(m, keys...) delivers m after every
//     earlier message that shares any of its keys has been received and
//     returned, and before every later one. A key's actor is created on its
//     first message and passivated (removed from the group's map) as soon as
//     its queue is empty, so a million distinct keys over time do not mean a
//     million goroutines or an ever-growing map: the map holds only keys
//     with queued or running messages. On a scheduler with levels, a
//     message runs at the highest level of the messages waiting for it
//     (priority inheritance), so key order never holds high work at a low
//     level.
//
// Receive functions that panic do not kill the runtime: the panic is
// recovered, reported to the PanicHandler, and the message counts as
// received, so its key moves on.
package actors
