package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	ibm "github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/orderlysarama"
)

// A peer consumes one topic as one member of a fresh consumer group,
// calling handle with each record's value, until ctx is done; then it
// shuts down (leaving the group, committing what it commits on shutdown)
// and returns.
type peer struct {
	name string
	// mode is the unit handled serially: "key" (orderly, ByKey) or
	// "partition" (one record per partition at a time).
	mode    string
	consume func(ctx context.Context, brokers []string, topic, group string, concurrency int, handle func([]byte)) error
}

var allPeers = []peer{
	{"orderly", "key", consumeOrderly},
	{"sarama", "partition", consumeSarama},
	{"watermill", "partition", consumeWatermill},
	{"franz-go", "partition", consumeFranz},
}

// concurrency is how many records the peer handles at once on w: orderly's
// WithMaxConcurrency, one per partition for the others.
func (p peer) concurrency(w *workload, orderlyConcurrency int) int {
	if p.mode == "key" {
		return orderlyConcurrency
	}
	return w.partitions
}

// quietLogger keeps warnings and errors, not chatter (as the main harness).
var quietLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// fastGroup applies the fast group settings every sarama-based peer uses
// on kfake (the same as adapters/orderlysarama's tests), and
// the protocol version orderly's adapter defaults to.
func fastGroup(cfg *ibm.Config) *ibm.Config {
	cfg.Version = orderlysarama.DefaultVersion
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	cfg.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = 3 * time.Second
	cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	cfg.Consumer.Group.Rebalance.Retry.Backoff = 50 * time.Millisecond
	cfg.Consumer.Offsets.Initial = ibm.OffsetOldest
	cfg.Consumer.Retry.Backoff = 50 * time.Millisecond
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	return cfg
}

// ---- orderly -------------------------------------------------------------

// consumeOrderly runs an orderly engine (ByKey) over orderly's sarama
// adapter: the engine's defaults plus the pc-table's concurrency and
// WithMaxUncommitted(1000).
func consumeOrderly(ctx context.Context, brokers []string, topic, group string, concurrency int, handle func([]byte)) error {
	src, err := orderlysarama.NewSource(brokers, group, []string{topic}, fastGroup(orderlysarama.DefaultConfig()),
		orderlysarama.WithLogger(quietLogger))
	if err != nil {
		return err
	}
	h := orderly.HandlerFunc(func(_ context.Context, r *orderly.Record) error {
		handle(r.Value)
		return nil
	})
	eng, err := orderly.New(src, h,
		orderly.WithOrdering(orderly.ByKey()),
		orderly.WithMaxConcurrency(concurrency),
		orderly.WithMaxUncommitted(1000),
		orderly.WithLogger(quietLogger),
	)
	if err != nil {
		return err
	}
	return eng.Run(ctx)
}

// ---- plain sarama consumer group -----------------------------------------

// consumeSarama is sarama's documented consumer-group loop: Consume in a
// loop until ctx is done; ConsumeClaim handles the claim's messages one at
// a time and marks each after handling it; sarama's auto-commit (on by
// default, every second) commits the marks, and a final commit runs when
// the session ends.
func consumeSarama(ctx context.Context, brokers []string, topic, group string, _ int, handle func([]byte)) error {
	cfg := fastGroup(ibm.NewConfig())
	cg, err := ibm.NewConsumerGroup(brokers, group, cfg)
	if err != nil {
		return err
	}
	defer cg.Close()
	h := serialHandler{handle: handle}
	for {
		if err := cg.Consume(ctx, []string{topic}, h); err != nil {
			if errors.Is(err, ibm.ErrClosedConsumerGroup) {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

type serialHandler struct{ handle func([]byte) }

func (serialHandler) Setup(ibm.ConsumerGroupSession) error   { return nil }
func (serialHandler) Cleanup(ibm.ConsumerGroupSession) error { return nil }

func (h serialHandler) ConsumeClaim(sess ibm.ConsumerGroupSession, claim ibm.ConsumerGroupClaim) error {
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			h.handle(msg.Value)
			sess.MarkMessage(msg, "")
		case <-sess.Context().Done():
			return nil
		}
	}
}

// ---- watermill-kafka router ----------------------------------------------

// consumeWatermill is watermill's router with one consumer handler over a
// watermill-kafka subscriber in a consumer group: the subscriber hands a
// partition's next message to the router only after the previous one was
// acked (one in flight per partition); the router acks when the handler
// returns nil and the subscriber then marks the offset (sarama's
// auto-commit commits it).
func consumeWatermill(ctx context.Context, brokers []string, topic, group string, _ int, handle func([]byte)) error {
	saramaCfg := kafka.DefaultSaramaSubscriberConfig()
	fastGroup(saramaCfg) // includes Offsets.Initial = OffsetOldest, as watermill-kafka's docs show
	logger := watermill.NopLogger{}
	sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{
		Brokers:               brokers,
		Unmarshaler:           kafka.DefaultMarshaler{},
		OverwriteSaramaConfig: saramaCfg,
		ConsumerGroup:         group,
	}, logger)
	if err != nil {
		return err
	}
	defer sub.Close()
	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		return err
	}
	router.AddConsumerHandler("peers", topic, sub, func(msg *message.Message) error {
		handle(msg.Payload)
		return nil
	})
	ran := make(chan error, 1)
	go func() { ran <- router.Run(ctx) }()
	select {
	case err := <-ran:
		return err
	case <-ctx.Done():
	}
	if err := router.Close(); err != nil {
		return err
	}
	return <-ran
}

