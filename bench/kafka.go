package main

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderly-go/orderly/adapters/orderlysarama"
)

// The Kafka scenarios (kafka-overhead, pc-table-kafka) run on a kfake
// cluster in this process, spoken to over loopback TCP by each of the two
// clients orderly has an adapter for, sarama (adapters/orderlysarama) and
// franz-go (adapters/orderlykgo): the same path a service takes to a real
// cluster, minus the network.

func init() {
	columns["kafka-overhead"] = []column{colClient, colMode, colParts, colRecs, colSecs, colRate, colStart, colRatio, colNote}
	columns["pc-table-kafka"] = []column{colClient, colMode, colKeys, colRecs, colSecs, colLimit, colNomLim, colEff, colNomEff, colStart}
}

// Kafka clients, as the Result.Client column names them.
const (
	clientSarama = "sarama"
	clientFranz  = "franz-go"
)

// kafkaClients returns the clients -client asks for: sarama, franz or both.
func kafkaClients(o *options) ([]string, error) {
	switch o.client {
	case "sarama":
		return []string{clientSarama}, nil
	case "franz":
		return []string{clientFranz}, nil
	case "", "both":
		return []string{clientSarama, clientFranz}, nil
	}
	return nil, fmt.Errorf("-client: %q is not sarama, franz or both", o.client)
}

// newKafkaCluster starts a one-broker kfake cluster with the topics seeded
// with partitions partitions.
func newKafkaCluster(partitions int32, topics ...string) (*kfake.Cluster, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100 * time.Millisecond)}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(partitions, topics...))
	}
	return kfake.NewCluster(opts...)
}

// kafkaConsumerConfig is the sarama config both orderly's source and the
// raw consumer group use: adapters/orderlysarama's defaults with the fast group
// settings (the cluster is local).
func kafkaConsumerConfig() *sarama.Config {
	cfg := orderlysarama.DefaultConfig()
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	cfg.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Retry.Backoff = 50 * time.Millisecond
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	return cfg
}

// kafkaFranzOpts are the kgo options both orderly's franz-go source and
// the raw franz-go group use: a consumer group with the fast group
// settings (the cluster is local); kgo starts a new group at the start of
// each partition.
func kafkaFranzOpts(brokers []string, group, topic string) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.HeartbeatInterval(100 * time.Millisecond),
	}
}

// kafkaProduce sends n records made by msg(i) with a few SyncProducers
// sending batches in parallel (messages of one partition keep their
// order only within a batch; the scenarios here do not depend on order
// across batches unless workers is 1). No compression.
func kafkaProduce(brokers []string, n, workers int, msg func(i int) *sarama.ProducerMessage) error {
	cfg := orderlysarama.DefaultConfig()
	cfg.Producer.Return.Successes = true
	cfg.Producer.Compression = sarama.CompressionNone
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Flush.MaxMessages = 0
	cfg.Producer.MaxMessageBytes = 4 << 20
	const batch = 5000
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		next int
	)
	for range workers {
		wg.Go(func() {
			p, err := sarama.NewSyncProducer(brokers, cfg)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			defer p.Close()
			for {
				mu.Lock()
				from := next
				next += batch
				mu.Unlock()
				if from >= n {
					return
				}
				msgs := make([]*sarama.ProducerMessage, min(batch, n-from))
				for i := range msgs {
					msgs[i] = msg(from + i)
				}
				if err := p.SendMessages(msgs); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("produce: %w", errs[0])
	}
	return nil
}

// randomValues returns n random values of size bytes, seeded, backed by
// one allocation.
func randomValues(n, size int, seed uint64) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 0x7a1))
	buf := make([]byte, n*size)
	for i := 0; i+8 <= len(buf); i += 8 {
		v := rng.Uint64()
		for k := range 8 {
			buf[i+k] = byte(v >> (8 * k))
		}
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = buf[i*size : (i+1)*size : (i+1)*size]
	}
	return out
}
