package memory

import "errors"

var (
	// ErrUnknownTopic is returned by the Log's methods when the topic was
	// never created with CreateTopic.
	ErrUnknownTopic = errors.New("memory: unknown topic")

	// ErrTopicExists is returned by CreateTopic when the topic already
	// exists. The existing topic is left as it was.
	ErrTopicExists = errors.New("memory: topic already exists")

	// ErrInvalidTopic is returned by CreateTopic for an empty topic name or
	// a partition count outside [1, math.MaxInt32].
	ErrInvalidTopic = errors.New("memory: invalid topic")

	// ErrUnknownPartition is returned by ProduceTo, ProduceRecord and
	// EndOffset for a partition outside [0, partitions).
	ErrUnknownPartition = errors.New("memory: unknown partition")

	// ErrFenced is returned by Claim.Commit when the claim's member crashed
	// (see Member.Crash): the member is no longer part of the group and its
	// commit is not stored.
	ErrFenced = errors.New("memory: member fenced out of the group")

	// ErrClaimEnded is returned by Claim.Commit after the serve call for the
	// claim returned: the partition may already belong to another member,
	// so the commit is not stored.
	ErrClaimEnded = errors.New("memory: claim ended")

	// ErrCrashed is returned by Member.Consume when the member crashed
	// (see Member.Crash), once every serve call it made has returned.
	ErrCrashed = errors.New("memory: member crashed")

	// ErrAlreadyConsumed is returned by Member.Consume when it was called
	// before on the same Member: a member joins its group at most once.
	// Make a new Member to join again.
	ErrAlreadyConsumed = errors.New("memory: Consume already called on this member")
)
