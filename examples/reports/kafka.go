package main

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/orderly-go/orderly/adapters/orderlysarama"
)

// startEmbeddedCluster starts an in-process Kafka cluster (kfake, which
// speaks the Kafka protocol over loopback TCP) with every topic of the
// service created with partitions partitions.
func startEmbeddedCluster(partitions int) (*kfake.Cluster, error) {
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.SeedTopics(int32(partitions), allTopics()...),
		kfake.GroupMinSessionTimeout(100*time.Millisecond),
	)
	if err != nil {
		return nil, fmt.Errorf("embedded cluster: %w", err)
	}
	return c, nil
}

// saramaConfig is the configuration of every consumer and of the producer.
// fast selects short waits, for the embedded cluster: it is local and
// fresh, so joining a group and fetching need not wait for anyone.
func saramaConfig(fast bool) *sarama.Config {
	cfg := orderlysarama.DefaultConfig() // Offsets.Initial = OffsetOldest: a new group reads from the start
	// A POST is answered only once its record is durable: every in-sync
	// replica has it.
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	if fast {
		cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
		cfg.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
		cfg.Consumer.Group.Rebalance.Retry.Backoff = 50 * time.Millisecond
		cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	}
	return cfg
}

// ensureTopics creates the service's topics that are missing on a real
// cluster, with partitions partitions and the broker's default replication
// factor. Existing topics are used as they are.
func ensureTopics(brokers []string, partitions int, log *slog.Logger) error {
	admin, err := sarama.NewClusterAdmin(brokers, saramaConfig(false))
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	defer admin.Close()
	existing, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	for _, name := range allTopics() {
		if _, ok := existing[name]; ok {
			continue
		}
		err := admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: int32(partitions), ReplicationFactor: -1}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", name, err)
		}
		log.Info("created topic", slog.String("topic", name), slog.Int("partitions", partitions))
	}
	return nil
}
