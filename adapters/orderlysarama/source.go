package orderlysarama

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/orderly-go/orderly"
)

// Source is an orderly.Source over a sarama ConsumerGroup: one member of a
// Kafka consumer group. Make one with NewSource and hand it to orderly.New.
type Source struct {
	brokers []string
	group   string
	topics  []string
	cfg     *sarama.Config // the adjusted copy; never modified after NewSource
	opts    options
	log     *slog.Logger

	consumed atomic.Bool
}

var _ orderly.Source = (*Source)(nil)

// NewSource returns a Source for the consumer group groupID, subscribed to
// topics, that connects to brokers when Consume is called (not before).
//
// cfg is copied, not modified; nil means DefaultConfig(). The copy gets the
// settings the package documentation lists under "Enforced configuration".
// NewSource returns an error wrapping ErrInvalidConfig for bad arguments
// and for a config sarama rejects, and wrapping ErrUnsafeConfig for a
// config that would break orderly's guarantees.
func NewSource(brokers []string, groupID string, topics []string, cfg *sarama.Config, opts ...Option) (*Source, error) {
	o := defaultOptions()
	if len(brokers) == 0 {
		o.fail(invalid("no brokers"))
	}
	if groupID == "" {
		o.fail(invalid("empty group id"))
	}
	if len(topics) == 0 {
		o.fail(invalid("no topics"))
	}
	for _, t := range topics {
		if t == "" {
			o.fail(invalid("empty topic name"))
		}
	}
	c, err := consumerConfig(cfg)
	if err != nil {
		o.fail(err)
	}
	for _, opt := range opts {
		if opt == nil {
			o.fail(invalid("nil Option"))
			continue
		}
		opt(&o)
	}
	if err := o.err(); err != nil {
		return nil, err
	}
	return &Source{
		brokers: slices.Clone(brokers),
		group:   groupID,
		topics:  slices.Clone(topics),
		cfg:     c,
		opts:    o,
		log:     o.logger.With(slog.String("group", groupID)),
	}, nil
}

// Config returns a shallow copy of the configuration the Source uses, with
// the enforced settings applied.
func (s *Source) Config() *sarama.Config {
	c := *s.cfg
	return &c
}

// Consume joins the group and serves every claimed partition until ctx is
// done, then leaves the group and returns nil. See orderly.Source.
//
// Errors the group recovers from are logged and retried: a client that
// cannot reach any broker is created again, and a failed group session
// (coordinator unreachable or moving, a rebalance that failed) is joined
// again, after a backoff that grows from WithRetryBackoff's min to its max
// and resets after a session that succeeded. Consume returns an error only
// for a configuration sarama rejects at runtime (wrapping ErrInvalidConfig),
// for a nil serve, and ErrConsumed when called twice.
func (s *Source) Consume(ctx context.Context, serve func(orderly.Claim)) error {
	if serve == nil {
		return invalid("Consume: nil serve")
	}
	if !s.consumed.CompareAndSwap(false, true) {
		return ErrConsumed
	}
	client, err := s.connect(ctx)
	if client == nil {
		return err // nil when ctx ended first
	}
	defer func() {
		if err := client.Close(); err != nil && !errors.Is(err, sarama.ErrClosedClient) {
			s.log.Debug("orderlysarama: closing the client", slog.Any("error", err))
		}
	}()
	group, err := sarama.NewConsumerGroupFromClient(s.group, client)
	if err != nil {
		return invalid("%w", err)
	}
	// Owned by Consume, which waits for it after closing the group (that
	// closes Errors).
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		s.drainErrors(group.Errors())
	}()
	h := &handler{src: s, client: client, group: group, serve: serve}
	err = s.run(ctx, group, h)
	// Every ConsumeClaim has returned when group.Consume returns; the wait
	// is for the rule "Consume returns after every serve call", stated
	// here rather than inherited from sarama.
	h.claims.Wait()
	h.rereads.Wait()
	if cerr := group.Close(); cerr != nil {
		s.log.Debug("orderlysarama: leaving the group", slog.Any("error", cerr))
	}
	<-drained
	return err
}

// run calls group.Consume until ctx is done: an eager rebalance ends each
// call, a cooperative one does not.
func (s *Source) run(ctx context.Context, group sarama.ConsumerGroup, h *handler) error {
	backoff := s.opts.backoffMin
	for {
		err := group.Consume(ctx, s.topics, h)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			backoff = s.opts.backoffMin
			continue
		}
		if fatal(err) {
			return invalid("consumer group: %w", err)
		}
		s.log.Warn("orderlysarama: consumer group session failed; joining again", slog.Any("error", err), slog.Duration("backoff", backoff))
		if !sleep(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, s.opts.backoffMax)
	}
}

