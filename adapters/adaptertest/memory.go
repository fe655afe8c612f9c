package adaptertest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
)

// MemoryCluster is the Cluster over an adapters/memory log. adapters/memory
// runs the suite with it; a test that wraps memory members (to break them
// on purpose, say) can embed it and replace NewMember.
type MemoryCluster struct {
	Log *memory.Log
	// FetchBuffer is the members' fetch buffer (memory.WithFetchBuffer),
	// which is also how many records may arrive after a Pause: use it as
	// Features.PauseSlack.
	FetchBuffer int
}

// NewMemoryCluster returns a MemoryCluster over a new, empty log.
func NewMemoryCluster(fetchBuffer int) MemoryCluster {
	return MemoryCluster{Log: memory.NewLog(), FetchBuffer: fetchBuffer}
}

// CreateTopic creates topic with partitions partitions.
func (c MemoryCluster) CreateTopic(t *testing.T, topic string, partitions int) {
	require.NoError(t, c.Log.CreateTopic(topic, partitions))
}

// Produce appends msgs to the partition and returns their offsets.
func (c MemoryCluster) Produce(t *testing.T, topic string, partition int32, msgs ...Message) []int64 {
	offsets := make([]int64, len(msgs))
	for i, m := range msgs {
		o, err := c.Log.ProduceTo(topic, partition, m.Key, m.Value)
		require.NoError(t, err)
		offsets[i] = o
	}
	return offsets
}

// NewMember returns a *memory.Member: it has Consume, Crash and Paused.
func (c MemoryCluster) NewMember(t *testing.T, group string, topics ...string) Member {
	return c.Log.Member(group, topics, memory.WithFetchBuffer(c.FetchBuffer))
}

// Committed is the group's committed position for the partition.
func (c MemoryCluster) Committed(t *testing.T, group, topic string, partition int32) (orderly.Position, bool) {
	return c.Log.Committed(group, topic, partition)
}

// SetCommitted plants a committed position.
func (c MemoryCluster) SetCommitted(t *testing.T, group, topic string, partition int32, pos orderly.Position) {
	c.Log.SetCommitted(group, topic, partition, pos)
}
