package orderlykgo

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/orderly-go/orderly"
)

// Source is an orderly.Source over a kgo consumer-group client: one member
// of a Kafka consumer group. Make one with NewSource and hand it to
// orderly.New. It is also an orderly.BatchCommitter (one OffsetCommit for
// the partitions of a commit tick) and an orderly.GroupNamer.
type Source struct {
	kopts  []kgo.Opt // the caller's, cloned; Consume adds the enforced ones
	group  string
	topics []string
	gc     groupConfig
	opts   options
	log    *slog.Logger

	consumed atomic.Bool
	serve    func(orderly.Claim) // set by Consume before the client exists; read by kgo's callbacks

	// mu guards claims. It is held only for map operations and never
	// while calling kgo, the engine or another lock of ours.
	mu     sync.Mutex
	claims map[topicPartition]*claim

	// serving counts serve goroutines; Consume waits for them.
	serving sync.WaitGroup
	// rereading counts re-read clients (claim.ReadFrom) not closed yet;
	// Consume waits for them.
	rereading sync.WaitGroup
}

type topicPartition struct {
	topic     string
	partition int32
}

var (
	_ orderly.Source         = (*Source)(nil)
	_ orderly.BatchCommitter = (*Source)(nil)
	_ orderly.GroupNamer     = (*Source)(nil)
)

// NewSource returns a Source for the consumer group and topics that kopts
// configure: kopts are kgo client options and must include
// kgo.ConsumerGroup and kgo.ConsumeTopics (kgo.SeedBrokers defaults to
// localhost:9092, as in kgo). Nothing connects before Consume.
//
// kopts is copied, not modified. Consume adds the settings the package
// documentation lists under "Enforced configuration". NewSource returns an
// error wrapping ErrInvalidConfig for a nil option, options kgo rejects or
// a consumer group or topics missing, and wrapping ErrUnsafeConfig for
// options that would break orderly's guarantees.
func NewSource(kopts []kgo.Opt, opts ...Option) (*Source, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if opt == nil {
			o.fail(invalid("nil Option"))
			continue
		}
		opt(&o)
	}
	gc, err := inspect(kopts)
	if err != nil {
		o.fail(err)
	}
	if err := o.err(); err != nil {
		return nil, err
	}
	return &Source{
		kopts:  slices.Clone(kopts),
		group:  gc.group,
		topics: gc.topics,
		gc:     gc,
		opts:   o,
		log:    o.logger.With(slog.String("group", gc.group)),
		claims: make(map[topicPartition]*claim),
	}, nil
}

// GroupName is the consumer group; it makes the source an
// orderly.GroupNamer, so hooks see the group. It never blocks.
func (s *Source) GroupName() string { return s.group }

// Topics returns the topics the source consumes, sorted.
func (s *Source) Topics() []string { return slices.Clone(s.topics) }

// clientOpts are the caller's options plus the enforced ones, which come
// last so that they win.
func (s *Source) clientOpts() []kgo.Opt {
	kopts := append(slices.Clone(s.kopts),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnOffsetsFetched(s.onFetched),
		kgo.OnPartitionsRevoked(s.onRevoked),
		kgo.OnPartitionsLost(s.onLost),
	)
	if !s.gc.ownLogger {
		kopts = append(kopts, kgo.WithLogger(newKgoLogger(s.opts.logger)))
	}
	return kopts
}

