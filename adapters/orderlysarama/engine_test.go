package orderlysarama_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderly-go/orderly"
)

// handled records what a handler saw: per claim-independent partition and
// key, the offsets in the order they were handled.
type handled struct {
	mu     sync.Mutex
	byKey  map[string][]int64 // "partition/key" → offsets in handling order
	seen   map[[2]int64]int   // (partition, offset) → times handled
	values map[[2]int64]string
	count  atomic.Int64
}

func newHandled() *handled {
	return &handled{byKey: make(map[string][]int64), seen: make(map[[2]int64]int), values: make(map[[2]int64]string)}
}

func (h *handled) add(r *orderly.Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := fmt.Sprintf("%d/%s", r.Partition, r.Key)
	h.byKey[k] = append(h.byKey[k], r.Offset)
	po := [2]int64{int64(r.Partition), r.Offset}
	h.seen[po]++
	h.values[po] = string(r.Value)
	h.count.Add(1)
}

func (h *handled) distinct() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seen)
}

// The real engine consumes keyed records from several partitions: every
// record is handled, each key's records in offset order, headers arrive
// intact, and the committed offsets reach the end of every partition.
func TestEngineHandlesEveryRecordInKeyOrderAndCommitsToTheEnd(t *testing.T) {
	for _, s := range []int{0, 2} { // range, cooperative-sticky
		st := strategies[s]
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			const partitions, records, keys = 4, 400, 25
			c := cluster(t, 3, partitions, "orders")
			p := newProducer(t, c, false)
			end := make([]int64, partitions)
			for i := range records {
				key := "k" + strconv.Itoa(i%keys)
				part, off, err := p.Produce(context.Background(), "orders", []byte(key), []byte(strconv.Itoa(i)),
					orderly.Header{Key: "seq", Value: []byte(strconv.Itoa(i))}, orderly.Header{Key: "k", Value: []byte(key)})
				require.NoError(t, err)
				end[part] = max(end[part], off+1)
			}

			h := newHandled()
			var badHeaders atomic.Int64
			eng, err := orderly.New(newSource(t, c, "g", config(st.new), "orders"), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
				seq, _ := r.Header("seq")
				k, _ := r.Header("k")
				if string(seq) != string(r.Value) || string(k) != string(r.Key) || len(r.Headers) != 2 || r.Headers[0].Key != "seq" {
					badHeaders.Add(1)
				}
				h.add(r)
				return nil
			}), orderly.WithLogger(quiet), orderly.WithCommitInterval(50*time.Millisecond))
			require.NoError(t, err)
			stop := running(t, eng)
			require.Eventually(t, func() bool { return h.distinct() == records }, 30*time.Second, 5*time.Millisecond)
			require.Eventually(t, func() bool {
				pos := committed(t, c, "g", "orders", partitions)
				for i := range pos {
					if pos[i].Offset != end[i] {
						return false
					}
				}
				return true
			}, 30*time.Second, 20*time.Millisecond, "committed offsets reach the end of every partition")
			require.NoError(t, stop())

			require.Zero(t, badHeaders.Load(), "headers arrive as produced")
			h.mu.Lock()
			defer h.mu.Unlock()
			for k, offs := range h.byKey {
				for i := 1; i < len(offs); i++ {
					require.Less(t, offs[i-1], offs[i], "key %s handled out of order: %v", k, offs)
				}
			}
		})
	}
}

// A record that outlives the drain timeout holds the watermark back; the
// offsets done above it travel in the commit metadata, and a second run on
// the same group handles only the unfinished record.
func TestRestartSkipsOffsetsCompletedAboveTheWatermark(t *testing.T) {
	t.Parallel()
	c := cluster(t, 3, 1, "t")
	p := newProducer(t, c, true)
	produceTo(t, p, "t", 0, "slow", "0")
	for i, k := range []string{"a", "b", "c", "d", "e"} {
		produceTo(t, p, "t", 0, k, strconv.Itoa(i+1))
	}

	var count atomic.Int32
	five := make(chan struct{})
	eng, err := orderly.New(newSource(t, c, "g", config(nil), "t"), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		if string(r.Key) == "slow" {
			<-ctx.Done() // outlives the drain timeout
			return ctx.Err()
		}
		if count.Add(1) == 5 {
			close(five)
		}
		return nil
	}), orderly.WithDrainTimeout(200*time.Millisecond), orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)
	select {
	case <-five:
	case <-time.After(30 * time.Second):
		t.Fatal("five records not handled within 30s")
	}
	require.NoError(t, stop())

	pos := committed(t, c, "g", "t", 1)[0]
	require.Equal(t, int64(0), pos.Offset, "the unfinished record holds the watermark")
	require.NotEmpty(t, pos.Metadata, "offsets 1-5 are done above the watermark")

	var mu sync.Mutex
	var again []int64
	eng2, err := orderly.New(newSource(t, c, "g", config(nil), "t"), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		mu.Lock()
		again = append(again, r.Offset)
		mu.Unlock()
		return nil
	}), orderly.WithLogger(quiet), orderly.WithCommitInterval(20*time.Millisecond))
	require.NoError(t, err)
	stop = running(t, eng2)
	require.Eventually(t, func() bool { return committed(t, c, "g", "t", 1)[0].Offset == 6 }, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, stop())
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []int64{0}, again, "only the unfinished record is handled again")
}

// Metadata another client committed is not orderly's: the engine ignores
// it, skips nothing and commits over it.
func TestForeignMetadataIsTolerated(t *testing.T) {
	t.Parallel()
	c := cluster(t, 3, 1, "t")
	p := newProducer(t, c, true)
	for i := range 5 {
		produceTo(t, p, "t", 0, "k", strconv.Itoa(i))
	}
	commitAs(t, c, "g", "t", 0, orderly.Position{Offset: 2, Metadata: "written by some other client"})

	var mu sync.Mutex
	var got []int64
	eng, err := orderly.New(newSource(t, c, "g", config(nil), "t"), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		mu.Lock()
		got = append(got, r.Offset)
		mu.Unlock()
		return nil
	}), orderly.WithOrdering(orderly.Serial()), orderly.WithLogger(quiet), orderly.WithCommitInterval(20*time.Millisecond))
	require.NoError(t, err)
	stop := running(t, eng)
	require.Eventually(t, func() bool { return committed(t, c, "g", "t", 1)[0].Offset == 5 }, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, stop())
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []int64{2, 3, 4}, got)
}
