package orderlysarama_test

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/adaptertest"
	"github.com/orderly-go/orderly/adapters/orderlysarama"
)

// Conformance members read ahead little, so that the pause test can see a
// pause: sarama's channel holds conformanceBuffer messages and a fetch
// response at most conformanceFetchBytes (a few records of the suite).
const (
	conformanceBuffer     = 8
	conformanceFetchBytes = 256
	// conformanceSlack: sarama's channel, the claim's Records buffer (64)
	// and the record being converted, and one fetch response.
	conformanceSlack = conformanceBuffer + 64 + 1 + 16
	// conformanceRebalanceTimeout: see NewMember.
	conformanceRebalanceTimeout = 30 * time.Second
)

func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("kfake conformance run skipped in -short mode")
	}
	c := cluster(t, 3, 1, "unused")
	adaptertest.TestSource(t, adaptertest.Features{Crash: true, PlantCommit: true, Reread: true, Slow: true, PauseSlack: conformanceSlack, RecordsPerTest: 300},
		func(t *testing.T) adaptertest.Cluster { return conformanceCluster{c} })
}

// conformanceCluster is the adaptertest glue over a kfake cluster.
type conformanceCluster struct{ c *kfake.Cluster }

func (k conformanceCluster) CreateTopic(t *testing.T, topic string, partitions int) {
	admin, err := sarama.NewClusterAdmin(k.c.ListenAddrs(), orderlysarama.DefaultConfig())
	require.NoError(t, err)
	defer admin.Close()
	require.NoError(t, admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: int32(partitions), ReplicationFactor: 1}, false))
}

func (k conformanceCluster) Produce(t *testing.T, topic string, partition int32, msgs ...adaptertest.Message) []int64 {
	cfg := orderlysarama.DefaultConfig()
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer(k.c.ListenAddrs(), cfg)
	require.NoError(t, err)
	defer p.Close()
	offsets := make([]int64, len(msgs))
	for i, m := range msgs {
		pm := orderlysarama.NewProducerMessage(topic, m.Key, m.Value)
		pm.Partition = partition
		_, offsets[i], err = p.SendMessage(pm)
		require.NoError(t, err)
	}
	return offsets
}

func (k conformanceCluster) NewMember(t *testing.T, group string, topics ...string) adaptertest.Member {
	cfg := config(nil)
	cfg.ChannelBufferSize = conformanceBuffer
	cfg.Consumer.Fetch.Default = conformanceFetchBytes
	// Above the suite's revoke timeout (a quarter of its 60 s bound) plus
	// a final commit: the rebalance test revokes partitions whose handlers
	// wait at its gate until the revoke timeout cancels them, and sarama
	// ends the session of a member whose revoked ConsumeClaim has not
	// returned within the rebalance timeout (the package documentation,
	// Rebalances).
	cfg.Consumer.Group.Rebalance.Timeout = conformanceRebalanceTimeout
	// Crash makes the member vanish as a killed process would: its
	// connections drop and it can dial no more, so nothing it commits
	// afterwards is stored, and the group hands its partitions over after
	// the session timeout.
	d := newFaultDialer()
	return member{newSource(t, k.c, group, d.use(cfg), topics...), d}
}

func (k conformanceCluster) Committed(t *testing.T, group, topic string, partition int32) (orderly.Position, bool) {
	admin, err := sarama.NewClusterAdmin(k.c.ListenAddrs(), orderlysarama.DefaultConfig())
	require.NoError(t, err)
	defer admin.Close()
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {partition}})
	require.NoError(t, err)
	b := resp.GetBlock(topic, partition)
	require.NotNil(t, b)
	require.Equal(t, sarama.ErrNoError, b.Err)
	if b.Offset < 0 {
		return orderly.Position{}, false
	}
	return orderly.Position{Offset: b.Offset, Metadata: b.Metadata}, true
}

func (k conformanceCluster) SetCommitted(t *testing.T, group, topic string, partition int32, pos orderly.Position) {
	commitAs(t, k.c, group, topic, partition, pos)
}

// member is a Source that can vanish.
type member struct {
	*orderlysarama.Source
	dialer *faultDialer
}

func (m member) Crash() { m.dialer.Vanish() }
