// Package orderly is an embedded, actor-based consumption engine for
// partitioned message streams, Kafka first.
//
// A service gives it a Source (a consumer group member: adapters/orderlysarama
// for Kafka, adapters/memory in process), a Handler and an Ordering, and
// gets records of one key handled strictly in offset order while different
// keys run in parallel, offsets committed only when everything before them
// is done, bounded memory, and failure handling that never stops a
// partition.
//
//	eng, err := orderly.New(source, orderly.HandlerFunc(handle),
//		orderly.WithOrdering(orderly.ByKey()), orderly.WithMaxConcurrency(100))
//	if err != nil { ... } // errors wrapping ErrInvalidOption
//	err = eng.Run(ctx)    // blocks; cancel ctx to drain, commit and return
//
// # The flow of a record
//
// Each claimed partition has a dispatcher (the goroutine the source started
// for the claim). It reads the claim's records in offset order, registers
// each offset with the committer, takes the record's credits and hands it
// to the actors of its keys (package actors). A key's actor is its queue:
// the record runs once it heads the queue of every key it has, at most
// WithMaxConcurrency handler calls at once across the engine. When it is
// done (handled, or finally failed and dealt with) its completion goes to
// the committer and its credits come back.
//
// # Commits
//
// A single committer actor (package committer) keeps, per partition, the
// watermark: the lowest unfinished offset, which is what is committed.
// Offsets finished above it are written into the commit metadata
// (versioned, at most 4096 bytes; when they do not all fit, the lowest are
// kept and the rest are handled again after a restart) and skipped by the
// next owner. Commits happen every WithCommitInterval and every
// WithCommitEvery completions, and synchronously when a partition is
// revoked and when Run returns. Commits never go backwards. A completion
// that arrives after its claim ended is dropped, never committed.
// Metadata that orderly did not write, or that is corrupt or stale, is
// logged and ignored.
//
// # Backpressure and the memory bound
//
// Records hold credits from dispatch to completion at three levels: their
// key (WithKeyBuffer), their partition (WithPartitionBuffer) and the engine
// (WithEngineBuffer), counted in records and in bytes (Record.Size). A
// partition out of credit is paused through its claim and resumed when
// every credit that paused it is back at its low water mark
// (WithLowWaterMark). Each partition's uncommitted window, the records
// between the watermark and the newest dispatched, is bounded too
// (WithMaxUncommitted). The engine never holds more than the engine buffer;
// on top of it, each assigned partition may have what the source had
// fetched before the pause waiting in its claim (the memory adapter's fetch
// buffer; for sarama, Consumer.ChannelBufferSize plus one fetch response).
// A full key delays only what must wait for it: records of other keys that
// were already fetched keep running.
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
// engine. WithRetry retries inside the record's key actor with exponential
// backoff and jitter (the key waits, other keys go on, no goroutine is held
// while waiting); Permanent errors skip retries; then WithRecover,
// WithDeadLetter (with WithKeyParking) or the log; the record then counts
// as done. WithAttemptTimeout, WithCircuitBreaker and WithRateLimit cover
// slow and sick downstreams; the typed Pipeline composes decode → handle →
// interpret.
//
// # Observability
//
// Stats reports in-flight counts, held records, paused partitions with
// their reasons and per-partition watermarks. Hooks (WithHooks) report
// dispatch, attempts, retries, dead letters, pauses and commits; package
// tracing implements them with OpenTelemetry.
package orderly
