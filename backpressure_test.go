package orderly_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/stretchr/testify/require"
)

func partitionStats(t *testing.T, eng *orderly.Engine, p int32) orderly.PartitionStats {
	t.Helper()
	for _, ps := range eng.Stats().Partitions {
		if ps.Partition == p {
			return ps
		}
	}
	return orderly.PartitionStats{Partition: -1}
}

// With handlers blocked, the partition runs out of credit: fetching is
// paused with the reason, the engine holds no more than the limit, and
// everything flows again once handlers return.
func TestPartitionOutOfCreditIsPausedAndResumed(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	for i := range 500 {
		produce(t, log, "t", 0, fmt.Sprint("k", i))
	}
	gate := make(chan struct{})
	var handled atomic.Int64
	m := log.Member("g", []string{"t"}, memory.WithFetchBuffer(16))
	eng, err := orderly.New(m, orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		<-gate
		handled.Add(1)
		return nil
	}), orderly.WithPartitionBuffer(10, 1<<20), orderly.WithMaxConcurrency(4), orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)

	require.Eventually(t, func() bool { return m.Paused("t", 0) }, 10*time.Second, time.Millisecond)
	ps := partitionStats(t, eng, 0)
	require.True(t, ps.Paused)
	require.Contains(t, ps.Reasons, orderly.PausePartitionRecords)
	require.LessOrEqual(t, ps.HeldRecords, int64(10))
	require.LessOrEqual(t, eng.Stats().HeldRecords, int64(10))

	close(gate)
	require.Eventually(t, func() bool { return handled.Load() == 500 }, 20*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return !m.Paused("t", 0) }, 10*time.Second, time.Millisecond)
	require.NoError(t, stop())
	pos, _ := log.Committed("g", "t", 0)
	require.Equal(t, int64(500), pos.Offset)
}

// The engine-wide pool pauses every partition that asks for more.
func TestEngineOutOfCreditPausesPartitions(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 3))
	for p := range int32(3) {
		for i := range 50 {
			produce(t, log, "t", p, fmt.Sprint("k", i))
		}
	}
	gate := make(chan struct{})
	var handled atomic.Int64
	m := log.Member("g", []string{"t"}, memory.WithFetchBuffer(4))
	eng, err := orderly.New(m, orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		<-gate
		handled.Add(1)
		return nil
	}), orderly.WithEngineBuffer(12, 1<<20), orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)
	require.Eventually(t, func() bool {
		s := eng.Stats()
		return s.HeldRecords == 12 && s.PausedTotal > 0
	}, 10*time.Second, time.Millisecond)
	s := eng.Stats()
	for _, ps := range s.Partitions {
		if ps.Paused {
			require.Contains(t, ps.Reasons, orderly.PauseEngineRecords)
		}
	}
	close(gate)
	require.Eventually(t, func() bool { return handled.Load() == 150 }, 20*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return eng.Stats().PausedTotal == 0 }, 10*time.Second, time.Millisecond)
	require.NoError(t, stop())
}