// Consume joins the group and serves every claimed partition until ctx is
// done, then revokes every claim, leaves the group and returns nil. See
// orderly.Source.
//
// kgo retries what it can recover from on its own (brokers unreachable, a
// coordinator moving, a failed group session), after kgo.RetryBackoffFn's
// backoff (by default 250ms doubling to 5s, with jitter); Consume logs
// the errors polls report and goes on. It returns an error only for a nil
// serve (wrapping ErrInvalidConfig) and ErrConsumed when called twice.
//
// Leaving waits for the engine's final commits, then for kgo's LeaveGroup
// request, which kgo bounds by its RetryTimeout (30s by default).
func (s *Source) Consume(ctx context.Context, serve func(orderly.Claim)) error {
	if serve == nil {
		return invalid("Consume: nil serve")
	}
	if !s.consumed.CompareAndSwap(false, true) {
		return ErrConsumed
	}
	s.serve = serve
	cl, err := kgo.NewClient(s.clientOpts()...)
	if err != nil {
		return invalid("kgo client: %w", err) // NewSource validated the same options
	}
	s.poll(ctx, cl)
	// Close leaves the group: kgo revokes every partition (onRevoked
	// waits for the engine's final commits), sends LeaveGroup and shuts
	// the client down.
	cl.Close()
	s.endAll()
	s.serving.Wait()
	s.rereading.Wait()
	return nil
}

// poll hands fetched records to their claims until ctx is done. With
// BlockRebalanceOnPoll kgo runs no group callback between a poll and the
// AllowRebalance that follows it, so the records a poll returned reach the
// claims that were current when it returned.
func (s *Source) poll(ctx context.Context, cl *kgo.Client) {
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			cl.AllowRebalance()
			return
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			var gs *kgo.ErrGroupSession
			if errors.As(err, &gs) {
				s.log.Warn("orderlykgo: consumer group session failed; kgo joins again after its retry backoff", slog.Any("error", err))
				return
			}
			s.log.Warn("orderlykgo: fetch error", slog.String("topic", topic), slog.Int("partition", int(partition)), slog.Any("error", err))
		})
		fetches.EachPartition(s.route)
		cl.AllowRebalance()
	}
}

// route hands one partition's fetched records to its claim.
func (s *Source) route(p kgo.FetchTopicPartition) {
	if len(p.Records) == 0 {
		return
	}
	c := s.claim(p.Topic, p.Partition)
	if c == nil {
		// kgo assigns a partition only after onFetched made its claim,
		// and onRevoked removes the claim only after kgo stopped
		// fetching the partition.
		s.log.Error("orderlykgo: records of a partition with no claim dropped",
			slog.String("topic", p.Topic), slog.Int("partition", int(p.Partition)), slog.Int("records", len(p.Records)))
		return
	}
	end := p.HighWatermark
	if s.gc.readCommitted {
		end = p.LastStableOffset
	}
	c.endOffset.Store(end)
	c.push(p.Records)
}

func (s *Source) claim(topic string, partition int32) *claim {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.claims[topicPartition{topic, partition}]
}

// onFetched is kgo's OnOffsetsFetched: kgo fetched the committed offsets of
// partitions it was assigned and is about to start fetching them there.
// Each partition of the response becomes a claim whose Start is that
// committed position, metadata included, before a record of it can be
// polled. (kgo fetches offsets once per assignment; a fetch cut short by a
// rebalance is redone in the next session, so a claim is made exactly when
// its partition starts being consumed.)
func (s *Source) onFetched(_ context.Context, cl *kgo.Client, resp *kmsg.OffsetFetchResponse) error {
	for _, t := range fetchedTopics(resp) {
		for _, p := range t.partitions {
			if p.ErrorCode != 0 {
				continue // kgo reports it as a fetch error and does not assign the partition
			}
			start := orderly.Position{Offset: orderly.NoOffset}
			if p.Offset >= 0 {
				start.Offset = p.Offset
				if p.Metadata != nil {
					start.Metadata = *p.Metadata
				}
			}
			s.grant(cl, t.topic, p.Partition, start)
		}
	}
	return nil
}

type fetchedTopic struct {
	topic      string
	partitions []kmsg.OffsetFetchResponseGroupTopicPartition
}

