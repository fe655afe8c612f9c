package orderlysarama_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/orderlysarama"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// cluster starts a kfake cluster of brokers brokers with topics seeded with
// partitions partitions each.
func cluster(t testing.TB, brokers int, partitions int32, topics ...string) *kfake.Cluster {
	t.Helper()
	return clusterWith(t, brokers, partitions, topics)
}

// clusterWith is cluster with more kfake options.
func clusterWith(t testing.TB, brokers int, partitions int32, topics []string, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{
		kfake.NumBrokers(brokers),
		kfake.SeedTopics(partitions, topics...),
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
	}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// config is a sarama config with fast group settings for kfake.
func config(strategy func() sarama.BalanceStrategy) *sarama.Config {
	cfg := orderlysarama.DefaultConfig()
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	cfg.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = 3 * time.Second
	cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	cfg.Consumer.Group.Rebalance.Retry.Backoff = 50 * time.Millisecond
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Retry.Backoff = 50 * time.Millisecond
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	if strategy != nil {
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{strategy()}
	}
	return cfg
}

var strategies = []struct {
	name string
	new  func() sarama.BalanceStrategy
}{
	{"range", sarama.NewBalanceStrategyRange},
	{"roundrobin", sarama.NewBalanceStrategyRoundRobin},
	{"cooperative-sticky", sarama.NewBalanceStrategyCooperativeSticky},
	{"sticky", sarama.NewBalanceStrategySticky},
}

func newSource(t testing.TB, c *kfake.Cluster, group string, cfg *sarama.Config, topics ...string) *orderlysarama.Source {
	t.Helper()
	src, err := orderlysarama.NewSource(c.ListenAddrs(), group, topics, cfg, orderlysarama.WithLogger(quiet),
		orderlysarama.WithRetryBackoff(20*time.Millisecond, 200*time.Millisecond))
	require.NoError(t, err)
	return src
}

// newProducer returns a producer that sends to ProducerMessage.Partition
// when manual, and partitions by key otherwise.
func newProducer(t testing.TB, c *kfake.Cluster, manual bool) *orderlysarama.Producer {
	t.Helper()
	cfg := orderlysarama.DefaultConfig()
	if manual {
		cfg.Producer.Partitioner = sarama.NewManualPartitioner
	}
	p, err := orderlysarama.NewProducer(c.ListenAddrs(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// produceTo sends value with key to partition and returns its offset.
func produceTo(t testing.TB, p *orderlysarama.Producer, topic string, partition int32, key, value string, headers ...orderly.Header) int64 {
	t.Helper()
	m := orderlysarama.NewProducerMessage(topic, []byte(key), []byte(value), headers...)
	m.Partition = partition
	got, off, err := p.Send(context.Background(), m)
	require.NoError(t, err)
	require.Equal(t, partition, got)
	return off
}

// committed reads the group's committed positions for partitions 0..n-1
// of topic; a partition without a commit has Offset -1.
func committed(t testing.TB, c *kfake.Cluster, group, topic string, n int32) []orderly.Position {
	t.Helper()
	return committedWith(t, c, orderlysarama.DefaultConfig(), group, topic, n)
}

// committedWith is committed with an admin client configured by cfg.
func committedWith(t testing.TB, c *kfake.Cluster, cfg *sarama.Config, group, topic string, n int32) []orderly.Position {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(c.ListenAddrs(), cfg)
	require.NoError(t, err)
	defer admin.Close()
	parts := make([]int32, n)
	for i := range parts {
		parts[i] = int32(i)
	}
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	require.NoError(t, err)
	out := make([]orderly.Position, n)
	for i := range out {
		b := resp.GetBlock(topic, int32(i))
		require.NotNil(t, b, "partition %d", i)
		require.Equal(t, sarama.ErrNoError, b.Err)
		out[i] = orderly.Position{Offset: b.Offset, Metadata: b.Metadata}
	}
	return out
}

// commitAs commits pos for topic/partition as a client outside the group
// (generation -1, accepted while the group has no members).
func commitAs(t testing.TB, c *kfake.Cluster, group, topic string, partition int32, pos orderly.Position) {
	t.Helper()
	client, err := sarama.NewClient(c.ListenAddrs(), orderlysarama.DefaultConfig())
	require.NoError(t, err)
	defer client.Close()
	coordinator, err := client.Coordinator(group)
	require.NoError(t, err)
	req := sarama.NewOffsetCommitRequest(client.Config(), group)
	req.AddBlockWithLeaderEpoch(topic, partition, pos.Offset, -1, 0, pos.Metadata)
	resp, err := coordinator.CommitOffset(req)
	require.NoError(t, err)
	require.Equal(t, sarama.ErrNoError, resp.Errors[topic][partition])
}

// running starts eng and returns a function that stops it and returns
// Run's error.
func running(t testing.TB, eng *orderly.Engine) (stop func() error) {
	t.Helper()
	return untilStopped(t, "engine did not stop", eng.Run)
}

// consuming runs src.Consume with serve and returns a function that stops
// it and returns Consume's error.
func consuming(t testing.TB, src orderly.Source, serve func(orderly.Claim)) (stop func() error) {
	t.Helper()
	return untilStopped(t, "Consume did not return", func(ctx context.Context) error { return src.Consume(ctx, serve) })
}

// untilStopped runs run in a goroutine and returns a function that cancels
// its context and returns its error, failing the test if it has not
// returned within 30s. The test's cleanup stops it too.
func untilStopped(t testing.TB, what string, run func(context.Context) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal(what + " within 30s")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// ledger records every claim's start and successful commits across the
// members of a group, and checks that each claim starts where the last
// successful commit on its partition left it.
type ledger struct {
	t  testing.TB
	mu sync.Mutex
	// last successful commit per partition
	last map[int32]orderly.Position
	// claims served, per member name
	claims map[string][]int32
	// starts that disagreed with the last commit
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
		serve(recordingClaim{Claim: c, l: s.l})
	})
}

type recordingClaim struct {
	orderly.Claim
	l *ledger
}

func (c recordingClaim) Commit(ctx context.Context, next int64, metadata string) error {
	err := c.Claim.Commit(ctx, next, metadata)
	if err == nil {
		c.l.mu.Lock()
		c.l.last[c.Partition()] = orderly.Position{Offset: next, Metadata: metadata}
		c.l.mu.Unlock()
	}
	return err
}

func (l *ledger) check() {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Empty(l.t, l.bad, "every claim starts at the last successful commit of its partition")
}

func (l *ledger) served(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.claims[name])
}

func posString(p orderly.Position) string {
	return fmt.Sprintf("%d/%q", p.Offset, p.Metadata)
}

// logCounter counts the warnings logged through its logger.
type logCounter struct {
	mu sync.Mutex
	n  int
}

func (l *logCounter) logger() *slog.Logger { return slog.New(l) }

func (l *logCounter) warnings() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logCounter) WithGroup(string) slog.Handler            { return l }
func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		l.mu.Lock()
		l.n++
		l.mu.Unlock()
	}
	return nil
}