// A hot key that is stuck does not stall the other keys of its partition
// while the partition has credit. With the default key buffer the
// partition is not even paused. With a small key buffer, a claim that can
// re-read its partition spills the key (its later records are dropped, to
// be read again; the partition is not paused), and one that cannot pauses
// fetching (reason "key"); either way the records already fetched for
// other keys still run: only what waits for the key waits.
func TestHotKeyDoesNotStallOtherKeys(t *testing.T) {
	for _, tc := range []struct {
		keyBuffer int
		reread    bool
	}{{0, true}, {4, true}, {4, false}} {
		t.Run(fmt.Sprintf("key buffer %d, re-read %v", tc.keyBuffer, tc.reread), func(t *testing.T) {
			log := memory.NewLog()
			require.NoError(t, log.CreateTopic("t", 1))
			keys := []string{"hot", "hot", "hot", "hot", "hot", "hot"}
			for i := range 100 {
				keys = append(keys, fmt.Sprint("cold", i))
			}
			produce(t, log, "t", 0, keys...)
			release := make(chan struct{})
			var cold atomic.Int64
			opts := []orderly.Option{orderly.WithPartitionBuffer(200, 1<<20), orderly.WithCommitInterval(10 * time.Millisecond), orderly.WithLogger(quiet)}
			if tc.keyBuffer > 0 {
				opts = append(opts, orderly.WithKeyBuffer(tc.keyBuffer, 1<<20))
			}
			var src orderly.Source = log.Member("g", []string{"t"}, memory.WithFetchBuffer(256))
			if !tc.reread {
				src = noReread{src}
			}
			eng, err := orderly.New(src, orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
				if string(r.Key) == "hot" {
					<-release
					return nil
				}
				cold.Add(1)
				return nil
			}), opts...)
			require.NoError(t, err)
			stop := running(t, eng)
			require.Eventually(t, func() bool { return cold.Load() == 100 }, 10*time.Second, time.Millisecond,
				"every cold key was handled while the hot key was stuck")
			ps := partitionStats(t, eng, 0)
			switch {
			case tc.keyBuffer == 0:
				require.False(t, ps.Paused, "the partition has credit: %+v", ps)
			case tc.reread:
				require.Equal(t, orderly.KeyOverflowSpill, ps.KeyOverflow)
				require.Equal(t, 1, ps.SpilledKeys, "the hot key over its buffer spills: %+v", ps)
				require.False(t, ps.Paused, "spilling pauses nothing: %+v", ps)
				require.Eventually(t, func() bool { return partitionStats(t, eng, 0).HeldRecords == 4 }, 10*time.Second, time.Millisecond,
					"the spilled key holds its buffer's worth, no more, once the cold records are done")
			default:
				require.Equal(t, orderly.KeyOverflowPause, ps.KeyOverflow)
				require.True(t, slices.Contains(ps.Reasons, orderly.PauseKey), "the hot key over its buffer pauses fetching: %+v", ps)
			}
			close(release)
			require.Eventually(t, func() bool { p, _ := log.Committed("g", "t", 0); return p.Offset == 106 }, 10*time.Second, time.Millisecond)
			require.Eventually(t, func() bool {
				ps := partitionStats(t, eng, 0)
				return !ps.Paused && ps.SpilledKeys == 0
			}, 10*time.Second, time.Millisecond)
			require.NoError(t, stop())
		})
	}
}

// The uncommitted window: a record that holds the watermark back pauses the
// partition once the window is full, with reason "uncommitted".
func TestUncommittedWindowPausesPartition(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	keys := []string{"slow"}
	for i := range 100 {
		keys = append(keys, fmt.Sprint("k", i))
	}
	produce(t, log, "t", 0, keys...)
	release := make(chan struct{})
	var handled atomic.Int64
	eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		if string(r.Key) == "slow" {
			<-release
		}
		handled.Add(1)
		return nil
	}), orderly.WithMaxUncommitted(20), orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)
	require.Eventually(t, func() bool {
		ps := partitionStats(t, eng, 0)
		return slices.Contains(ps.Reasons, orderly.PauseUncommitted) && ps.Uncommitted == 20
	}, 10*time.Second, time.Millisecond)
	// A record's credits come back just after its handler returns: wait
	// for the 19 behind the slow one to be handled and given back.
	require.Eventually(t, func() bool {
		return handled.Load() == 19 && partitionStats(t, eng, 0).HeldRecords == 1
	}, 10*time.Second, time.Millisecond, "the window holds the slow record and the 19 behind it, and only the slow one is held")
	ps := partitionStats(t, eng, 0)
	require.Equal(t, int64(20), ps.Uncommitted)
	require.Equal(t, int64(1), ps.HeldRecords, "nothing past the window was dispatched")
	require.Equal(t, int64(19), handled.Load())
	close(release)
	require.Eventually(t, func() bool { p, _ := log.Committed("g", "t", 0); return p.Offset == 101 }, 10*time.Second, time.Millisecond)
	require.NoError(t, stop())
}
