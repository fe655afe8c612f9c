package main

import (
	"fmt"
	"hash/fnv"

	"github.com/IBM/sarama"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/orderlykgo"
	"github.com/orderly-go/orderly/adapters/orderlysarama"
)

func init() {
	columns["hot-key-kafka"] = append([]column{colClient}, columns["hot-key"]...)
}

// runHotKeyKafka is hot-key through Kafka: the same workloads, with and
// without the hot key, each produced to a topic of its own with 4
// partitions on one kfake cluster (a record's partition is the FNV-1a hash
// of its key, as the memory log picks it), consumed with the default
// buffers over each client's adapter (-client), each run with a group of
// its own. The adapters re-read a partition for its spilled keys with a
// second consumer (sarama: a partition consumer from the same client;
// franz-go: a direct-consuming client).
func runHotKeyKafka(o *options, out *printer) error {
	clients, err := kafkaClients(o)
	if err != nil {
		return err
	}
	n := o.recordsOr(20000)
	if !(o.hotShare > 0 && o.hotShare < 1) {
		return fmt.Errorf("-hot-share %v: must be in (0, 1)", o.hotShare)
	}
	c, err := newKafkaCluster(hotKeyPartitions)
	if err != nil {
		return err
	}
	defer c.Close()
	admin, err := sarama.NewClusterAdmin(c.ListenAddrs(), orderlysarama.DefaultConfig())
	if err != nil {
		return err
	}
	defer admin.Close()
	cfg := hotConfigs[0] // default buffers
	for _, client := range clients {
		var rows [2]Result
		for i, withHot := range []bool{false, true} {
			w := makeHotWorkload(n, o.hotShare, withHot)
			topic := fmt.Sprintf("hot-%s-%v", client, withHot)
			if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: hotKeyPartitions, ReplicationFactor: 1}, false); err != nil {
				return fmt.Errorf("hot-key-kafka: create topic: %w", err)
			}
			err := kafkaProduce(c.ListenAddrs(), len(w.keys), 1, func(i int) *sarama.ProducerMessage {
				key := hotKey(w.keys[i])
				h := fnv.New32a()
				h.Write(key)
				return &sarama.ProducerMessage{Topic: topic, Partition: int32(h.Sum32() % hotKeyPartitions),
					Key: sarama.ByteEncoder(key), Value: sarama.ByteEncoder(indexValue(i))}
			})
			if err != nil {
				return fmt.Errorf("hot-key-kafka: %w", err)
			}
			group := "bench-" + topic
			var src orderly.Source
			if client == clientFranz {
				src, err = orderlykgo.NewSource(kafkaFranzOpts(c.ListenAddrs(), group, topic), orderlykgo.WithLogger(quietLogger))
			} else {
				src, err = orderlysarama.NewSource(c.ListenAddrs(), group, []string{topic}, kafkaConsumerConfig(), orderlysarama.WithLogger(quietLogger))
			}
			if err != nil {
				return err
			}
			r, err := measureHotRow(o, "hot-key-kafka", src, w, cfg)
			if err != nil {
				return fmt.Errorf("hot-key-kafka over %s, hot key %v: %w", client, withHot, err)
			}
			r.Client = client
			rows[i] = r
		}
		rows[1].Ratio = rows[1].OtherRecordsPerSec / rows[0].OtherRecordsPerSec
		out.add(rows[0])
		out.add(rows[1])
	}
	out.flush(fmt.Sprintf("hot-key-kafka: hot-key on kfake via adapters/orderlysarama (sarama) and adapters/orderlykgo (franz-go): %d keys, %d partitions, handler sleeps %v, concurrency %d, default buffers (target ratio ≥ 0.8)",
		hotKeyKeys, hotKeyPartitions, hotKeyLatency, o.concurrency))
	return nil
}
