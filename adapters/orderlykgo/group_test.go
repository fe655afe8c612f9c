package orderlykgo_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderly-go/orderly"
)

// ledger records every claim's start and successful commits across the
// members of a group, and checks that each claim starts where the last
// successful commit on its partition left it, and that the successful
// commits of a partition never go back.
type ledger struct {
	t  testing.TB
	mu sync.Mutex
	// last successful commit per partition
	last map[int32]orderly.Position
	// claims served, per member name
	claims map[string][]int32
	// starts that disagreed with the last commit, commits that went back
	bad []string
}

func newLedger(t testing.TB) *ledger {
	return &ledger{t: t, last: make(map[int32]orderly.Position), claims: make(map[string][]int32)}
}

// wrap returns src with claims that report to the ledger as member name.
func (l *ledger) wrap(name string, src orderly.Source) orderly.Source {
	return recordingSource{Source: src, l: l, name: name}
}

type recordingSource struct {
	orderly.Source
	l    *ledger
	name string
}

func (s recordingSource) Consume(ctx context.Context, serve func(orderly.Claim)) error {
	return s.Source.Consume(ctx, func(c orderly.Claim) {
		s.l.mu.Lock()
		want, ok := s.l.last[c.Partition()]
		if !ok {
			want = orderly.Position{Offset: orderly.NoOffset}
		}
		if c.Start() != want {
			s.l.bad = append(s.l.bad, s.name+": start "+posString(c.Start())+", last commit "+posString(want))
		}
		s.l.claims[s.name] = append(s.l.claims[s.name], c.Partition())
		s.l.mu.Unlock()
		serve(recordingClaim{Claim: c, l: s.l, name: s.name})
	})
}

type recordingClaim struct {
	orderly.Claim
	l    *ledger
	name string
}

func (c recordingClaim) Commit(ctx context.Context, next int64, metadata string) error {
	err := c.Claim.Commit(ctx, next, metadata)
	if err == nil {
		c.l.mu.Lock()
		if prev, ok := c.l.last[c.Partition()]; ok && next < prev.Offset {
			c.l.bad = append(c.l.bad, c.name+": partition "+strconv.Itoa(int(c.Partition()))+" committed "+
				strconv.FormatInt(next, 10)+" after "+posString(prev))
		}
		c.l.last[c.Partition()] = orderly.Position{Offset: next, Metadata: metadata}
		c.l.mu.Unlock()
	}
	return err
}

func (l *ledger) check() {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Empty(l.t, l.bad, "every claim starts at the last successful commit of its partition, and commits never go back")
}

func (l *ledger) served(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.claims[name])
}

// groupMember makes a member's Source; name is the member's.
type groupMember func(t *testing.T, name string) orderly.Source

// handOver runs the group scenario of the tests below: member a consumes,
// b joins mid-stream, a leaves mid-stream, b finishes. Every record is
// handled once, each claim starts at the last successful commit of its
// partition, commits never go back, each key is handled in offset order
// across owners, and the commits reach the end.
func handOver(t *testing.T, c *kfake.Cluster, partitions int, produce func(n int) (produced int, end []int64), newMember groupMember, group, topic string) {
	l := newLedger(t)
	h := newHandled()
	member := func(name string) func() error {
		handler := orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
			h.add(r)
			time.Sleep(time.Millisecond) // keep work in flight across the rebalances
			return nil
		})
		eng, err := orderly.New(l.wrap(name, newMember(t, name)), handler,
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
	produced, end := produce(100)
	require.Eventually(t, func() bool { return h.distinct() == produced }, 30*time.Second, time.Millisecond, "nothing lost")
	waitCommittedAt(t, c, group, topic, end[:partitions])
	require.NoError(t, stopB())

	l.check()
	require.Positive(t, l.served("a"))
	// A revoke lets running handlers finish and commits them, the next
	// owner starts at that commit and skips what its metadata lists: no
	// record is handled twice, and each key stays in offset order across
	// owners.
	h.requireKeyOrder(t, true)
}

// Two members share the partitions; when one leaves, the other takes its
// partitions over from its final commits, with each balancer: the
// cooperative one (kgo's default) and the eager ones.
func TestMembersSplitPartitionsAndHandOverOnLeave(t *testing.T) {
	for _, b := range []struct {
		name     string
		balancer func() kgo.GroupBalancer
	}{
		{"cooperative-sticky", kgo.CooperativeStickyBalancer},
		{"range", kgo.RangeBalancer},
		{"sticky", kgo.StickyBalancer},
	} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			const partitions = 6
			c := cluster(t, 3, partitions, "t")
			p := newProducer(t, c, false)
			end := make([]int64, partitions)
			produced := 0
			produce := func(n int) (int, []int64) {
				for range n {
					key := "k" + strconv.Itoa(produced%12)
					part, off, err := p.Produce(context.Background(), "t", []byte(key), []byte(strconv.Itoa(produced)))
					require.NoError(t, err)
					end[part] = max(end[part], off+1)
					produced++
				}
				return produced, end
			}
			handOver(t, c, partitions, produce, func(t *testing.T, _ string) orderly.Source {
				return newSource(t, append(groupOpts(c, "g", "t"), kgo.Balancers(b.balancer())))
			}, "g", "t")
		})
	}
}
