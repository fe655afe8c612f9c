package mixedgroup_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/orderlykgo"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// cluster starts a kfake cluster of brokers brokers with topics seeded with
// partitions partitions each.
func cluster(t testing.TB, brokers int, partitions int32, topics ...string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(brokers), kfake.SeedTopics(partitions, topics...),
		kfake.GroupMinSessionTimeout(100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// groupOpts are a franz-go group member's options with fast group
// settings for kfake.
func groupOpts(c *kfake.Cluster, group string, topics ...string) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.SessionTimeout(3 * time.Second),
		kgo.RebalanceTimeout(10 * time.Second),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
	}
}

func newSource(t testing.TB, kopts []kgo.Opt) *orderlykgo.Source {
	t.Helper()
	src, err := orderlykgo.NewSource(kopts, orderlykgo.WithLogger(quiet))
	require.NoError(t, err)
	return src
}

// newProducer returns a producer that partitions by key; each record is
// its own batch.
func newProducer(t testing.TB, c *kfake.Cluster) *orderlykgo.Producer {
	t.Helper()
	p, err := orderlykgo.NewProducer([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerLinger(0)})
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

// committed reads the group's committed positions for partitions 0..n-1
// of topic; a partition without a commit has Offset -1.
func committed(t testing.TB, c *kfake.Cluster, group, topic string, n int32) []orderly.Position {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	defer cl.Close()
	resp, err := kadm.NewClient(cl).FetchOffsets(context.Background(), group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		err = nil // no member has joined or committed yet
	}
	require.NoError(t, err)
	out := make([]orderly.Position, n)
	for i := range out {
		out[i] = orderly.Position{Offset: -1}
		if o, ok := resp.Lookup(topic, int32(i)); ok {
			require.NoError(t, o.Err)
			out[i] = orderly.Position{Offset: o.At, Metadata: o.Metadata}
		}
	}
	return out
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

// running starts eng and returns a function that stops it and returns
// Run's error, failing the test if Run has not returned within 30s. The
// test's cleanup stops it too.
func running(t testing.TB, eng *orderly.Engine) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Error("engine did not stop within 30s")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

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

// requireKeyOrderOnce checks that each key's records were handled in
// offset order and that no record was handled twice.
func (h *handled) requireKeyOrderOnce(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, offs := range h.byKey {
		for i := 1; i < len(offs); i++ {
			require.Less(t, offs[i-1], offs[i], "key %s handled out of order: %v", k, offs)
		}
	}
	for po, n := range h.seen {
		require.Equal(t, 1, n, "partition/offset %v handled %d times", po, n)
	}
}

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

func posString(p orderly.Position) string { return fmt.Sprintf("%d/%q", p.Offset, p.Metadata) }

// groupMember makes a member's Source; name is the member's.
type groupMember func(t *testing.T, name string) orderly.Source

// handOver runs the group scenario: member a consumes, b joins
// mid-stream, a leaves mid-stream, b finishes. Every record is handled
// once, each claim starts at the last successful commit of its partition,
// commits never go back, each key is handled in offset order across
// owners, and the commits reach the end.
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
	h.requireKeyOrderOnce(t)
}
