package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/orderlysarama"
	"github.com/orderly-go/orderly/tracing"
)

// saramaClient is the demo's Kafka client through adapters/orderlysarama.
type saramaClient struct {
	brokers  []string
	src      *orderlysarama.Source
	producer *orderlysarama.Producer
}

func newSaramaClient(set kafkaSettings) (_ kafkaClient, err error) {
	c := &saramaClient{brokers: set.brokers}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	cfg := orderlysarama.DefaultConfig()
	if set.embedded {
		// Fast group settings: the cluster is local and fresh.
		cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
		cfg.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
		cfg.Consumer.Group.Rebalance.Retry.Backoff = 50 * time.Millisecond
		cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	}
	if set.newest {
		cfg.Consumer.Offsets.Initial = sarama.OffsetNewest
	}
	c.src, err = orderlysarama.NewSource(set.brokers, set.group, []string{topic}, cfg, orderlysarama.WithLogger(set.log))
	if err != nil {
		return nil, err
	}
	c.producer, err = orderlysarama.NewProducer(set.brokers, orderlysarama.DefaultConfig(),
		orderlysarama.WithInject(func(ctx context.Context, h orderlysarama.ProducerHeaders) { tracing.Inject(ctx, h) }))
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ensureTopicSarama creates the topic and its dead-letter topic on a real
// cluster with partitions partitions (and the broker's default replication
// factor) if they do not exist, and returns the topic's partition count.
func ensureTopicSarama(brokers []string, partitions int, log *slog.Logger) (int, error) {
	admin, err := sarama.NewClusterAdmin(brokers, orderlysarama.DefaultConfig())
	if err != nil {
		return 0, fmt.Errorf("admin client: %w", err)
	}
	defer admin.Close()
	topics, err := admin.ListTopics()
	if err != nil {
		return 0, fmt.Errorf("list topics: %w", err)
	}
	if d, ok := topics[topic]; ok {
		if int(d.NumPartitions) != partitions {
			warnPartitions(log, int(d.NumPartitions))
		}
		partitions = int(d.NumPartitions)
	}
	for _, name := range []string{topic, deadLetterTopic} {
		if _, ok := topics[name]; ok {
			continue
		}
		err = admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: int32(partitions), ReplicationFactor: -1}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return 0, fmt.Errorf("create topic %s: %w", name, err)
		}
	}
	return partitions, nil
}

func (c *saramaClient) adapter() string        { return "adapters/orderlysarama" }
func (c *saramaClient) source() orderly.Source { return c.src }

func (c *saramaClient) produce(ctx context.Context, topic string, key, value []byte, headers ...orderly.Header) (int32, int64, error) {
	return c.producer.Produce(ctx, topic, key, value, headers...)
}

func (c *saramaClient) deadLetterSink() orderly.DeadLetterSink {
	sink, err := orderlysarama.NewDeadLetterSink(c.producer)
	if err != nil {
		panic(err) // only for a nil producer, which newSaramaClient never leaves
	}
	return sink
}

func (c *saramaClient) committed(_ context.Context, group string, partitions int) ([]int64, error) {
	admin, err := sarama.NewClusterAdmin(c.brokers, orderlysarama.DefaultConfig())
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	parts := make([]int32, partitions)
	for i := range parts {
		parts[i] = int32(i)
	}
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if err != nil {
		return nil, err
	}
	out := make([]int64, partitions)
	for i := range out {
		out[i] = -1
		if blk := resp.GetBlock(topic, int32(i)); blk != nil && errors.Is(blk.Err, sarama.ErrNoError) {
			out[i] = blk.Offset
		}
	}
	return out, nil
}

func (c *saramaClient) close() {
	if c.producer != nil {
		_ = c.producer.Close()
	}
}
