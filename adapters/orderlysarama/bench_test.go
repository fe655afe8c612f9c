package orderlysarama_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/orderly-go/orderly"
)

// The adapter's overhead over a raw sarama consumer group on the same
// kfake cluster and records: each iteration consumes every record once, in
// a fresh group. Compare the records/s of the two.
//
//	go test -run '^$' -bench . ./adapters/orderlysarama

const benchPartitions, benchRecords = 4, 50_000

func benchCluster(b *testing.B) *kfake.Cluster {
	c := cluster(b, 1, benchPartitions, "bench")
	cfg := config(nil)
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer(c.ListenAddrs(), cfg)
	require.NoError(b, err)
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, 0, 1000)
	for i := range benchRecords {
		m := newBenchMessage(i)
		msgs = append(msgs, m)
		if len(msgs) == cap(msgs) {
			require.NoError(b, p.SendMessages(msgs))
			msgs = msgs[:0]
		}
	}
	return c
}

func newBenchMessage(i int) *sarama.ProducerMessage {
	m := &sarama.ProducerMessage{Topic: "bench", Partition: int32(i % benchPartitions),
		Key: sarama.StringEncoder("k" + strconv.Itoa(i%100)), Value: sarama.ByteEncoder(make([]byte, 100)),
		Headers: []sarama.RecordHeader{{Key: []byte("traceparent"), Value: []byte("00-0123456789abcdef0123456789abcdef-0123456789abcdef-01")}}}
	return m
}

func BenchmarkRawSarama(b *testing.B) {
	c := benchCluster(b)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		var n atomic.Int64
		ctx, cancel := context.WithCancel(context.Background())
		group, err := sarama.NewConsumerGroup(c.ListenAddrs(), "raw"+strconv.Itoa(i), config(nil))
		require.NoError(b, err)
		h := rawHandler{n: &n, cancel: cancel}
		for ctx.Err() == nil {
			require.NoError(b, group.Consume(ctx, []string{"bench"}, h))
		}
		require.NoError(b, group.Close())
	}
	b.ReportMetric(float64(benchRecords*b.N)/b.Elapsed().Seconds(), "records/s")
}

type rawHandler struct {
	n      *atomic.Int64
	cancel context.CancelFunc
}

func (rawHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (rawHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h rawHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-c.Messages():
			if !ok {
				return nil
			}
			_ = m
			if h.n.Add(1) == benchRecords {
				h.cancel()
			}
		case <-s.Context().Done():
			return nil
		}
	}
}

func BenchmarkAdapter(b *testing.B) {
	c := benchCluster(b)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		var n atomic.Int64
		ctx, cancel := context.WithCancel(context.Background())
		src := newSource(b, c, "adapter"+strconv.Itoa(i), config(nil), "bench")
		err := src.Consume(ctx, func(cl orderly.Claim) {
			for {
				select {
				case b, ok := <-cl.Records():
					if !ok {
						return
					}
					if n.Add(int64(len(b))) >= benchRecords {
						cancel()
					}
				case <-cl.Revoked():
					return
				}
			}
		})
		require.NoError(b, err)
	}
	b.ReportMetric(float64(benchRecords*b.N)/b.Elapsed().Seconds(), "records/s")
}
