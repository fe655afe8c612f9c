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

// stepCommits is what one step's group has committed: the offset per
// partition of its topic (-1: nothing).
type stepCommits struct {
	step      *step
	committed []int64
}

// committed reads back from the cluster what every step's group has
// committed.
func (a *app) committed() ([]stepCommits, error) {
	client, err := sarama.NewClient(a.cfg.brokers, saramaConfig(a.cfg.fastKafka))
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("admin client: %w", err)
	}
	defer admin.Close() // closes client too
	var out []stepCommits
	for _, s := range a.steps {
		parts, err := client.Partitions(s.topic)
		if err != nil {
			return nil, fmt.Errorf("partitions of %s: %w", s.topic, err)
		}
		resp, err := admin.ListConsumerGroupOffsets(s.group, map[string][]int32{s.topic: parts})
		if err != nil {
			return nil, fmt.Errorf("offsets of group %s: %w", s.group, err)
		}
		sc := stepCommits{step: s, committed: make([]int64, len(parts))}
		for _, p := range parts {
			sc.committed[p] = -1
			if b := resp.GetBlock(s.topic, p); b != nil && errors.Is(b.Err, sarama.ErrNoError) {
				sc.committed[p] = b.Offset
			}
		}
		out = append(out, sc)
	}
	return out, nil
}
