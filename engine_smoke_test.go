package orderly_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/stretchr/testify/require"
)

func TestEngineSmoke(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 4))
	for i := range 2000 {
		_, _, err := log.Produce("t", []byte(fmt.Sprint("k", i%37)), []byte(fmt.Sprint(i)))
		require.NoError(t, err)
	}
	var mu sync.Mutex
	seen := map[string][]int64{}
	count := 0
	all := make(chan struct{})
	eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		mu.Lock()
		defer mu.Unlock()
		k := fmt.Sprint(r.Partition, string(r.Key))
		seen[k] = append(seen[k], r.Offset)
		count++
		if count == 2000 {
			close(all)
		}
		return nil
	}), orderly.WithMaxConcurrency(8), orderly.WithPartitionBuffer(50, 1<<20))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- eng.Run(ctx) }()
	select {
	case <-all:
	case <-time.After(20 * time.Second):
		t.Fatalf("only %d handled: %+v", count, eng.Stats())
	}
	cancel()
	require.NoError(t, <-done)
	for k, offs := range seen {
		for i := 1; i < len(offs); i++ {
			require.Less(t, offs[i-1], offs[i], "key %s out of order", k)
		}
	}
	for p := range int32(4) {
		end, _ := log.EndOffset("t", p)
		pos, ok := log.Committed("g", "t", p)
		require.True(t, ok)
		require.Equal(t, end, pos.Offset)
	}
}