// fetchedTopics reads an OffsetFetch response in the v8+ group format kgo
// hands to OnOffsetsFetched (with topic names resolved), or in the older
// per-topic format.
func fetchedTopics(resp *kmsg.OffsetFetchResponse) []fetchedTopic {
	var out []fetchedTopic
	if len(resp.Groups) > 0 {
		for _, t := range resp.Groups[0].Topics {
			if t.Topic != "" {
				out = append(out, fetchedTopic{t.Topic, t.Partitions})
			}
		}
		return out
	}
	for _, t := range resp.Topics {
		ps := make([]kmsg.OffsetFetchResponseGroupTopicPartition, len(t.Partitions))
		for i, p := range t.Partitions {
			ps[i] = kmsg.OffsetFetchResponseGroupTopicPartition{
				Partition: p.Partition, Offset: p.Offset, Metadata: p.Metadata, ErrorCode: p.ErrorCode,
			}
		}
		out = append(out, fetchedTopic{t.Topic, ps})
	}
	return out
}

// grant makes the claim and starts its serve goroutine. A claim still
// held for the partition (kgo fetched its offsets again) is ended first.
func (s *Source) grant(cl *kgo.Client, topic string, partition int32, start orderly.Position) {
	tp := topicPartition{topic, partition}
	s.mu.Lock()
	old := s.claims[tp]
	delete(s.claims, tp)
	s.mu.Unlock()
	if old != nil {
		s.log.Warn("orderlykgo: offsets fetched again for a partition still claimed; ending the old claim",
			slog.String("topic", topic), slog.Int("partition", int(partition)))
		old.revoke()
		<-old.done
	}
	c := newClaim(s, cl, topic, partition, start)
	s.mu.Lock()
	s.claims[tp] = c
	s.mu.Unlock()
	c.log.Debug("orderlykgo: claim granted", slog.Int64("start", start.Offset))
	c.run()
	s.serving.Add(1)
	// Owned by the claim; onRevoked and onLost wait for c.done, Consume
	// for serving.
	go func() {
		defer s.serving.Done()
		defer c.end()
		s.serve(c)
	}()
}

// onRevoked is kgo's OnPartitionsRevoked. kgo has stopped fetching the
// partitions; their claims are revoked and onRevoked returns once the
// engine has drained them and made its final commits, so those commits
// land before the group can give the partitions to another member (kgo
// rejoins, or leaves, only after this returns).
func (s *Source) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	s.release(revoked, false)
}

// onLost is kgo's OnPartitionsLost: the member is out of the group (its
// session expired, or a fatal group error). The claims are fenced first:
// none of them sends a commit from then on. Then they are revoked and
// onLost returns once the engine has let go of them.
func (s *Source) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.release(lost, true)
}

func (s *Source) release(parts map[string][]int32, lost bool) {
	var cs []*claim
	s.mu.Lock()
	for topic, ps := range parts {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			if c := s.claims[tp]; c != nil {
				cs = append(cs, c)
				delete(s.claims, tp)
			}
		}
	}
	s.mu.Unlock()
	for _, c := range cs {
		if lost {
			c.fenced.Store(true)
			c.log.Info("orderlykgo: claim lost; its commits are fenced")
		} else {
			c.log.Debug("orderlykgo: claim revoked")
		}
		c.revoke()
	}
	for _, c := range cs {
		<-c.done
	}
}

// endAll revokes the claims kgo did not revoke on leaving (none, unless
// kgo skipped a partition) and waits for them.
func (s *Source) endAll() {
	s.mu.Lock()
	parts := make(map[string][]int32)
	for tp := range s.claims {
		parts[tp.topic] = append(parts[tp.topic], tp.partition)
	}
	s.mu.Unlock()
	s.release(parts, false)
}

// Paused reports whether the engine has paused the claim on the partition
// (Claim.Pause without a Resume since). It is false for a partition this
// member holds no claim on. It never blocks and is safe for concurrent
// use.
func (s *Source) Paused(topic string, partition int32) bool {
	c := s.claim(topic, partition)
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.enginePaused
}
