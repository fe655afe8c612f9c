package orderlysarama

import (
	"errors"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
)

// DefaultVersion is the Kafka protocol version NewSource and NewProducer use
// when they are given a nil *sarama.Config. Kafka 3.6 brokers and later
// (and franz-go's kfake) speak it.
var DefaultVersion = sarama.V3_6_0_0

// MinVersion is the oldest Config.Version orderly accepts: Kafka 0.11 is the
// first with record headers. With an older version sarama fetches and
// produces without headers and silently drops them, which loses trace
// context and any header-carried routing.
var MinVersion = sarama.V0_11_0_0

// DefaultConfig returns the *sarama.Config NewSource uses when given nil:
// sarama.NewConfig with Version = DefaultVersion, Consumer.Offsets.Initial =
// OffsetOldest (a new group reads from the start, like the memory adapter
// and Kafka's auto.offset.reset=earliest) and the cooperative-sticky
// rebalance strategy (a rebalance revokes only the partitions that move).
// NewSource applies its enforced settings on top of it.
func DefaultConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = DefaultVersion
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyCooperativeSticky()}
	return cfg
}

// consumerConfig returns a shallow copy of cfg (DefaultConfig if nil) with
// the settings the Source enforces, or an error wrapping ErrInvalidConfig
// or ErrUnsafeConfig. Pointers and slices (TLS, SASL, strategies, metric
// registry) are shared with cfg, not copied: the caller's settings pass
// through untouched.
func consumerConfig(cfg *sarama.Config) (*sarama.Config, error) {
	if cfg == nil {
		cfg = DefaultConfig()
	}
	c := *cfg
	// Commits are orderly's: only the engine knows which offsets are done.
	c.Consumer.Offsets.AutoCommit.Enable = false
	// Errors are drained from ConsumerGroup.Errors and logged.
	c.Consumer.Return.Errors = true
	if err := checkVersion(&c); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, invalid("%w", err)
	}
	return &c, nil
}

func checkVersion(c *sarama.Config) error {
	if !c.Version.IsAtLeast(MinVersion) {
		return unsafeConfig("Version %s is older than %s: record headers would be dropped", c.Version, MinVersion)
	}
	return nil
}

// Option configures a Source.
type Option func(*options)

type options struct {
	logger     *slog.Logger
	backoffMin time.Duration
	backoffMax time.Duration
	errs       []error
}

func defaultOptions() options {
	return options{logger: slog.Default(), backoffMin: 100 * time.Millisecond, backoffMax: 10 * time.Second}
}

func (o *options) fail(err error) { o.errs = append(o.errs, err) }

func (o *options) err() error { return errors.Join(o.errs...) }

// WithLogger sets the logger for consumer-group errors, retries and claim
// lifecycle events. The default is slog.Default(); nil is invalid.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l == nil {
			o.fail(invalid("WithLogger: nil logger"))
		}
		o.logger = l
	}
}

// WithRetryBackoff sets the wait before Consume retries after the client or
// the consumer group failed (brokers unreachable, coordinator moving): it
// starts at min, doubles after each consecutive failure and stops growing at
// max. The defaults are 100ms and 10s. Both must be > 0 and min ≤ max.
// Retries within one session (heartbeats, rejoins, offset fetches) use
// sarama's own Metadata.Retry and Consumer.Group.Rebalance.Retry settings.
func WithRetryBackoff(min, max time.Duration) Option {
	return func(o *options) {
		if min <= 0 || max < min {
			o.fail(invalid("WithRetryBackoff: need 0 < min ≤ max, got %v and %v", min, max))
		}
		o.backoffMin, o.backoffMax = min, max
	}
}
