// Package orderly is an embedded, actor-based consumption engine for
// partitioned message streams, Kafka first.
//
// A service gives it a Source (a consumer group member: the Kafka adapters
// adapters/orderlysarama and adapters/orderlykgo, or adapters/memory in
// process), a Handler and an Ordering, and gets records of one key handled
// strictly in offset order while different keys run in parallel, offsets
// committed only when everything before them is done, bounded memory, and
// failure handling that never stops a partition.
//
//	eng, err := orderly.New(source, orderly.HandlerFunc(handle),
//		orderly.WithOrdering(orderly.ByKey()), orderly.WithMaxConcurrency(100))
//	if err != nil { ... } // errors wrapping ErrInvalidOption
//	err = eng.Run(ctx)    // blocks; cancel ctx to drain, commit and return
//
// # Guarantees
//
// What the engine promises:
//
//   - Per-key order. Within a partition, the records of one key (ByKey,
//     ByKeyFunc, ByKeys, Serial) reach the handler in offset order, one at
//     a time, retries included. A later record of a key never starts
//     before an earlier one has finished (handled, or dealt with by the
//     failure chain).
//   - At-least-once. An offset is committed only when it and every lower
//     offset of its partition are done. A record is handled again only
//     after a crash, a fenced member or a revoke that cut its handler off
//     (and then only records not committed, bounded by WithMaxUncommitted);
//     a graceful rebalance or shutdown commits what is done first.
//     WithAtMostOnce turns this around: commit before handling, never twice.
//   - Commits never go backwards, and a completion from a claim that has
//     ended is never committed.
//   - Bounded memory: the engine holds at most WithEngineBuffer records and
//     bytes, plus what each claim's client had fetched before a pause (and,
//     while a partition re-reads for its spilled keys, what the re-read's
//     stream has fetched).
//   - Nothing is dropped silently: a failing record goes through the
//     failure chain (below) and is counted and reported by hooks; a record
//     is given up only to its claim's next owner.
//   - User code cannot wedge the engine: handlers, key functions,
//     middleware, fallbacks, sinks and hooks that panic are recovered; no
//     user code and no source call runs under an engine lock, so a hook may
//     call any Engine method.
//
// What it does not promise: exactly-once processing (a record may be
// handled twice after a crash, so make effects idempotent); order across
// partitions (Kafka has none); order between different keys; a bound on
// how long a handler that ignores its context keeps running after a
// revoke.
//
// # The flow of a record
//
// Each claimed partition has a dispatcher (the goroutine the source started
// for the claim). It reads the claim's records in batches, takes a batch's
// credits at once, and under one lock registers the batch's offsets and
// queues each record behind its keys. A key's queue is its actor: the
// record runs once it heads the queue of every key it has, at most
// WithMaxConcurrency handler calls at once across the engine, on worker
// goroutines that stay warm between bursts; a worker runs a key's next
// ready record at once, up to a few in a row. When a record is done
// (handled, or dealt with by the failure chain) its offset is marked done
// and its credits come back, under the same lock as its key moves on.
//
// # Commits
//
// A single committer keeps, per partition, the watermark: the lowest
// unfinished offset, which is what is committed. Offsets finished above it
// are written into the commit metadata (versioned, at most 4096 bytes;
// when they do not all fit, the lowest are kept and the rest are handled
// again after a restart) and skipped by the next owner. Commits happen
// every WithCommitInterval (one request for every partition that moved,
// when the source is a BatchCommitter) and every WithCommitEvery
// completions, and synchronously when a partition is revoked and when Run
// returns. Each commit has a deadline (WithCommitTimeout). Metadata that
// orderly did not write, or that is corrupt or stale, is logged and
// ignored.
//
// # Backpressure and the memory bound
//
// Records hold credits from dispatch to completion at three levels: their
// key (WithKeyBuffer), their partition (WithPartitionBuffer) and the engine
// (WithEngineBuffer), counted in records and in bytes (Record.Size). A
// partition out of credit is paused through its claim (see PauseReason)
// and resumed when every credit that paused it is back at its low water
// mark (WithLowWaterMark). Each partition's uncommitted window, the records
// between the watermark and the newest dispatched, is bounded too
// (WithMaxUncommitted). The engine never holds more than the engine buffer;
// on top of it, each assigned partition may have what the source had
// fetched before the pause waiting in its claim (the memory adapter's fetch
// buffer; for the Kafka adapters, what their client buffers plus one
// batch). A full key delays only what must wait for it: records of other
// keys that were already fetched keep running.
//
// # Hot and stuck keys
//
// A key over its buffer (WithKeyBuffer) never stalls the other keys of its
// partition when the claim can read its partition again (a Rereader: the
// memory and Kafka adapters). It spills: the dispatcher drops its later
// records from memory, keeping only their place in the uncommitted window,
// and goes on with the other keys; the partition is not paused for it.
// Under ByKeys a dropped record spills its other keys with it, since their
// later records must wait behind it. Once a spilled key has drained to its
// low water mark, a re-reader, one per partition and shared by its spilled
// keys, reads the partition again from the lowest offset they wait for and
// hands them their dropped records, in offset order, none twice, skipping
// everything else; when it reaches the dispatcher's position the keys are
// back in memory. A key that fills up again while it is read back waits
// for the re-reader, unless another spilled key runs dry meanwhile: then
// it spills again from where it was and a later re-read brings the rest.
// The log is the overflow store: a spilled key costs the records read
// twice (Stats.RecordsReread), not memory. A spilled key holds the
// watermark back while the others run ahead, up to WithMaxUncommitted
// (1,000,000 by default; the offset tracker keeps two bits per offset). A
// claim that cannot re-read, at-most-once and Serial keep pausing the
// partition for a key over its buffer instead (see KeyOverflow). Key
// functions must return the same keys for a record each time.
//
// # Revoke and shutdown
//
// When a claim is revoked (or Run's context is cancelled) its dispatcher
// stops reading, records not yet started are left for the next owner,
// running handlers get WithRevokeTimeout (WithDrainTimeout on shutdown)
// after which their contexts are cancelled and their records are not
// committed, then the final position is committed.
//
// # Failures
//
// A handler error or panic (recovered into a *PanicError) never stops the
// engine or the partition. A failing record meets the failure chain, in
// this order:
//
//  1. Before each attempt, WithCircuitBreaker (while it is open no handler
//     runs and every claim is paused) and WithRateLimit and
//     WithPartitionRateLimit (the record waits for a token). A waiting
//     record holds no goroutine and no concurrency slot.
//  2. The attempt runs under WithAttemptTimeout's deadline.
//  3. A failed attempt is retried per WithRetry, with backoff, inside the
//     record's key actor: later records of the key wait, other keys go on.
//     Permanent errors (and a Pipeline's decode errors) are not retried;
//     RetryAfter sets the delay.
//  4. After the last attempt, WithFallback may declare the record done.
//  5. Otherwise the record goes to the WithDeadLetter sink, whose write is
//     retried until it succeeds; WithKeyParking then sends the key's later
//     records after it without handling them. Without a sink the failure
//     is logged with the record's topic, partition, offset, key and
//     attempt.
//
// In every case the record then counts as done and the watermark moves past
// it: a failing record never stops the partition and is never re-read in a
// loop. Stats counts attempts and records separately; hooks report each
// step.
//
// # Priorities
//
// WithPriorities gives records priority levels (0 the highest), from their
// topic (PriorityByTopic), a header (PriorityByHeader) or a function
// (PriorityFunc). Ready records then start highest level first, each level
// within its work-in-progress limit (the most of its calls in flight at
// once), its reserved slots (which no other level takes) and the minimum
// shares of the lower levels, which bound how long a flood of higher work
// can keep them waiting (PriorityLevel.StarvationBound). Key order still
// wins: a record never overtakes an earlier one of its key; instead the
// earlier one runs at the higher level (priority inheritance). Each level
// holds credit from its own slice of the engine buffer, so a flood of low
// work never takes the credit high work needs. A record whose level cannot
// be determined runs at the lowest level, with a warning. Little's law
// sizes the limits: a level that must carry λ records a second with
// handlers of mean latency W needs a WIP limit of at least λ × W.
//
// # Observability
//
// Stats reports in-flight counts, held records, paused partitions with
// their reasons and per-partition watermarks, spilled keys, re-reads in
// progress and records read twice, and per priority level its calls in
// flight, ready records and held credit (Stats.Levels). Inspect answers
// "why has it stopped?": for each partition, the record holding its
// watermark back and what it is doing or waiting for, the keys holding the
// most, and every pause reason; package inspect serves it as a live page
// and JSON. Hooks (WithHooks) report dispatch, attempts, retries, dead
// letters, pauses, commits, spills and re-reads, with each record's
// priority level (RecordInfo.Reread marks a record read a second time);
// package tracing implements them with OpenTelemetry.
package orderly
