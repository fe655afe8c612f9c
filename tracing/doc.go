// Package tracing traces and measures an orderly engine with OpenTelemetry.
// It implements the engine's hook interfaces and plugs in with one option:
//
//	shutdown, err := otlpsetup.FromEnv(ctx, "orders") // optional, tracing/otlpsetup: OTLP export from OTEL_* variables
//	...
//	defer shutdown(context.Background())
//	hooks := tracing.New() // global providers; or WithTracerProvider, WithMeterProvider
//	eng, err := orderly.New(src, handler, orderly.WithHooks(hooks))
//	reg, err := hooks.RegisterStats(eng.Stats) // optional: watermark, lag and held gauges
//
// # Spans
//
// Each record gets a CONSUMER span "process <topic>" whose parent is the W3C
// trace context found in the record's headers, so the producer's span and
// the consumer's are one trace. A record without one starts a new trace
// (never a child of a span in the context Run was given). Attributes:
// messaging.system=kafka, messaging.operation.type=process,
// messaging.operation.name=process, messaging.destination.name,
// messaging.destination.partition.id, messaging.consumer.group.name (when
// the source knows its group), messaging.kafka.offset,
// messaging.kafka.message.key (when the key is UTF-8),
// messaging.message.body.size, messaging.kafka.message.tombstone, and at
// the end orderly.attempt (attempts made) and orderly.outcome (handled,
// dead_lettered or failed).
//
// Timing: the span starts when the record was dispatched to its key actor,
// not when its handler started, so the mailbox wait is part of it; an
// "enqueue" event marks the dispatch and a "dequeue" event the first
// handler call, with orderly.mailbox.wait_ms. The span is created at the
// first handler call, timestamped back to the dispatch, so a record that
// never started (revoked while queued) has no span. The span ends when the
// record is done: when an attempt succeeds, when its dead-letter write
// succeeds, or, for a record that failed and was neither retried nor
// dead-lettered, when a commit passes it (the span's end time is still that
// of its last attempt; only its export waits for the commit).
//
// The handler's context carries the span: spans the handler starts are its
// children, and Inject writes its context into the records the handler
// produces (RecordCarrier for an orderly.Record; orderlysarama.ProducerHeaders
// and orderlykgo.RecordHeaders for the clients' messages), so the trace runs on through
// every event a message causes: the transaction id, done with W3C.
//
// Retries: a failed attempt adds an exception event (with orderly.attempt)
// to the record's span; an announced retry adds a "retry" event with the
// attempt, orderly.retry.delay_ms and the error; each retry attempt runs
// in an INTERNAL child span "retry <topic>" (status Error if it failed),
// which its handler context carries. The first attempt runs directly in
// the process span, so a record that succeeds at once costs one span.
//
// Dead letters: the write is a PRODUCER span "send <dead-letter topic>"
// (WithDeadLetterTopic; default "<topic>.dlq"), a child of the record's
// span. Its context is what OnDeadLetterStart returns: the sink writes it
// into the dead-letter record with Inject, so a consumer of the
// dead-letter topic continues the trace.
//
// Commits: each commit attempt is a CLIENT span "commit <topic>", the root
// of its own trace, with orderly.commit.from, orderly.commit.to,
// orderly.commit.records and orderly.commit.final. WithCommitSpans(false)
// leaves them out.
//
// # Metrics
//
//	messaging.client.consumed.messages  counter: records dispatched to the handler side
//	messaging.process.duration          histogram (s): each handler call; error.type on failure
//	orderly.records.handled             counter: handler calls that returned nil
//	orderly.records.failed              counter: handler calls that failed, by error.type
//	orderly.records.retried             counter: retries scheduled
//	orderly.records.dead_lettered       counter: dead-letter writes; error.type when one failed
//	orderly.mailbox.wait                histogram (s): dispatch to first handler call
//	orderly.handler.in_flight           up/down counter: handler calls running, per partition
//	orderly.partitions.paused           up/down counter: partitions paused now
//	orderly.partition.pauses            counter: pauses, by orderly.pause.reason
//	orderly.commits                     counter: commit attempts; error.type when one failed
//	orderly.commit.records              counter: records committed
//	orderly.commit.duration             histogram (s): commit attempts
//	orderly.partition.committed         gauge: last committed offset per partition
//
// Record metrics carry messaging.system, messaging.operation.name,
// messaging.destination.name, messaging.destination.partition.id and
// messaging.consumer.group.name; the engine-wide figure is their sum.
// RegisterStats adds gauges read from Engine.Stats.
//
// # Sampling and cost
//
// Without WithRecordSampling, the TracerProvider's sampler decides, when a
// record's first attempt starts its span. Attributes and events are set only on recording spans
// (so samplers see the span's name, kind and parent, not its attributes),
// and an unsampled record keeps no state and allocates nothing of the
// hooks' own: what it costs is the provider's Start (with the SDK and a
// never-sampler, two allocations and a few hundred nanoseconds; the
// OpenTelemetry API has no cheaper way to ask the sampler), plus a header
// extraction when the record has headers. Span start options are shared by
// the records dispatched together, metric attribute sets are built once per
// partition, a metric is measured only when its instrument is enabled, and
// the clock is read only for what records a time: Hooks implements
// orderly.HookStartTime, so the engine reads it before an attempt only
// when a duration histogram is enabled, and a sampled span reads it itself.
//
// WithRecordSampling(ratio) decides before any span is started: a record
// whose headers carry a trace context follows its producer's decision,
// and ratio of the others are traced (by a hash of topic, partition and
// offset). A record it leaves out costs no span start, no context and no
// allocation; its handler's context carries the producer's unsampled
// span context, or none. At high record rates this is the cheap way to
// trace a share of the records (bench/README.md, tracing-overhead).
//
// # Propagation
//
// Propagator (W3C Trace Context and Baggage) is the default for reading
// record headers, whatever the global propagator is; WithPropagator
// changes it. Inject and Extract always use Propagator.
package tracing
