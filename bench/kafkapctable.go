package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/IBM/sarama"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/orderlykgo"
	"github.com/orderly-go/orderly/adapters/orderlysarama"
	"github.com/orderly-go/orderly/bench/internal/report"
)

// runPCTableKafka is pc-table through Kafka: the same rows, latencies and
// engine options as pc-table, with each row's records produced to a topic
// of its own (1 partition) on one kfake cluster and consumed by orderly
// over each client's adapter (adapters/orderlysarama, adapters/orderlykgo),
// each with a group of its own. Efficiency is measured as in pc-table:
// seconds run from the first handler start to the last handler return; the
// group join and the client's first fetch are startup_s.
func runPCTableKafka(o *options, out *printer) error {
	clients, err := kafkaClients(o)
	if err != nil {
		return err
	}
	rows, err := parseRows(o.rows)
	if err != nil {
		return err
	}
	n := o.recordsOr(10000)
	lat := report.Latencies(n, o.seed)
	c, err := newKafkaCluster(1)
	if err != nil {
		return err
	}
	defer c.Close()
	admin, err := sarama.NewClusterAdmin(c.ListenAddrs(), orderlysarama.DefaultConfig())
	if err != nil {
		return err
	}
	defer admin.Close()
	for i, row := range rows {
		topic := fmt.Sprintf("pc-%d-%s", i, row)
		if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
			return fmt.Errorf("pc-table-kafka %s: create topic: %w", row, err)
		}
		keys := keySequence(row, n, o.seed)
		err := kafkaProduce(c.ListenAddrs(), n, 1, func(i int) *sarama.ProducerMessage {
			return &sarama.ProducerMessage{Topic: topic, Partition: 0, Key: sarama.StringEncoder(strconv.Itoa(keys[i])), Value: sarama.ByteEncoder(indexValue(i))}
		})
		if err != nil {
			return fmt.Errorf("pc-table-kafka %s: %w", row, err)
		}
		for _, client := range clients {
			r, err := runPCRowKafka(o, c.ListenAddrs(), client, topic, row, lat, keys)
			if err != nil {
				return fmt.Errorf("pc-table-kafka %s over %s: %w", row, client, err)
			}
			out.add(r)
		}
	}
	out.flush(fmt.Sprintf("pc-table-kafka: %d records, sleep U[0,5ms), 1 partition on kfake via adapters/orderlysarama (sarama) and adapters/orderlykgo (franz-go), concurrency %d, max uncommitted 1000 (target efficiency ≥ 0.9 over sarama, ≥ 0.95 over franz-go)",
		n, o.concurrency))
	return nil
}

// runPCRowKafka runs one row over client on topic, which holds the row's
// records, with a consumer group of its own.
func runPCRowKafka(o *options, brokers []string, client, topic string, row pcRow, lat []time.Duration, keys []int) (Result, error) {
	group := "bench-" + client + "-" + topic
	var src orderly.Source
	var err error
	if client == clientFranz {
		src, err = orderlykgo.NewSource(kafkaFranzOpts(brokers, group, topic), orderlykgo.WithLogger(quietLogger))
	} else {
		src, err = orderlysarama.NewSource(brokers, group, []string{topic}, kafkaConsumerConfig(), orderlysarama.WithLogger(quietLogger))
	}
	if err != nil {
		return Result{}, err
	}
	r, err := measurePCRow(o, "pc-table-kafka", src, row, lat, keys)
	r.Client = client
	return r, err
}