// connect creates the client, retrying with backoff while no broker can be
// reached. It returns (nil, nil) when ctx ends first.
func (s *Source) connect(ctx context.Context) (sarama.Client, error) {
	backoff := s.opts.backoffMin
	for {
		client, err := sarama.NewClient(s.brokers, s.cfg)
		if err == nil {
			return client, nil
		}
		if fatal(err) {
			return nil, invalid("client: %w", err)
		}
		s.log.Warn("orderlysarama: cannot connect; retrying", slog.Any("brokers", s.brokers), slog.Any("error", err), slog.Duration("backoff", backoff))
		if !sleep(ctx, backoff) {
			return nil, nil
		}
		backoff = min(2*backoff, s.opts.backoffMax)
	}
}

// drainErrors logs what the consumer group reports (Consumer.Return.Errors
// is on) until the group is closed.
func (s *Source) drainErrors(errs <-chan error) {
	for err := range errs {
		var ce *sarama.ConsumerError
		if errors.As(err, &ce) {
			s.log.Warn("orderlysarama: consumer error", slog.String("topic", ce.Topic), slog.Int("partition", int(ce.Partition)), slog.Any("error", ce.Err))
			continue
		}
		s.log.Warn("orderlysarama: consumer group error", slog.Any("error", err))
	}
}

// fatal reports whether err is a configuration error, which no retry fixes.
func fatal(err error) bool {
	var ce sarama.ConfigurationError
	return errors.As(err, &ce) || errors.Is(err, sarama.ErrClosedConsumerGroup)
}

// sleep waits for d or ctx, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// handler is the sarama ConsumerGroupHandler: each ConsumeClaim becomes one
// orderly claim served synchronously. It tracks claims, not sessions: with
// a cooperative strategy one session lives across rebalances and its
// claims end one by one.
type handler struct {
	src    *Source
	client sarama.Client
	group  sarama.ConsumerGroup
	serve  func(orderly.Claim)
	claims sync.WaitGroup
	// rereads counts re-read streams (claim.ReadFrom) whose consumer is
	// not closed yet: Consume waits for them before it closes the client.
	rereads sync.WaitGroup
}

func (h *handler) Setup(sess sarama.ConsumerGroupSession) error {
	h.src.log.Debug("orderlysarama: session started", slog.String("member", sess.MemberID()),
		slog.Int("generation", int(sess.GenerationID())), slog.Any("claims", sess.Claims()))
	return nil
}

func (h *handler) Cleanup(sess sarama.ConsumerGroupSession) error {
	h.src.log.Debug("orderlysarama: session ended", slog.String("member", sess.MemberID()),
		slog.Int("generation", int(sess.GenerationID())))
	return nil
}

// ConsumeClaim serves the claim and returns once the engine has drained
// and committed it (serve returned).
func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, sc sarama.ConsumerGroupClaim) error {
	h.claims.Add(1)
	defer h.claims.Done()
	c := newClaim(h, sess, sc)
	c.start = h.startPosition(sess, sc, c.log)
	c.run()
	defer c.end()
	h.serve(c)
	return nil
}

// startPosition is the claim's Start: sarama's InitialOffset (the committed
// offset sarama starts fetching at, or Consumer.Offsets.Initial, negative,
// when there is none) and the metadata committed with it, fetched from the
// coordinator. When the fetch fails, or finds a different offset (another
// client committed in between), the metadata is left empty: the engine
// then handles again the offsets it would have skipped, which
// at-least-once allows.
func (h *handler) startPosition(sess sarama.ConsumerGroupSession, sc sarama.ConsumerGroupClaim, log *slog.Logger) orderly.Position {
	initial := sc.InitialOffset()
	if initial < 0 {
		return orderly.Position{Offset: orderly.NoOffset}
	}
	offset, metadata, err := h.fetchCommitted(sess.Context(), sc.Topic(), sc.Partition())
	switch {
	case err != nil:
		log.Warn("orderlysarama: cannot fetch the commit metadata; offsets done above the committed one will be handled again",
			slog.Int64("committed", initial), slog.Any("error", err))
		return orderly.Position{Offset: initial}
	case offset != initial:
		log.Info("orderlysarama: committed offset moved since the claim started; ignoring its metadata",
			slog.Int64("initial", initial), slog.Int64("committed", offset))
		return orderly.Position{Offset: initial}
	}
	return orderly.Position{Offset: initial, Metadata: metadata}
}
