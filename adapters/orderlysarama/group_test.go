package orderlysarama_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderly-go/orderly"
)

// Two members share the partitions; when one leaves, the other takes its
// partitions over from its final commits: every record is handled once,
// each claim starts at the last successful commit of its partition, each
// key is handled in offset order, and the commits reach the end.
func TestMembersSplitPartitionsAndHandOverOnLeave(t *testing.T) {
	for _, st := range strategies {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			const partitions, keys = 6, 12
			c := cluster(t, 3, partitions, "t")
			p := newProducer(t, c, false)
			end := make([]int64, partitions)
			produced := 0
			produce := func(n int) {
				for range n {
					key := "k" + strconv.Itoa(produced%keys)
					part, off, err := p.Produce(context.Background(), "t", []byte(key), []byte(strconv.Itoa(produced)))
					require.NoError(t, err)
					end[part] = max(end[part], off+1)
					produced++
				}
			}
			l := newLedger(t)
			h := newHandled()
			member := func(name string) func() error {
				handler := orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
					h.add(r)
					time.Sleep(time.Millisecond) // keep work in flight across the rebalances
					return nil
				})
				eng, err := orderly.New(l.wrap(name, newSource(t, c, "g", config(st.new), "t")), handler,
					orderly.WithLogger(quiet), orderly.WithCommitInterval(20*time.Millisecond))
				require.NoError(t, err)
				return running(t, eng)
			}

			produce(150)
			stopA := member("a")
			require.Eventually(t, func() bool { return h.distinct() >= 30 }, 30*time.Second, time.Millisecond)
			stopB := member("b")
			require.Eventually(t, func() bool { return l.served("b") > 0 }, 30*time.Second, time.Millisecond, "b gets partitions")
			produce(150)
			require.Eventually(t, func() bool { return h.distinct() >= 200 }, 30*time.Second, time.Millisecond)
			require.NoError(t, stopA())
			produce(100)
			require.Eventually(t, func() bool { return h.distinct() == produced }, 30*time.Second, time.Millisecond, "nothing lost")
			require.Eventually(t, func() bool {
				pos := committed(t, c, "g", "t", partitions)
				for i := range pos {
					if pos[i].Offset != end[i] {
						return false
					}
				}
				return true
			}, 30*time.Second, 10*time.Millisecond, "committed offsets reach the end of every partition")
			require.NoError(t, stopB())

			l.check()
			require.Positive(t, l.served("a"))
			h.mu.Lock()
			defer h.mu.Unlock()
			// A revoke lets running handlers finish and commits them, the
			// next owner starts at that commit and skips what its metadata
			// lists: no record is handled twice, and each key stays in
			// offset order across owners.
			for po, n := range h.seen {
				require.Equal(t, 1, n, "partition/offset %v handled %d times", po, n)
			}
			for k, offs := range h.byKey {
				for i := 1; i < len(offs); i++ {
					require.Less(t, offs[i-1], offs[i], "key %s handled out of order: %v", k, offs)
				}
			}
		})
	}
}
