package main

import (
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"
)

// topicRecords reads every record of topic on brokers, from the first
// offset of each partition to its high water mark.
func topicRecords(t *testing.T, brokers []string, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	client, err := sarama.NewClient(brokers, saramaConfig(true))
	require.NoError(t, err)
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	require.NoError(t, err)
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	require.NoError(t, err)
	var out []*sarama.ConsumerMessage
	for _, p := range parts {
		oldest, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		require.NoError(t, err)
		newest, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		require.NoError(t, err)
		if newest <= oldest {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, oldest)
		require.NoError(t, err)
		for m := range pc.Messages() {
			out = append(out, m)
			if m.Offset >= newest-1 {
				break
			}
		}
		require.NoError(t, pc.Close())
	}
	return out
}

// requireTransactionIDs checks that every record of every topic, the
// dead-letter topics included, carries the transaction-id header, equal to
// its key (the report id); it returns the record count per topic.
func requireTransactionIDs(t *testing.T, brokers []string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, topic := range allTopics() {
		for _, m := range topicRecords(t, brokers, topic) {
			var tx []byte
			for _, h := range m.Headers {
				if string(h.Key) == headerTransactionID {
					tx = h.Value
				}
			}
			require.NotEmpty(t, tx, "%s/%d@%d has a transaction id", topic, m.Partition, m.Offset)
			require.Equal(t, string(m.Key), string(tx), "%s/%d@%d: the transaction id is the report id", topic, m.Partition, m.Offset)
			counts[topic]++
		}
	}
	return counts
}
