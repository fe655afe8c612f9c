package orderlykgo_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderly-go/orderly"
)

// The adapter's overhead over a raw kgo consumer group on the same kfake
// cluster and records: each iteration consumes every record once, in a
// fresh group. Compare the records/s of the two.
//
//	go test -run '^$' -bench . ./adapters/orderlykgo

const benchPartitions, benchRecords = 4, 200_000

func benchCluster(b *testing.B) *kfake.Cluster {
	c := cluster(b, 1, benchPartitions, "bench")
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.DefaultProduceTopic("bench"), kgo.ProducerBatchMaxBytes(1<<20))
	require.NoError(b, err)
	defer cl.Close()
	value := make([]byte, 100)
	for i := range benchRecords {
		cl.Produce(context.Background(), &kgo.Record{Partition: int32(i % benchPartitions), Key: []byte("k" + strconv.Itoa(i%100)), Value: value,
			Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-0123456789abcdef0123456789abcdef-0123456789abcdef-01")}}}, nil)
	}
	require.NoError(b, cl.Flush(context.Background()))
	return c
}

func BenchmarkRawFranz(b *testing.B) {
	c := benchCluster(b)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		cl, err := kgo.NewClient(groupOpts(c, "raw"+strconv.Itoa(i), "bench")...)
		require.NoError(b, err)
		n := 0
		for n < benchRecords {
			fs := cl.PollFetches(context.Background())
			fs.EachRecord(func(*kgo.Record) { n++ })
		}
		cl.Close()
	}
	b.ReportMetric(float64(benchRecords*b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkAdapter(b *testing.B) {
	c := benchCluster(b)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		var n atomic.Int64
		ctx, cancel := context.WithCancel(context.Background())
		src := newSource(b, groupOpts(c, "adapter"+strconv.Itoa(i), "bench"))
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
		cancel()
	}
	b.ReportMetric(float64(benchRecords*b.N)/b.Elapsed().Seconds(), "records/s")
}
