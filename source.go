package orderly

import "context"

// NoOffset is Position.Offset when the group has no committed offset for a
// partition: the adapter starts where its configuration says (Kafka's
// auto.offset.reset) and the engine takes the first record's offset as its
// starting point.
const NoOffset int64 = -1

// Position is a committed position: the next offset to read and the commit
// metadata stored with it.
type Position struct {
	Offset   int64
	Metadata string
}

// Source is a consumer group member: it joins the group and hands the
// engine one Claim per partition assigned to it. A Kafka consumer group maps
// onto it directly (see adapters/orderlysarama); adapters/memory is the embedded
// one.
type Source interface {
	// Consume joins the group and blocks until ctx is done or a fatal error
	// occurs. For every partition assigned to this member it calls serve in a
	// goroutine of its own; serve returns once the engine is finished with
	// the claim (drained and committed after a revoke). Consume returns only
	// after every serve call it made has returned. Errors that the source can
	// recover from (a broker unreachable for a while, a rebalance) are
	// retried inside Consume, not returned.
	//
	// When ctx is done the source revokes every claim it has granted, as a
	// rebalance would, and still accepts their final commits before it
	// leaves the group. Consume is called at most once per Source value.
	Consume(ctx context.Context, serve func(Claim)) error
}

// Claim is one partition assigned to one member for one generation.
//
// Every method is safe for concurrent use. Only Commit may block.
type Claim interface {
	// Topic and Partition name the claimed partition.
	Topic() string
	Partition() int32

	// Start is the committed position when the claim was granted: the first
	// record delivered has an offset ≥ Start().Offset unless Offset is
	// NoOffset.
	Start() Position

	// Records delivers the partition's records in batches, in offset
	// order: every batch holds at least one record, its records' offsets
	// increase, and each batch starts above the last offset of the batch
	// before it. A batch is whatever the client had at hand (Kafka clients
	// fetch in batches anyway); the engine handles any split, down to one
	// record per batch. Once sent, a batch belongs to the engine: the
	// adapter must not modify or reuse the slice or the records in it. The
	// channel is closed when the claim is revoked, possibly after Revoked
	// is closed.
	Records() <-chan []*Record

	// Revoked is closed when the claim is revoked: the engine stops reading
	// Records, drains what it holds, commits and returns from serve.
	Revoked() <-chan struct{}

	// Pause asks the source to stop fetching this partition; records already
	// fetched may still arrive on Records. Resume undoes it. Both are
	// idempotent and never block.
	Pause()
	Resume()

	// Commit stores next (the next offset to read) and metadata as the
	// group's position for this partition, synchronously. It may be called
	// after Revoked is closed and until serve returns. A claim whose member
	// was fenced out of the group returns an error and stores nothing.
	Commit(ctx context.Context, next int64, metadata string) error
}

// EndOffsetter is implemented by claims that know where their partition
// ends: the offset the next record written will get (Kafka's high water
// mark). Stats reports consumer lag from it. EndOffset must not block; -1
// means unknown.
type EndOffsetter interface {
	EndOffset() int64
}

// GroupNamer is implemented by sources that know their consumer group's
// name; the engine passes it to hooks.
type GroupNamer interface {
	GroupName() string
}

// ClaimCommit is one claim's position to store, for BatchCommitter.
type ClaimCommit struct {
	Claim    Claim
	Next     int64 // the next offset to read
	Metadata string
}

// BatchCommitter is implemented by sources that can store the positions of
// several of their claims at once (Kafka's OffsetCommit request carries
// any number of partitions). The engine then commits every partition that
// moved since the last tick with one CommitBatch call instead of one
// Claim.Commit per partition; revokes and shutdown still commit each
// claim with Claim.Commit.
//
// CommitBatch returns one error per commit, in order (nil: stored). Each
// has the meaning Claim.Commit gives it for that claim: a claim that has
// ended or whose member was fenced stores nothing and gets an error. The
// claims are ones this source granted and has not ended; CommitBatch may
// block until ctx is done and is safe for concurrent use.
type BatchCommitter interface {
	CommitBatch(ctx context.Context, commits []ClaimCommit) []error
}