// ---- franz-go, goroutine per partition -----------------------------------

// consumeFranz is franz-go's documented goroutine-per-partition consumer
// (examples/goroutine_per_partition_consuming, autocommit_marks): a poll
// loop hands each partition's fetched records to that partition's
// goroutine, which handles them one at a time and marks each record after
// handling it; AutoCommitMarks commits the marks (every second here, as
// sarama), and the revoke callback commits them when partitions are
// revoked or the client leaves the group. BlockRebalanceOnPoll keeps the
// callbacks and the poll loop apart, so the consumer map needs no lock.
func consumeFranz(ctx context.Context, brokers []string, topic, group string, _ int, handle func([]byte)) error {
	s := &splitConsume{consumers: map[topicPartition]*pconsumer{}, handle: handle}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.lost),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(time.Second),
		kgo.BlockRebalanceOnPoll(),
		// The fast group settings, as for sarama.
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.HeartbeatInterval(100*time.Millisecond),
		kgo.SessionTimeout(3*time.Second),
	)
	if err != nil {
		return err
	}
	defer cl.Close() // leaves the group: revoked commits the marks
	return s.poll(ctx, cl)
}

type topicPartition struct {
	topic     string
	partition int32
}

type pconsumer struct {
	cl     *kgo.Client
	handle func([]byte)
	quit   chan struct{}
	done   chan struct{}
	recs   chan kgo.FetchTopicPartition
}

type splitConsume struct {
	consumers map[topicPartition]*pconsumer
	handle    func([]byte)
}

func (pc *pconsumer) consume() {
	defer close(pc.done)
	for {
		select {
		case <-pc.quit:
			return
		case p := <-pc.recs:
			for _, rec := range p.Records {
				pc.handle(rec.Value)
				pc.cl.MarkCommitRecords(rec)
			}
		}
	}
}

func (s *splitConsume) assigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	for topic, partitions := range assigned {
		for _, partition := range partitions {
			pc := &pconsumer{
				cl:     cl,
				handle: s.handle,
				quit:   make(chan struct{}),
				done:   make(chan struct{}),
				recs:   make(chan kgo.FetchTopicPartition, 5),
			}
			s.consumers[topicPartition{topic, partition}] = pc
			go pc.consume()
		}
	}
}

func (s *splitConsume) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	s.kill(revoked)
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		quietLogger.Warn("franz-go: commit on revoke failed", slog.Any("error", err))
	}
}

func (s *splitConsume) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.kill(lost) // a lost partition cannot be committed
}

// kill stops the partitions' goroutines and waits for them to finish the
// batch they are handling.
func (s *splitConsume) kill(partitions map[string][]int32) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for topic, ps := range partitions {
		for _, partition := range ps {
			tp := topicPartition{topic, partition}
			pc := s.consumers[tp]
			delete(s.consumers, tp)
			close(pc.quit)
			wg.Add(1)
			go func() { <-pc.done; wg.Done() }()
		}
	}
}

func (s *splitConsume) poll(ctx context.Context, cl *kgo.Client) error {
	for {
		fetches := cl.PollRecords(ctx, 10000)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			cl.AllowRebalance()
			return nil
		}
		var err error
		fetches.EachError(func(t string, p int32, e error) {
			err = errors.Join(err, fmt.Errorf("fetching %s/%d: %w", t, p, e))
		})
		if err != nil {
			cl.AllowRebalance()
			return err
		}
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			// With BlockRebalanceOnPoll the partition's consumer exists:
			// assigned runs before a new partition is fetched, revoked
			// removes it before polling is allowed again.
			s.consumers[topicPartition{p.Topic, p.Partition}].recs <- p
		})
		cl.AllowRebalance()
	}
}
