// Package sarama is the Kafka adapter of orderly over github.com/IBM/sarama:
// NewSource makes an orderly.Source that is one member of a Kafka consumer
// group, and Producer (with NewProducerMessage and ProducerHeaders) sends
// records with headers.
//
//	src, err := sarama.NewSource(brokers, "orders-service", []string{"orders"}, cfg)
//	...
//	eng, err := orderly.New(src, handler)
//	...
//	err = eng.Run(ctx)
//
// # Claims
//
// Each sarama ConsumeClaim becomes one orderly.Claim, served synchronously:
// ConsumeClaim calls the engine's serve and returns only after the engine
// has drained the claim and made its final commit. Every rebalance strategy
// works, eager (range, roundrobin, sticky) and cooperative
// (cooperative-sticky): the adapter tracks claims, not sessions, so with a
// cooperative strategy claims end one by one while the session lives on.
//
//   - Start is the committed offset sarama starts fetching at
//     (ConsumerGroupClaim.InitialOffset) and the metadata committed with
//     it, read with an OffsetFetch when the claim starts. With no committed
//     offset it is orderly.NoOffset and sarama starts at
//     Consumer.Offsets.Initial. If the fetch fails, or finds another offset
//     (another client committed meanwhile), the metadata is left out: the
//     engine then handles again the offsets it would have skipped, which
//     at-least-once allows.
//   - Records carries the claim's messages as *orderly.Record, converted by
//     one goroutine per claim that reuses the message's key, value and
//     header value slices (one allocation for the record and, with
//     headers, two for the header slice and keys). It is closed when the
//     claim ends.
//   - Revoked is closed when the session ends (an eager rebalance,
//     shutdown, a lost session) or when sarama releases the claim (a
//     cooperative revoke, or a partition consumer that gave up).
//   - Pause and Resume call ConsumerGroup.Pause and Resume for the
//     partition; they are idempotent. A pause still in force when the
//     claim ends is lifted, since sarama would otherwise start the
//     partition's next claim paused.
//   - Commit sends one OffsetCommit request for the partition to the group
//     coordinator, as the session's member id and generation, and returns
//     the coordinator's answer for it: nil means stored. It does not go
//     through session.MarkOffset and session.Commit, because session.Commit
//     reports no error (failures reach the group's Errors channel later,
//     or are dropped when it is full), MarkOffset ignores offsets not
//     above the last mark (dropping metadata-only updates), and orderly's
//     Claim.Commit must be synchronous. Retriable errors (coordinator
//     moving or loading, a cooperative rebalance completing) are retried
//     Consumer.Offsets.Retry.Max times, Metadata.Retry.Backoff apart. An
//     error wrapping ErrFenced means the coordinator no longer counts this
//     member in the generation; ErrClaimEnded means serve already returned.
//   - ReadFrom (orderly.Rereader) opens a stream of the partition from any
//     offset: a sarama partition consumer outside the group, made by a
//     consumer of its own from the Source's client (its connections are
//     shared), not paused with the claim. The engine re-reads there for
//     keys it spilled. Its Next returns what sarama fetched, up to 64
//     messages; it returns orderly.ErrStreamClosed after Close or the
//     claim's revoke, and sarama's errors (sarama.ErrOffsetOutOfRange for
//     an offset the log no longer has, from ReadFrom itself). Streams left
//     open when the claim ends are closed, and Consume waits for them.
//
// A revoked ConsumeClaim must return within
// Consumer.Group.Rebalance.Timeout, or sarama ends the session (and Kafka
// may expel the member): keep the engine's revoke timeout
// (orderly.WithRevokeTimeout) plus a final commit below it, and the drain
// timeout too for shutdown.
//
// # Errors and retries
//
// Consume creates the client, joins the group and keeps consuming until
// its context is done; then it leaves the group and returns nil. A client
// that cannot reach any broker, and a group session that fails
// (coordinator unreachable or moving, a rebalance that failed), are logged
// and retried after a backoff that grows from 100ms to 10s
// (WithRetryBackoff) and resets after a good session. Everything the group
// reports on its Errors channel is logged through the logger (WithLogger).
// Consume returns an error only for a configuration sarama rejects at
// runtime.
//
// # Enforced configuration
//
// NewSource copies the *sarama.Config it is given (nil means
// DefaultConfig) and never modifies the original. On the copy it sets:
//
//   - Consumer.Offsets.AutoCommit.Enable = false: only the engine knows
//     which offsets are done; sarama never commits on its own.
//   - Consumer.Return.Errors = true: errors are drained and logged rather
//     than printed by sarama's global logger.
//
// It rejects, with an error wrapping ErrUnsafeConfig:
//
//   - Version older than MinVersion (Kafka 0.11): sarama fetches and
//     produces without record headers there, silently dropping trace
//     context and every other header.
//
// and, with an error wrapping ErrInvalidConfig, whatever sarama's
// Config.Validate rejects: among others an empty or nil-holding
// Consumer.Group.Rebalance.GroupStrategies, strategies without a common
// rebalance protocol, a cooperative strategy before Kafka 2.4, and a
// Consumer.Offsets.Initial other than OffsetOldest or OffsetNewest.
// Everything else passes through untouched, TLS and SASL included.
//
// # Memory
//
// The engine bounds the records it holds; on top of that, per assigned
// partition, the adapter and sarama may hold what they had fetched when
// the engine paused the partition: up to Consumer.ChannelBufferSize
// messages in sarama's channel, 64 in the claim's Records channel plus the
// one being converted, and one fetch response (up to
// Consumer.Fetch.Default bytes, more for a single larger batch) that was
// in flight or being handed over when Pause was called. A re-read in
// progress (for the engine's spilled keys; at most one per partition) holds
// as much again: Consumer.ChannelBufferSize messages and one fetch
// response.
//
// # Dead letters
//
// NewDeadLetterSink returns an orderly.DeadLetterSink that writes failed
// records to a dead-letter topic (default <topic>.dlq) with their key,
// value and headers, plus headers naming the error, the attempts, the
// original topic, partition and offset, the first failure's time and the
// group.
package orderlysarama
