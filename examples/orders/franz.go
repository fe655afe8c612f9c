package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/orderlykgo"
	"github.com/orderly-go/orderly/tracing"
)

// franzClient is the demo's Kafka client through adapters/orderlykgo
// (franz-go's kgo).
type franzClient struct {
	src      *orderlykgo.Source
	producer *orderlykgo.Producer
	admin    *kadm.Client
}

func newFranzClient(set kafkaSettings) (_ kafkaClient, err error) {
	c := &franzClient{}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	kopts := []kgo.Opt{
		kgo.SeedBrokers(set.brokers...),
		kgo.ConsumerGroup(set.group),
		kgo.ConsumeTopics(topic),
	}
	if set.embedded {
		// Fast group settings: the cluster is local and fresh.
		kopts = append(kopts, kgo.FetchMaxWait(100*time.Millisecond), kgo.HeartbeatInterval(100*time.Millisecond))
	}
	if set.newest {
		kopts = append(kopts, kgo.ConsumeStartOffset(kgo.NewOffset().AtEnd()))
	}
	c.src, err = orderlykgo.NewSource(kopts, orderlykgo.WithLogger(set.log))
	if err != nil {
		return nil, err
	}
	c.producer, err = orderlykgo.NewProducer([]kgo.Opt{kgo.SeedBrokers(set.brokers...)},
		orderlykgo.WithInject(func(ctx context.Context, h orderlykgo.RecordHeaders) { tracing.Inject(ctx, h) }))
	if err != nil {
		return nil, err
	}
	c.admin = kadm.NewClient(c.producer.Client())
	return c, nil
}

// ensureTopicFranz creates the topic and its dead-letter topic on a real
// cluster with partitions partitions (and the broker's default replication
// factor) if they do not exist, and returns the topic's partition count.
func ensureTopicFranz(brokers []string, partitions int, log *slog.Logger) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return 0, fmt.Errorf("admin client: %w", err)
	}
	defer cl.Close()
	admin := kadm.NewClient(cl)
	ctx := context.Background()
	details, err := admin.ListTopics(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("list topics: %w", err)
	}
	if d, ok := details[topic]; ok && d.Err == nil {
		if len(d.Partitions) != partitions {
			warnPartitions(log, len(d.Partitions))
		}
		partitions = len(d.Partitions)
	}
	for _, name := range []string{topic, deadLetterTopic} {
		_, err := admin.CreateTopic(ctx, int32(partitions), -1, nil, name)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return 0, fmt.Errorf("create topic %s: %w", name, err)
		}
	}
	return partitions, nil
}

func (c *franzClient) adapter() string        { return "adapters/orderlykgo" }
func (c *franzClient) source() orderly.Source { return c.src }

func (c *franzClient) produce(ctx context.Context, topic string, key, value []byte, headers ...orderly.Header) (int32, int64, error) {
	return c.producer.Produce(ctx, topic, key, value, headers...)
}

func (c *franzClient) deadLetterSink() orderly.DeadLetterSink {
	sink, err := orderlykgo.NewDeadLetterSink(c.producer)
	if err != nil {
		panic(err) // only for a nil producer, which newFranzClient never leaves
	}
	return sink
}

func (c *franzClient) committed(ctx context.Context, group string, partitions int) ([]int64, error) {
	resp, err := c.admin.FetchOffsets(ctx, group)
	if err != nil {
		return nil, err
	}
	out := make([]int64, partitions)
	for i := range out {
		out[i] = -1
		if o, ok := resp.Lookup(topic, int32(i)); ok && o.Err == nil {
			out[i] = o.At
		}
	}
	return out, nil
}

func (c *franzClient) close() {
	if c.producer != nil {
		c.producer.Close()
	}
}
