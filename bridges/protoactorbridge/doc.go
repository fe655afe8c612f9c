// Package protoactorbridge lets teams that run protoactor-go
// (github.com/asynkron/protoactor-go) keep their actors as orderly's key
// handlers. A Bridge is an orderly.Handler: for each handler attempt it
// sends the record to a protoactor actor as a request and waits for the
// actor's reply, which becomes the attempt's result.
//
//	system := actor.NewActorSystem()
//	bridge, err := protoactorbridge.New(system,
//		protoactorbridge.WithPerKey(actor.PropsFromProducer(newOrderActor)))
//	if err != nil { ... } // errors wrapping orderly.ErrInvalidOption
//	eng, err := orderly.New(source, bridge,
//		orderly.WithHooks(bridge),                  // fills Request.Attempt
//		orderly.WithAttemptTimeout(10*time.Second), // each request's deadline
//		orderly.WithRetry(orderly.RetryPolicy{MaxAttempts: 5}))
//	if err != nil { ... }
//	err = eng.Run(ctx)          // cancel ctx: drain, commit, return
//	err = bridge.Close(drainCtx) // then stop the bridge's actors
//
// The package is a module of its own, so that protoactor-go's
// dependencies (Prometheus, the OpenTelemetry metrics SDK, protobuf) stay
// out of builds that do not import it. The orderly engine itself does not
// run on protoactor: its key actors are its own (package actors). The
// bridge is for actors a team already has.
//
// # What an actor receives and answers
//
// For each handler attempt the actor receives a *Request: the record, its
// routing key, the attempt number (when the bridge is also given to
// orderly.WithHooks) and the deadline after which the bridge stops
// waiting. It answers with ctx.Respond, once, with a Reply:
//
//	func (a *orderActor) Receive(ctx actor.Context) {
//		switch m := ctx.Message().(type) {
//		case *actor.Started:
//			a.status = a.store.Load(a.key) // state that must outlive passivation
//		case *protoactorbridge.Request:
//			ctx.Respond(protoactorbridge.Reply{Err: a.apply(m.Record)})
//		}
//	}
//
// The request's sender is the bridge's reply address, so the actor may also
// forward the request to another actor (ctx.Forward, a router) that
// responds in its place, or respond from another goroutine. How an attempt
// ends:
//
//	the actor ...                               the attempt's error
//	responds Reply{} or &Reply{}                nil: the record is done
//	responds Reply{Err: err}                    err, as it is
//	responds anything else                      ErrUnexpectedReply
//	does not respond by the request's deadline  ErrTimeout (also context.DeadlineExceeded)
//	was not alive                               ErrActorDead
//	stopped before it responded                 ErrActorStopped
//	panicked on it (WithPerKey)                 *ActorPanicError
//	(the handler's context was cancelled)       the context's cause
//	(the bridge was closed)                     ErrClosed
//
// These are handler errors like any other: orderly's retries (WithRetry),
// recovery (WithFallback), dead letters (WithDeadLetter), key parking and
// circuit breaker apply to them unchanged, and an actor can mark its error
// with orderly.Permanent or orderly.RetryAfter. A reply that has arrived is
// always the result, even if the context ends or Close runs at the same
// moment; a reply that arrives after the bridge stopped waiting is dropped
// and counted (Stats.LateReplies).
//
// The deadline is the handler context's (orderly.WithAttemptTimeout gives
// each attempt one), or, when the context has none, the request timeout
// (WithRequestTimeout, default 30s).
//
// # One actor per key
//
// WithPerKey gives every routing key (WithKeyFunc; by default the record's
// Kafka key) an actor of its own, spawned from the given props on the
// key's first record as a child of the bridge's actor: a virtual actor per
// key. The bridge's actor is named "orderly-bridge$<id>", a key's actor
// "key-<key>$<id>" under it (the key shortened to 32 bytes of letters,
// digits, '-', '_' and '.'). The first request of a new key goes through
// the bridge's actor, which spawns the child and forwards it; later ones go
// straight to the child, never overtaking those still being forwarded.
//
// orderly hands the records of one key of one partition to its handler
// one at a time and in offset order, retries included. So a key's actor
// receives its key's records in offset order, a record's retries before the
// next record, and, unless an attempt timed out, one request in its mailbox
// at a time. After a timeout the next attempt queues behind the one the
// actor is still working on: the actor sees both, in order, never at once.
// orderly's keys are scoped to a partition; a key present in two
// partitions (which Kafka's default partitioner never does) has one actor
// that receives both partitions' records, each partition's in order.
//
// The bridge's actor supervises the per-key actors. When one panics on a
// request, that attempt fails at once with an *ActorPanicError, then the
// supervisor strategy (WithSupervisor; protoactor's default restarts the
// actor, at most 10 times in 10 seconds, then stops it) decides; a
// restarted actor is a new instance without the old one's state. When a
// per-key actor stops for any reason, requests waiting on it fail with
// ErrActorStopped at once and the key's next record spawns a new actor.
//
// With WithTarget instead, every record goes to one actor the caller owns
// (or a router). One actor handles one message at a time, so the records of
// all keys queue in its mailbox, up to the engine's WithMaxConcurrency:
// WithPerKey is what keeps orderly's parallelism across keys.
//
// # Passivation
//
// A per-key actor that has answered every request it was sent and has had
// no request for the passivation period (WithPassivation, default 30s) is
// stopped with a poison pill, and its key's next record spawns a new one.
// An actor whose request timed out counts as busy until it answers it, so
// two actors of one key never run at once. In-memory state does not survive
// passivation (nor a supervisor's restart): an actor that needs its state
// loads it in its Started message and saves it as it changes, as the
// package example and tests do. With passivation, live actors are bounded
// by the keys active within one period, not by all keys ever seen.
//
// # Shutdown
//
// Call Close after the engine's Run has returned, bounded by the drain
// timeout: Run has by then let the handlers it was running finish
// (orderly.WithDrainTimeout). Close refuses new requests (ErrClosed), waits
// for the requests still in flight to get their replies, then stops the
// per-key actors with poison pills (each finishes what is queued in its
// mailbox) and waits for them to stop. When its context ends first, it
// stops the actors with Stop instead, fails the requests still waiting with
// ErrClosed and returns the context's error: a reply that arrived before
// is never dropped. WithTarget's actor belongs to the caller and is left
// running.
//
// # protoactor-go's limits, and what the bridge does about them
//
// orderly measured protoactor-go for its own actor runtime and did not
// adopt it. What that means for a bridge user, and how the bridge copes:
//
//   - It is a beta without tagged releases. The bridge is built and tested
//     against v0.0.0-20240822202345-3c0e61ca19c9, the newest version the Go
//     module proxy serves.
//   - Its futures have a data race (upstream issue #1145): Future stores a
//     reply without its lock while its timeout may complete it at the same
//     moment; `go test -race` reports future.go:161 against future.go:125
//     when a reply meets the deadline. Request deadlines are exactly that
//     case, so the bridge does not use RequestFuture: it registers a reply
//     process of its own and sends each request in an envelope whose sender
//     is that process, the request's id in the sender PID's RequestId (as
//     protoactor's remoting addresses per-request senders), and it keeps
//     every outcome under one lock. The package's tests run replies against
//     deadlines under -race. For the same reason the bridge learns that
//     actors have stopped from their Terminated messages, not from
//     PoisonFuture or StopFuture.
//   - Its receive timeout has a data race (upstream issue #1139): the
//     timer's goroutine clears the actor context's timeout and timer fields
//     while the actor's goroutine reads them (`go test -race` reports
//     actor_context.go:247 against :477, and :81 against :68). The bridge
//     passivates with timers of its own instead of SetReceiveTimeout.
//   - Its bounded mailbox (actor.Bounded) spins the sender with
//     runtime.Gosched while full, and actor.BoundedDropping drops messages
//     silently. Here the sender would be an engine handler goroutine.
//     orderly hands the bridge one record per key and partition at a time,
//     so a per-key actor's mailbox holds one live request (plus attempts
//     that timed out): the default unbounded mailbox stays short; keep it.
//     With WithTarget up to WithMaxConcurrency requests queue in the one
//     mailbox.
//   - Stop discards the messages still queued in the mailbox. The bridge
//     passivates only actors with nothing unanswered, and with a poison
//     pill; Close uses poison pills while its context lasts. When an actor
//     is stopped by someone else (its supervisor, a Stop call), the
//     requests it dropped fail at once with ErrActorStopped instead of
//     waiting for their deadline.
//   - Each mailbox activation runs on a new goroutine, and protoactor logs
//     dead letters (Config.DeadLetterRequestLogging, throttled): requests
//     to dead actors, and replies that reach a closed bridge, show up there.
//
// # Cost
//
// bench/protoactor (a module of the repository) runs the same records
// through an orderly engine with a plain no-op handler and through the
// bridge with no-op actors, in one process: 100,000 records, 1,000 keys, 4
// partitions, concurrency 100, the median of 3 runs per mode. Three
// invocations on a 2-core machine shared with other test runs gave:
//
//	mode                       ns/record      allocs/record  overhead/record  records/s ÷ plain's
//	plain orderly handler      1,590–3,370    2.4
//	bridge, an actor per key   5,950–10,910   12.4           4.3–7.5 µs       0.24–0.31
//	bridge, one target actor   4,670–5,900    12.0           2.5–3.3 µs       0.34–0.57
//
// The bridge's own part is small (a registration under one lock, one
// allocation for the request and its envelope, a timer when the context has
// no deadline); most of the rest is protoactor delivering two messages per
// record. In a CPU profile of the per-key run the largest single item is
// protoactor resolving the PID of each message it sends (PID.ref: a
// registry lookup and an allocation to cache the result, 18 % of the
// samples), much of it growing the stack of the fresh goroutine protoactor
// starts for each mailbox run (runtime.copystack, 11 %). One target actor is cheaper per record than an actor per key
// when there is no work, because its mailbox stays busy, but it handles one
// record at a time: with work in the actors the per-key bridge keeps pace
// and the single actor does not. With -latency 1ms (each actor, or the
// plain handler, sleeps 1 ms; 20,000 records) the bridge with an actor per
// key kept 0.84 of the plain handler's throughput (19.4 against 16.2 µs per
// record) and one target actor 0.012 (25.7 s against 0.31 s).
package protoactorbridge
