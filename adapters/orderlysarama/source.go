package orderlysarama

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
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
// done, then hands every claim back and leaves the group, and returns nil.
// See orderly.Source.
//
// When ctx is done, Consume revokes every claim it is serving while the
// member is still in the group, and keeps the group session (heartbeats,
// and a rejoin already under way) going until every serve call has
// returned: the final commits go out as a member of the current
// generation. Only then does it end the session and leave the group.
// Partitions assigned meanwhile are not served. Consume returns at most
// Consumer.Group.Session.Timeout after the last serve call returned: a
// coordinator that stopped answering would hold sarama's leave up to
// Net.ReadTimeout, and expires the member after the session timeout
// anyway; the leave then finishes in the background.
//
// Errors the group recovers from are logged and retried: a client that
// cannot reach any broker is created again, and a failed group session
// (coordinator unreachable or moving, a rebalance that failed) is joined
// again, after a backoff that grows from WithRetryBackoff's min to its max
// and resets after a session that succeeded. Consume returns an error for
// what no retry fixes: a configuration sarama rejects at runtime (wrapping
// ErrInvalidConfig), a failed authentication (wrapping ErrAuthentication),
// an access the cluster's ACLs deny (wrapping ErrAuthorization), a nil
// serve, and ErrConsumed when called twice.
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
	group, err := sarama.NewConsumerGroupFromClient(s.group, client)
	if err != nil {
		s.closeClient(client)
		return invalid("%w", err)
	}
	h := newHandler(s, client, group, serve)
	// The group session outlives ctx until every claim has been handed
	// back: see stopServing.
	sessionCtx, endSession := context.WithCancel(context.WithoutCancel(ctx))
	handedBack := make(chan struct{}) // ctx is done and every serve call has returned
	finished := make(chan error, 1)
	// Owned by Consume, which waits for it, unless leaving the group takes
	// longer than the session timeout (see below): then it finishes on its
	// own, bounded by sarama's Net timeouts.
	go func() {
		defer endSession()
		// Owned by this goroutine, which waits for it after closing the
		// group (that closes Errors).
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			s.drainErrors(group.Errors())
		}()
		runDone := make(chan struct{})
		// Owned by this goroutine: when ctx ends first, it hands every
		// claim back and then ends the group session.
		go func() {
			select {
			case <-ctx.Done():
				h.stopServing()
				close(handedBack)
			case <-runDone:
			}
			endSession()
		}()
		err := s.run(ctx, sessionCtx, group, h)
		close(runDone)
		// Every ConsumeClaim has returned when group.Consume returns; the
		// wait is for the rule "Consume returns after every serve call",
		// stated here rather than inherited from sarama.
		h.claims.Wait()
		h.rereads.Wait()
		if cerr := group.Close(); cerr != nil {
			s.log.Debug("orderlysarama: leaving the group", slog.Any("error", cerr))
		}
		<-drained
		s.closeClient(client)
		finished <- err
	}()
	select {
	case err := <-finished:
		return err
	case <-handedBack:
	}
	// Every claim is drained and committed; what is left is sarama's: stop
	// heartbeating and send LeaveGroup. Neither takes a context, and a
	// coordinator that stopped answering holds them up to Net.ReadTimeout
	// each. Past the session timeout the coordinator expires the member
	// anyway, so Consume waits no longer than that.
	timeout := time.NewTimer(s.cfg.Consumer.Group.Session.Timeout)
	defer timeout.Stop()
	select {
	case err := <-finished:
		return err
	case <-timeout.C:
		s.log.Warn("orderlysarama: leaving the group takes longer than the session timeout; returning without waiting for it",
			slog.Duration("session_timeout", s.cfg.Consumer.Group.Session.Timeout))
		return nil
	}
}

func (s *Source) closeClient(client sarama.Client) {
	if err := client.Close(); err != nil && !errors.Is(err, sarama.ErrClosedClient) {
		s.log.Debug("orderlysarama: closing the client", slog.Any("error", err))
	}
}

