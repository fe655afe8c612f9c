package orderlysarama

import (
	"errors"
	"fmt"
)

// ErrInvalidConfig is wrapped by every error NewSource and NewProducer
// return for bad arguments: no brokers, an empty group id, no topics, or a
// *sarama.Config that sarama's own Validate rejects.
var ErrInvalidConfig = errors.New("orderlysarama: invalid configuration")

// ErrUnsafeConfig is wrapped by the errors NewSource and NewProducer return
// for a *sarama.Config that sarama would accept but that would break
// orderly's guarantees (see the package documentation for the list). Such
// errors also match ErrInvalidConfig.
var ErrUnsafeConfig = fmt.Errorf("%w: unsafe for orderly", ErrInvalidConfig)

// ErrClaimEnded is returned by Claim.Commit once the engine's serve call
// for the claim has returned: the partition may already belong to another
// member, and nothing is stored.
var ErrClaimEnded = errors.New("orderlysarama: claim ended")

// ErrFenced is wrapped by Claim.Commit's error when the group coordinator
// rejected the commit because this member is no longer part of the group
// generation that owns the claim (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
// FENCED_INSTANCE_ID). Nothing was stored. The sarama error is wrapped too.
var ErrFenced = errors.New("orderlysarama: member fenced out of the group")

// ErrAuthentication is wrapped by the error Source.Consume returns when
// the cluster rejects this client's identity, which no retry fixes: SASL
// authentication failed (a wrong user or password, an unsupported
// mechanism), or the broker's TLS certificate is not trusted (unknown
// authority, wrong host name, invalid certificate). sarama's error is
// wrapped too.
var ErrAuthentication = errors.New("orderlysarama: authentication failed")

// ErrAuthorization is wrapped by the error Source.Consume returns when the
// cluster's ACLs deny this client the group, a topic or the cluster
// (GROUP_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_FAILED,
// CLUSTER_AUTHORIZATION_FAILED). sarama's error is wrapped too.
var ErrAuthorization = errors.New("orderlysarama: not authorized")

// ErrConsumed is returned by Source.Consume when it is called a second time:
// a Source joins its group once. Make a new Source to join again.
var ErrConsumed = errors.New("orderlysarama: Consume called twice")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
}

func unsafeConfig(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnsafeConfig}, args...)...)
}
