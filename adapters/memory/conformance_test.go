package memory_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/adaptertest"
	"github.com/orderly-go/orderly/adapters/memory"
)

// conformanceFetchBuffer is the members' fetch buffer, and so the most
// records that may arrive after Pause.
const conformanceFetchBuffer = 16

func TestConformance(t *testing.T) {
	adaptertest.TestSource(t, adaptertest.Features{Crash: true, PlantCommit: true, PauseSlack: conformanceFetchBuffer},
		func(t *testing.T) adaptertest.Cluster { return conformanceCluster{memory.NewLog()} })
}

// conformanceCluster is the adaptertest glue over a memory.Log.
type conformanceCluster struct{ log *memory.Log }

func (c conformanceCluster) CreateTopic(t *testing.T, topic string, partitions int) {
	require.NoError(t, c.log.CreateTopic(topic, partitions))
}

func (c conformanceCluster) Produce(t *testing.T, topic string, partition int32, msgs ...adaptertest.Message) []int64 {
	offsets := make([]int64, len(msgs))
	for i, m := range msgs {
		o, err := c.log.ProduceTo(topic, partition, m.Key, m.Value)
		require.NoError(t, err)
		offsets[i] = o
	}
	return offsets
}

// NewMember returns a *memory.Member: it has Consume, Crash and Paused.
func (c conformanceCluster) NewMember(t *testing.T, group string, topics ...string) adaptertest.Member {
	return c.log.Member(group, topics, memory.WithFetchBuffer(conformanceFetchBuffer))
}

func (c conformanceCluster) Committed(t *testing.T, group, topic string, partition int32) (orderly.Position, bool) {
	return c.log.Committed(group, topic, partition)
}

func (c conformanceCluster) SetCommitted(t *testing.T, group, topic string, partition int32, pos orderly.Position) {
	c.log.SetCommitted(group, topic, partition, pos)
}
