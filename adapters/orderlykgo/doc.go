// Package orderlykgo is the Kafka adapter of orderly over franz-go's kgo
// client (github.com/twmb/franz-go/pkg/kgo): NewSource makes an
// orderly.Source that is one member of a Kafka consumer group, Producer
// (with NewRecord and RecordHeaders) sends records with headers, and
// NewDeadLetterSink writes failed records to a dead-letter topic. It is
// named so as not to clash with kgo itself, as franz-go's own plugins are.
//
//	src, err := orderlykgo.NewSource([]kgo.Opt{
//		kgo.SeedBrokers("localhost:9092"),
//		kgo.ConsumerGroup("orders-service"),
//		kgo.ConsumeTopics("orders"),
//	})
//	...
//	eng, err := orderly.New(src, handler)
//	...
//	err = eng.Run(ctx)
//
// The engine, its options and its guarantees are the same as over
// adapters/orderlysarama; both adapters run the same conformance suite
// (adapters/adaptertest), and members of both clients can share one group
// when their balancers agree (both default to cooperative-sticky).
//
// # Claims
//
// Consume runs one kgo client and a poll loop that hands each partition's
// fetched records to that partition's claim.
//
//   - A claim is made when kgo has fetched the partition's committed offset
//     (kgo.OnOffsetsFetched), just before kgo starts fetching records
//     there. Start is that committed offset and the metadata stored with
//     it, read from the same OffsetFetch response kgo starts from, or
//     orderly.NoOffset when the group has none (kgo then starts where
//     kgo.ConsumeStartOffset says: the start of the partition by default).
//   - Records carries the partition's records as *orderly.Record, in
//     batches of up to 512 records of one fetch, converted on a goroutine
//     per claim that reuses kgo's key, value and header value slices
//     (three allocations per batch: the records, the pointers to them and
//     their headers). It is closed when the claim is revoked.
//   - Revoked is closed when kgo revokes the partition
//     (kgo.OnPartitionsRevoked: a rebalance takes it away, or the member
//     leaves) or loses it (kgo.OnPartitionsLost).
//   - Pause and Resume call kgo's PauseFetchPartitions and
//     ResumeFetchPartitions for the partition; they are idempotent. kgo
//     drops what it had buffered for a paused partition and fetches it
//     again on Resume. A pause still in force when the claim ends is
//     lifted, since kgo keeps partitions paused across assignments.
//     Source.Paused reports the engine's pause of a partition.
//   - Commit stores the next offset and the metadata through kgo's
//     CommitOffsetsSync, with the metadata set on the request through
//     kgo.PreCommitFnContext (kgo stores its member id there otherwise).
//     kgo sends it as the member's current id and generation, and holds
//     it back while the member joins and syncs, so that it is not refused
//     with REBALANCE_IN_PROGRESS. Commit returns the coordinator's answer
//     for the partition: nil means stored. Rebalance and coordinator
//     errors are retried (up to 8 attempts, 50ms doubling to 1s apart);
//     an error wrapping ErrFenced means the member no longer owns the
//     partition; ErrClaimEnded means serve already returned. The commits
//     of one claim are sent one at a time, in the order they were made.
//   - Source.CommitBatch (orderly.BatchCommitter) stores the positions of
//     several claims with one OffsetCommit request.
//   - EndOffset (orderly.EndOffsetter) is the high watermark of the last
//     fetch that returned records, so engine stats report lag.
//   - ReadFrom (orderly.Rereader) opens a stream of the partition from any
//     offset: a kgo client of its own with the Source's options but no
//     group, consuming the partition directly (kgo.ConsumePartitions), not
//     paused with the claim. The engine re-reads there for keys it
//     spilled. An offset the log no longer has starts the stream at the
//     partition's first record. Next returns up to 512 records; it returns
//     orderly.ErrStreamClosed after Close or the claim's revoke, and the
//     client's fetch errors. Streams left open when the claim ends are
//     closed, and Consume waits for their clients to close.
//
// # Rebalances
//
// Every kgo balancer works: cooperative-sticky (kgo's default and the
// adapter's; a rebalance revokes only the partitions that move) and the
// eager ones (range, round-robin, sticky).
//
// A revoked claim's serve runs inside kgo's OnPartitionsRevoked: the
// callback revokes the claims and returns only once the engine has
// drained them and made its final commits. kgo rejoins the group (or
// leaves it) only after the callback returns, so those commits land, in
// the member's current generation, before the group can hand the
// partitions to another member. kgo keeps heartbeating meanwhile. The
// adapter sets kgo.BlockRebalanceOnPoll: no revoke runs between a poll and
// the hand-over of its records to the claims, and polls wait while a
// revoke runs (the other claims go on with the records they hold).
//
// Kafka expels a member that takes longer than the rebalance timeout to
// rejoin: keep the engine's revoke timeout (orderly.WithRevokeTimeout)
// plus a final commit below kgo.RebalanceTimeout (60s by default). On
// shutdown kgo stops heartbeating while the engine drains: keep the
// engine's drain timeout plus a final commit below kgo.SessionTimeout
// (45s by default).
//
// A lost partition (kgo.OnPartitionsLost: the member's session expired,
// or a fatal group error) is fenced: its claim's commits fail with
// ErrFenced from then on without being sent, the claim is revoked, and the
// callback returns once the engine has let go of it. Whatever the member
// had completed but not committed is handled again by the partition's
// next owner, which at-least-once allows.
//
// # Errors and retries
//
// Consume creates the client, joins the group and keeps consuming until
// its context is done; then it revokes every claim (waiting for the final
// commits), leaves the group, closes the client and returns nil. kgo
// recovers on its own from brokers that cannot be reached, coordinators
// that move and failed group sessions, retrying after
// kgo.RetryBackoffFn's backoff (250ms doubling to 5s, with jitter, by
// default) and asking for metadata again no sooner than
// kgo.MetadataMinAge (5s by default); the errors polls report are logged
// as warnings, and kgo's own log lines go to the adapter's logger
// (WithLogger) unless the kgo options carry a kgo.WithLogger. Consume
// returns an error only for a nil serve or a second call.
//
// # Enforced configuration
//
// NewSource takes kgo client options, which must include
// kgo.ConsumerGroup and kgo.ConsumeTopics (kgo.SeedBrokers defaults to
// localhost:9092, as in kgo), copies them and never modifies the
// caller's. It reads them through a kgo client that it builds with a
// context already cancelled and closes at once: nothing connects before
// Consume, but kgo hooks in the options that implement kgo.HookNewClient
// or kgo.HookClientClosed see that client come and go.
//
// Consume adds, after the caller's options:
//
//   - kgo.DisableAutoCommit: only the engine knows which offsets are done.
//   - kgo.BlockRebalanceOnPoll, kgo.OnOffsetsFetched,
//     kgo.OnPartitionsRevoked and kgo.OnPartitionsLost: the adapter's
//     claim lifecycle (see above).
//   - kgo.WithLogger, unless the options carry one.
//
// NewSource rejects, with an error wrapping ErrInvalidConfig: a consumer
// group or topics missing; kgo.ConsumePartitions (kgo refuses it with a
// group); kgo.ShareGroup; kgo.ServerSideBalancer (KIP-848 groups are not
// supported yet); and whatever kgo's own validation refuses. With an error
// wrapping ErrUnsafeConfig (which wraps ErrInvalidConfig):
//
//   - auto-commit asked for: kgo.AutoCommitMarks, kgo.GreedyAutoCommit,
//     kgo.AutoCommitCallback, or kgo.AutoCommitInterval with any value but
//     kgo's default 5s (which cannot be told from none, and does nothing
//     with auto-commit off);
//   - kgo.OnPartitionsAssigned, kgo.OnPartitionsRevoked,
//     kgo.OnPartitionsLost or kgo.OnOffsetsFetched of the caller's: the
//     adapter owns the group callbacks;
//   - kgo.AdjustFetchOffsetsFn: a claim would not start at its Start;
//   - kgo.TransactionalID: orderly's commits are not part of a
//     transaction, so exactly-once consume-transform-produce cannot be
//     honoured;
//   - kgo.KeepControlRecords: transaction markers would reach handlers as
//     records;
//   - kgo.MaxVersions capping Fetch below v4 (Kafka 0.11): kgo would fetch
//     without record headers, silently dropping trace context.
//
// kgo.FetchIsolationLevel(kgo.ReadCommitted()) is honoured: handlers see
// the records of committed transactions only (the offsets of aborted
// records and of transaction markers are gaps, which the engine allows),
// and EndOffset is the last stable offset rather than the high watermark.
// When a transaction marker is a partition's last offset, the committed
// offset stays one below the end (the marker is never delivered), so lag
// shows 1 there. Everything else passes through untouched: TLS, SASL,
// dialers, fetch sizes, balancers, static membership (kgo.InstanceID),
// hooks.
//
// # Memory
//
// The engine bounds the records it holds; on top of that, per assigned
// partition, the adapter holds the records fetched for the claim but not
// yet handed over: fetching of the partition pauses once it holds the
// claim buffer (WithClaimBuffer, 4096 records by default) and resumes
// when half of it is gone, so it holds at most the claim buffer plus one
// fetch of the partition (kgo.FetchMaxPartitionBytes, 1 MiB by default,
// or one record batch if larger), and up to two batches of 512 on their
// way to the engine. The engine stops reading Records when it runs out of
// credit, and pauses the partition, so it is usually far less. kgo itself
// buffers at most one fetch response per broker (kgo.FetchMaxBytes, 50 MiB
// by default) until the poll loop takes it. A re-read in progress (for the
// engine's spilled keys; at most one per partition) holds what its own
// client fetched and the engine has not taken yet: one fetch of the
// partition.
//
// # Dead letters and tracing
//
// NewDeadLetterSink returns an orderly.DeadLetterSink that writes failed
// records to a dead-letter topic (default <topic>.dlq) with their key,
// value and headers, plus headers naming the error, the attempts, the
// original topic, partition and offset, the first failure's time and the
// group: the same headers, with the same names, as
// adapters/orderlysarama's sink.
//
// RecordHeaders is a propagation.TextMapCarrier over a kgo record's
// headers (the adapter itself does not import OpenTelemetry): package
// tracing's Inject writes W3C trace context into records through it, for
// example in a Producer's WithInject function or a sink's
// WithHeaderInjector.
//
// # Testing
//
// A member can be made to vanish as a killed process would by giving it a
// dialer of the test's through kgo.Dialer that closes its connections and
// refuses new ones: its heartbeats and commits fail, kgo reports its
// partitions lost, and the group hands them over after the session
// timeout. The package's conformance test does this.
//
// The package's tests also run the chaos scenarios shared with the sarama
// adapter (members joining, leaving, crashing, rolling deploys under every
// balancer, a broker outage); adapters/RELIABILITY.md in the repository
// says how to run them with more seeds and records the results.
package orderlykgo