// run calls group.Consume with sessionCtx until ctx is done: an eager
// rebalance ends each call, a cooperative one does not. Once ctx is done
// it joins no more and returns when sessionCtx ends.
func (s *Source) run(ctx, sessionCtx context.Context, group sarama.ConsumerGroup, h *handler) error {
	backoff := s.opts.backoffMin
	for {
		err := group.Consume(sessionCtx, s.topics, h)
		if ctx.Err() != nil {
			<-sessionCtx.Done()
			return nil
		}
		if err == nil {
			backoff = s.opts.backoffMin
			continue
		}
		if ferr := fatal("consumer group", err); ferr != nil {
			return ferr
		}
		s.log.Warn("orderlysarama: consumer group session failed; joining again", slog.Any("error", err), slog.Duration("backoff", backoff))
		if !sleep(ctx, backoff) {
			<-sessionCtx.Done()
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
		if ferr := fatal("creating the client", err); ferr != nil {
			return nil, ferr
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

// fatal returns err, which happened while doing what, wrapped in the
// sentinel of its kind when no retry fixes it, and nil otherwise: a
// configuration error (ErrInvalidConfig), a failed authentication
// (ErrAuthentication: SASL rejected, or the broker's TLS certificate not
// trusted) or an access the ACLs deny (ErrAuthorization). Everything
// else, a broker or coordinator that cannot be reached included, is
// retried.
func fatal(what string, err error) error {
	var (
		ce        sarama.ConfigurationError
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalidCA x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &ce), errors.Is(err, sarama.ErrClosedConsumerGroup):
		return invalid("%s: %w", what, err)
	case errors.Is(err, sarama.ErrSASLAuthenticationFailed), errors.Is(err, sarama.ErrUnsupportedSASLMechanism),
		errors.Is(err, sarama.ErrIllegalSASLState),
		errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalidCA), errors.As(err, &verify):
		return fmt.Errorf("%w: %s: %w", ErrAuthentication, what, err)
	case errors.Is(err, sarama.ErrGroupAuthorizationFailed), errors.Is(err, sarama.ErrTopicAuthorizationFailed),
		errors.Is(err, sarama.ErrClusterAuthorizationFailed):
		return fmt.Errorf("%w: %s: %w", ErrAuthorization, what, err)
	}
	return nil
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
	claims sync.WaitGroup // ConsumeClaim calls running
	// rereads counts re-read streams (claim.ReadFrom) whose consumer is
	// not closed yet: Consume waits for them before it closes the client.
	rereads sync.WaitGroup

	// mu guards stopping and serving, and orders served.Add before
	// stopServing's Wait. Held only briefly; nothing is called under it.
	mu       sync.Mutex
	stopping bool                // Consume's ctx is done: claims are no longer served
	serving  map[*claim]struct{} // claims whose serve call has not returned
	served   sync.WaitGroup      // one count per entry of serving
}

func newHandler(s *Source, client sarama.Client, group sarama.ConsumerGroup, serve func(orderly.Claim)) *handler {
	return &handler{src: s, client: client, group: group, serve: serve, serving: make(map[*claim]struct{})}
}

// admit registers c for serving, or reports false once the source is
// stopping.
func (h *handler) admit(c *claim) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopping {
		return false
	}
	h.serving[c] = struct{}{}
	h.served.Add(1)
	return true
}

func (h *handler) dismiss(c *claim) {
	h.mu.Lock()
	delete(h.serving, c)
	h.mu.Unlock()
	h.served.Done()
}

func (h *handler) isStopping() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stopping
}

// stopServing runs once Consume's ctx is done, while the group session is
// still alive: it stops fetching, revokes every claim being served and
// waits until every serve call has returned, so that the engine drains
// and commits each claim while this member still belongs to the group.
//
// Why the session must outlive ctx: sarama gives up a rejoin under way
// when its context ends (a SyncGroup answered REBALANCE_IN_PROGRESS is
// retried only while the context lives), and its session then keeps the
// generation it had before the rejoin, while the coordinator has moved
// to the next one with this member in it. Final commits sent then carry a
// generation the coordinator no longer accepts (ILLEGAL_GENERATION) and
// are lost: the next owner handles those records again. Kept alive, the
// rejoin completes, and Commit retries in the new generation.
func (h *handler) stopServing() {
	h.mu.Lock()
	h.stopping = true
	claims := make([]*claim, 0, len(h.serving))
	for c := range h.serving {
		claims = append(claims, c)
	}
	h.mu.Unlock()
	h.group.PauseAll()
	for _, c := range claims {
		c.log.Debug("orderlysarama: claim revoked: the source is stopping")
		c.revoke()
	}
	h.served.Wait()
}

func (h *handler) Setup(sess sarama.ConsumerGroupSession) error {
	h.src.log.Debug("orderlysarama: session started", slog.String("member", sess.MemberID()),
		slog.Int("generation", int(sess.GenerationID())), slog.Any("claims", sess.Claims()))
	return nil
}

// Cleanup logs the session's end, as a warning when it was lost (its
// heartbeats failed, the coordinator expelled the member, a partition
// consumer gave up): sarama then joins again by itself, and with a
// cooperative strategy group.Consume does not even return an error.
func (h *handler) Cleanup(sess sarama.ConsumerGroupSession) error {
	attrs := []any{slog.String("member", sess.MemberID()), slog.Int("generation", int(sess.GenerationID()))}
	switch cause := context.Cause(sess.Context()); {
	case cause == nil, errors.Is(cause, context.Canceled), errors.Is(cause, sarama.ErrRebalanceInProgress):
		h.src.log.Debug("orderlysarama: session ended", attrs...)
	case errors.Is(cause, sarama.ErrSessionPartitionCountChanged):
		h.src.log.Info("orderlysarama: session ended: partitions were added", attrs...)
	default:
		h.src.log.Warn("orderlysarama: group session lost; joining again", append(attrs, slog.Any("error", cause))...)
	}
	return nil
}

// ConsumeClaim serves the claim and returns once the engine has drained
// and committed it (serve returned). Once the source is stopping it does
// not serve, and after serving it does not return until sarama releases
// the claim: returning early would end sarama's session for every claim
// (see stopServing).
func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, sc sarama.ConsumerGroupClaim) error {
	h.claims.Add(1)
	defer h.claims.Done()
	c := newClaim(h, sess, sc)
	if !h.admit(c) {
		c.log.Debug("orderlysarama: claim not served: the source is stopping")
		c.hold()
		return nil
	}
	c.start = h.startPosition(sess, sc, c.log)
	c.run()
	func() {
		defer h.dismiss(c)
		defer c.end()
		h.serve(c)
	}()
	if h.isStopping() {
		c.hold()
	}
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
