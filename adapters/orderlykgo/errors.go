package orderlykgo

import (
	"errors"
	"fmt"
)

// ErrInvalidConfig is wrapped by every error NewSource, NewProducer and
// NewDeadLetterSink return for bad arguments: a nil option, options kgo
// itself rejects, a consumer group or topics missing from the kgo options,
// and (through ErrUnsafeConfig) options that would break orderly's
// guarantees.
var ErrInvalidConfig = errors.New("orderlykgo: invalid configuration")

// ErrUnsafeConfig is wrapped by the errors NewSource and NewProducer return
// for kgo options that kgo would accept but that would break orderly's
// guarantees: auto-commit, group callbacks or offset adjustments of the
// caller's, a transactional ID, kept control records, or a protocol cap
// below record headers (see the package documentation for the list). Such
// errors also match ErrInvalidConfig.
var ErrUnsafeConfig = fmt.Errorf("%w: unsafe for orderly", ErrInvalidConfig)

// ErrClaimEnded is returned by Claim.Commit (and for the claim by
// Source.CommitBatch) once the engine's serve call for the claim has
// returned: the partition may already belong to another member, and
// nothing is stored.
var ErrClaimEnded = errors.New("orderlykgo: claim ended")

// ErrFenced is wrapped by Claim.Commit's error when the member no longer
// owns the claim's partition in the group: the group coordinator rejected
// the commit because this member is not part of the current generation
// (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID; the kerr
// error is wrapped too), or kgo reported the partition lost
// (OnPartitionsLost: a session that expired or a fatal group error), after
// which the claim sends no commit at all. Nothing was stored.
var ErrFenced = errors.New("orderlykgo: member fenced out of the group")

// ErrConsumed is returned by Source.Consume when it is called a second time:
// a Source joins its group once. Make a new Source to join again.
var ErrConsumed = errors.New("orderlykgo: Consume called twice")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
}

func unsafeConfig(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnsafeConfig}, args...)...)
}
