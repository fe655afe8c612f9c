// Package orderlysarama is the Kafka adapter of orderly over
// github.com/IBM/sarama: NewSource makes an orderly.Source that is one
// member of a Kafka consumer group, and Producer (with NewProducerMessage
// and ProducerHeaders) sends records with headers.
//
//	src, err := orderlysarama.NewSource(brokers, "orders-service", []string{"orders"}, cfg)
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
//   - Revoked is closed when the session ends (an eager rebalance, a lost
//     session), when sarama releases the claim (a cooperative revoke, or
//     a partition consumer that gave up), or when Consume's context ends
//     (see Shutdown).
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
//     Claim.Commit must be synchronous. A commit the coordinator rejects
//     for its generation while the session lives is sent again once the
//     session has joined the coordinator's generation (see Rebalances).
//     Other retriable errors (coordinator moving or loading, a broken
//     connection) are retried Consumer.Offsets.Retry.Max times,
//     Metadata.Retry.Backoff apart. An error wrapping ErrFenced means the
//     coordinator no longer counts this member in the group (its
//     generation is rejected and its session is over); ErrClaimEnded
//     means serve already returned.
//   - Commit honours its context at every step and returns by its
//     deadline whatever the coordinator does: sarama's requests take no
//     context (one waits for its answer up to Net.ReadTimeout), so each
//     runs on a goroutine of its own, abandoned at the deadline. An
//     abandoned request may still be stored afterwards. A claim has one
//     request in flight at a time, abandoned ones included: the next
//     Commit waits for it (within its own deadline), so the claim's
//     commits reach the coordinator in order and the committed offset
//     never goes back.
//   - Source.CommitBatch (orderly.BatchCommitter) stores the positions of
//     several claims with one OffsetCommit request per group session: the
//     engine's periodic commits of every partition that moved go out
//     together. A partition the coordinator rejects, or every partition
//     of a request that failed as a whole, is sent again through Commit's
//     path for its claim alone; each error means what that claim's Commit
//     would have returned, and a claim's commits stay in order.
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
// # Rebalances
//
// A commit is accepted from a member of the coordinator's current
// generation while the group is Stable or PreparingRebalance, answered
// REBALANCE_IN_PROGRESS while it is CompletingRebalance (between the
// JoinGroup answers and the leader's SyncGroup), and ILLEGAL_GENERATION
// for any other generation (Kafka's GroupCoordinator and kfake alike).
// The coordinator does not check which member owns the partition.
//
// With an eager strategy (range, roundrobin, sticky) a rebalance ends the
// session: the claims are revoked and their final commits sent, as
// members of the old generation, while the group is PreparingRebalance
// and waits for this member's JoinGroup, which sarama sends only after
// every ConsumeClaim has returned. The old generation is the right one.
//
// With the cooperative-sticky strategy (KIP-429) the session lives on: a
// rebalance is a JoinGroup and SyncGroup in generation N+1 that withholds
// the partitions that move; sarama moves the session to N+1 once its
// SyncGroup has returned, then revokes those partitions, waits for their
// ConsumeClaim calls, and only then joins again (N+2), where the next
// owner gets them. A revoked partition's final commit therefore carries
// generation N+1, and is sent after this member's SyncGroup of N+1 and
// before its JoinGroup of N+2: the coordinator accepts it (Stable, or
// PreparingRebalance for N+2, which cannot complete without this member),
// and the next owner starts from it. Commits of the partitions that stay
// can meet the rejoin itself: sent in generation N once every member has
// joined N+1, they get ILLEGAL_GENERATION. sarama's own offset manager
// holds its commits back during a rejoin; Commit instead waits until the
// session reaches the coordinator's generation and sends again in it.
// Such a wait lasts up to Consumer.Group.Rebalance.Retry.Backoff (when a
// SyncGroup was answered REBALANCE_IN_PROGRESS) plus a JoinGroup and a
// SyncGroup: keep the engine's drain timeout (orderly.WithDrainTimeout),
// which bounds a final commit, above that.
//
// sarama sends no heartbeat while it rejoins, including the
// Consumer.Group.Rebalance.Retry.Backoff it waits after a SyncGroup
// answered REBALANCE_IN_PROGRESS (a member joined while the group
// synced): keep that backoff well below Consumer.Group.Session.Timeout
// (sarama's defaults are 2s and 10s), or the coordinator expires the
// member in the middle of the rebalance, its claims are lost with their
// uncommitted work, and their next owners handle that work again.
//
// A revoked ConsumeClaim must return within
// Consumer.Group.Rebalance.Timeout, or sarama ends the session (and Kafka
// may expel the member): keep the engine's revoke timeout
// (orderly.WithRevokeTimeout) plus a final commit below it, and the drain
// timeout too for shutdown.
//
// # Shutdown
//
// When Consume's context ends, the Source revokes every claim it serves
// (Revoked closes; fetching is paused) while the member is still in the
// group: its heartbeats go on, and a rejoin under way completes, until
// the engine has drained and committed every claim and every serve call
// has returned. Only then does it end the group session and leave the
// group. Partitions assigned meanwhile are held, not served. Ending
// sarama's session first would lose final commits: sarama gives up a
// rejoin when its context ends (a SyncGroup answered REBALANCE_IN_PROGRESS
// is retried only while the context lives), its session keeps the
// generation from before the rejoin while the coordinator has moved on
// with this member in it, and commits in that generation get
// ILLEGAL_GENERATION; the next owner would handle those records again.
//
// Consume returns at most Consumer.Group.Session.Timeout after the last
// serve call returned: sarama's heartbeat and LeaveGroup take no context,
// so a coordinator that stopped answering would hold them up to
// Net.ReadTimeout each; the coordinator expires the member after the
// session timeout anyway, and the leave finishes in the background.
//
// # Errors and retries
//
// Consume creates the client, joins the group and keeps consuming until
// its context is done; then it hands its claims back (see Shutdown),
// leaves the group and returns nil. A client that cannot reach any
// broker, and a group session that fails (coordinator unreachable or
// moving, a rebalance that failed, a broker outage), are logged and
// retried after a backoff that grows from 100ms to 10s (WithRetryBackoff)
// and resets after a good session: the engine resumes by itself once the
// cluster is back. A group session lost on the way (heartbeats failing,
// the member expelled) is logged as a warning, its claims revoked (the
// engine's Stats then lists no partition for them) and the group joined
// again. Everything the group reports on its Errors channel is logged
// through the logger (WithLogger).
//
// Consume returns an error for what no retry fixes:
//
//   - ErrInvalidConfig: a configuration sarama rejects at runtime;
//   - ErrAuthentication: SASL authentication failed (the broker answered
//     SASL_AUTHENTICATION_FAILED, UNSUPPORTED_SASL_MECHANISM or
//     ILLEGAL_SASL_STATE), or the broker's TLS certificate is not trusted
//     (unknown authority, wrong host name, invalid certificate);
//   - ErrAuthorization: the ACLs deny the group, a topic or the cluster.
//
// sarama's error is wrapped too. A broker that closes the connection
// during authentication without answering (franz-go's kfake does this
// for a wrong password; Kafka answers SASL_AUTHENTICATION_FAILED first)
// cannot be told from one going away: that is logged and retried.
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
// Everything else passes through untouched, TLS and SASL included (sarama
// leaves the SCRAM client to its user: Net.SASL.SCRAMClientGeneratorFunc).
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
//
// # Reliability runs
//
// The package's tests run consumer groups of engines against an
// in-process cluster (franz-go's kfake) through member changes, crashes,
// a broker outage, TLS and SASL/SCRAM; adapters/RELIABILITY.md in the
// repository says how to run them with more seeds and records the results.
package orderlysarama
