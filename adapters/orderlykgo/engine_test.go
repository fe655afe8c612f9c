package orderlykgo_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderly-go/orderly"
)

// handled records what a handler saw: per partition and key, the offsets
// in the order they were handled.
type handled struct {
	mu    sync.Mutex
	byKey map[string][]int64 // "partition/key" → offsets in handling order
	seen  map[[2]int64]int   // (partition, offset) → times handled
}

func newHandled() *handled {
	return &handled{byKey: make(map[string][]int64), seen: make(map[[2]int64]int)}
}

func (h *handled) add(r *orderly.Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := fmt.Sprintf("%d/%s", r.Partition, r.Key)
	h.byKey[k] = append(h.byKey[k], r.Offset)
	h.seen[[2]int64{int64(r.Partition), r.Offset}]++
}

func (h *handled) distinct() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seen)
}

// requireKeyOrder checks that each key's records were handled in offset
// order (and, with once, that no record was handled twice).
func (h *handled) requireKeyOrder(t *testing.T, once bool) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, offs := range h.byKey {
		for i := 1; i < len(offs); i++ {
			require.Less(t, offs[i-1], offs[i], "key %s handled out of order: %v", k, offs)
		}
	}
	if once {
		for po, n := range h.seen {
			require.Equal(t, 1, n, "partition/offset %v handled %d times", po, n)
		}
	}
}

// waitCommittedAt waits until the group's committed offsets are end.
func waitCommittedAt(t *testing.T, c *kfake.Cluster, group, topic string, end []int64) {
	t.Helper()
	require.Eventually(t, func() bool {
		pos := committed(t, c, group, topic, int32(len(end)))
		for i := range pos {
			if pos[i].Offset != end[i] {
				return false
			}
		}
		return true
	}, 30*time.Second, 10*time.Millisecond, "committed offsets reach the end of every partition")
}

// The real engine consumes keyed records from several partitions, with
// the default cooperative-sticky balancer and with an eager one: every
// record is handled, each key's records in offset order, headers arrive
// intact, and the committed offsets reach the end of every partition.
func TestEngineHandlesEveryRecordInKeyOrderAndCommitsToTheEnd(t *testing.T) {
	for _, b := range []struct {
		name     string
		balancer kgo.GroupBalancer
	}{{"cooperative-sticky", kgo.CooperativeStickyBalancer()}, {"range", kgo.RangeBalancer()}} {
		t.Run(b.name, func(t *testing.T) {
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
			kopts := append(groupOpts(c, "g", "orders"), kgo.Balancers(b.balancer))
			eng, err := orderly.New(newSource(t, kopts), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
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
			waitCommittedAt(t, c, "g", "orders", end)
			require.Eventually(t, func() bool {
				st := eng.Stats()
				for _, ps := range st.Partitions {
					if ps.Lag != 0 {
						return false
					}
				}
				return len(st.Partitions) == partitions
			}, 30*time.Second, 5*time.Millisecond, "lag (end offset − committed) reaches zero on every partition")
			require.NoError(t, stop())

			require.Zero(t, badHeaders.Load(), "headers arrive as produced")
			h.requireKeyOrder(t, true)
		})
	}
}

// With read_committed, records of an aborted transaction never reach the
// handler, the committed ones do, in order, and the commits pass the
// transaction markers' offsets to the partition's end.
func TestReadCommittedSkipsAbortedTransactions(t *testing.T) {
	t.Parallel()
	c := cluster(t, 1, 1, "t")
	tx, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID("tx"), kgo.DefaultProduceTopic("t"))
	require.NoError(t, err)
	defer tx.Close()
	ctx := context.Background()
	var want []string
	for i, commit := range []bool{true, false, true, false, true} {
		require.NoError(t, tx.BeginTransaction())
		for j := range 3 {
			v := fmt.Sprintf("txn%d-%d", i, j)
			require.NoError(t, tx.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte(v)}).FirstErr())
			if commit {
				want = append(want, v)
			}
		}
		require.NoError(t, tx.EndTransaction(ctx, kgo.TransactionEndTry(commit)))
	}

	var mu sync.Mutex
	var got []string
	var claim orderly.Claim
	kopts := append(groupOpts(c, "g", "t"), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	src := newSource(t, kopts)
	eng, err := orderly.New(claimSpy{Source: src, claim: &claim, mu: &mu}, orderly.HandlerFunc(func(_ context.Context, r *orderly.Record) error {
		mu.Lock()
		got = append(got, string(r.Value))
		mu.Unlock()
		return nil
	}), orderly.WithLogger(quiet), orderly.WithCommitInterval(20*time.Millisecond))
	require.NoError(t, err)
	stop := running(t, eng)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == len(want)
	}, 30*time.Second, 5*time.Millisecond)
	// The last committed record is followed by its transaction's marker:
	// the end (the last stable offset) is one past the marker, and the
	// commit is one past the last record.
	mu.Lock()
	cl := claim
	mu.Unlock()
	end := cl.(orderly.EndOffsetter).EndOffset()
	require.Eventually(t, func() bool { return committed(t, c, "g", "t", 1)[0].Offset == end-1 }, 30*time.Second, 10*time.Millisecond,
		"committed past every handled record (end offset %d)", end)
	require.NoError(t, stop())
	require.Equal(t, want, got, "only committed transactions, in order")
	require.Equal(t, int64(5*4), end, "five transactions of three records and a marker")
}

// claimSpy notes the last claim granted.
type claimSpy struct {
	orderly.Source
	mu    *sync.Mutex
	claim *orderly.Claim
}

func (s claimSpy) Consume(ctx context.Context, serve func(orderly.Claim)) error {
	return s.Source.Consume(ctx, func(c orderly.Claim) {
		s.mu.Lock()
		*s.claim = c
		s.mu.Unlock()
		serve(c)
	})
}
