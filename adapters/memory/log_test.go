package memory_test

import (
	"fmt"
	"hash/fnv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
)

func fnvPartition(key []byte, partitions int) int32 {
	h := fnv.New32a()
	h.Write(key)
	return int32(h.Sum32() % uint32(partitions))
}

func TestProduceHashesKeysToPartitions(t *testing.T) {
	l := memory.NewLog()
	require.NoError(t, l.CreateTopic("t", 5))
	next := make([]int64, 5)
	for i := range 200 {
		key := fmt.Appendf(nil, "key-%d", i%37)
		p, off, err := l.Produce("t", key, []byte("v"))
		require.NoError(t, err)
		require.Equal(t, fnvPartition(key, 5), p, "key %s", key)
		require.Equal(t, next[p], off, "offsets are contiguous from 0")
		next[p]++
	}
	for p := range int32(5) {
		end, err := l.EndOffset("t", p)
		require.NoError(t, err)
		assert.Equal(t, next[p], end)
	}
}

func TestProduceNilKeyGoesRoundRobin(t *testing.T) {
	l := memory.NewLog()
	require.NoError(t, l.CreateTopic("t", 3))
	for i := range 9 {
		p, _, err := l.Produce("t", nil, []byte("v"))
		require.NoError(t, err)
		assert.Equal(t, int32(i%3), p)
	}
	// An empty key is a key, not "no key".
	p1, _, err := l.Produce("t", []byte{}, nil)
	require.NoError(t, err)
	p2, _, err := l.Produce("t", []byte{}, nil)
	require.NoError(t, err)
	assert.Equal(t, p1, p2)
	assert.Equal(t, fnvPartition(nil, 3), p1)
}

func TestProduceCopiesAndFillsTheRecord(t *testing.T) {
	l := memory.NewLog()
	require.NoError(t, l.CreateTopic("t", 2))
	key, value, hv := []byte("k"), []byte("value"), []byte("hv")
	off, err := l.ProduceTo("t", 1, key, value, orderly.Header{Key: "h", Value: hv})
	require.NoError(t, err)
	require.Equal(t, int64(0), off)
	key[0], value[0], hv[0] = 'X', 'X', 'X'

	r, err := l.ProduceRecord(orderly.Record{Topic: "t", Partition: -1, Key: []byte("k")})
	require.NoError(t, err)
	assert.Equal(t, fnvPartition([]byte("k"), 2), r.Partition)
	assert.False(t, r.Timestamp.IsZero())

	got := readOne(t, l, "t", 1)
	assert.Equal(t, "t", got.Topic)
	assert.Equal(t, int32(1), got.Partition)
	assert.Equal(t, int64(0), got.Offset)
	assert.Equal(t, "k", string(got.Key))
	assert.Equal(t, "value", string(got.Value))
	v, ok := got.Header("h")
	assert.True(t, ok)
	assert.Equal(t, "hv", string(v))
	assert.False(t, got.Timestamp.IsZero())
}

// readOne consumes the first record of one partition through a group.
func readOne(t *testing.T, l *memory.Log, topic string, partition int32) *orderly.Record {
	t.Helper()
	got := make(chan *orderly.Record, 1)
	m := l.Member(t.Name(), []string{topic})
	r := consume(m, func(c orderly.Claim) {
		if c.Partition() != partition {
			return
		}
		got <- (<-c.Records())[0]
	})
	rec := <-got
	require.NoError(t, r.stop())
	return rec
}

func TestLogErrors(t *testing.T) {
	l := memory.NewLog()
	require.NoError(t, l.CreateTopic("t", 2))
	assert.ErrorIs(t, l.CreateTopic("t", 3), memory.ErrTopicExists)
	assert.ErrorIs(t, l.CreateTopic("", 3), memory.ErrInvalidTopic)
	assert.ErrorIs(t, l.CreateTopic("u", 0), memory.ErrInvalidTopic)

	_, err := l.Partitions("nope")
	assert.ErrorIs(t, err, memory.ErrUnknownTopic)
	_, _, err = l.Produce("nope", nil, nil)
	assert.ErrorIs(t, err, memory.ErrUnknownTopic)
	_, err = l.ProduceTo("nope", 0, nil, nil)
	assert.ErrorIs(t, err, memory.ErrUnknownTopic)
	_, err = l.EndOffset("nope", 0)
	assert.ErrorIs(t, err, memory.ErrUnknownTopic)

	_, err = l.ProduceTo("t", 2, nil, nil)
	assert.ErrorIs(t, err, memory.ErrUnknownPartition)
	_, err = l.ProduceTo("t", -1, nil, nil)
	assert.ErrorIs(t, err, memory.ErrUnknownPartition)
	_, err = l.EndOffset("t", 7)
	assert.ErrorIs(t, err, memory.ErrUnknownPartition)

	n, err := l.Partitions("t")
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	_, ok := l.Committed("g", "t", 0)
	assert.False(t, ok)
	assert.Empty(t, l.CommitHistory("g", "t", 0))
}
