package orderlykgo_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	opts := []kfake.Opt{kfake.NumBrokers(brokers), kfake.GroupMinSessionTimeout(100 * time.Millisecond)}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(partitions, topics...))
	}
	c, err := kfake.NewCluster(opts...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// groupOpts are a consumer group member's kgo options with fast group
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

func newSource(t testing.TB, kopts []kgo.Opt, opts ...orderlykgo.Option) *orderlykgo.Source {
	t.Helper()
	src, err := orderlykgo.NewSource(kopts, append([]orderlykgo.Option{orderlykgo.WithLogger(quiet)}, opts...)...)
	require.NoError(t, err)
	return src
}

// newProducer returns a producer that sends to Record.Partition when
// manual, and partitions by key otherwise; each record is its own batch.
func newProducer(t testing.TB, c *kfake.Cluster, manual bool, opts ...orderlykgo.ProducerOption) *orderlykgo.Producer {
	t.Helper()
	kopts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerLinger(0)}
	if manual {
		kopts = append(kopts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	p, err := orderlykgo.NewProducer(kopts, opts...)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

// produceTo sends value with key to partition and returns its offset.
func produceTo(t testing.TB, p *orderlykgo.Producer, topic string, partition int32, key, value string, headers ...orderly.Header) int64 {
	t.Helper()
	r := orderlykgo.NewRecord(topic, []byte(key), []byte(value), headers...)
	r.Partition = partition
	got, off, err := p.Send(context.Background(), r)
	require.NoError(t, err)
	require.Equal(t, partition, got)
	return off
}

func admin(t testing.TB, c *kfake.Cluster) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// committed reads the group's committed positions for partitions 0..n-1
// of topic; a partition without a commit has Offset -1.
func committed(t testing.TB, c *kfake.Cluster, group, topic string, n int32) []orderly.Position {
	t.Helper()
	resp, err := admin(t, c).FetchOffsets(context.Background(), group)
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

// commitAs commits pos for topic/partition as a client outside the group
// (generation -1, accepted while the group has no members).
func commitAs(t testing.TB, c *kfake.Cluster, group, topic string, partition int32, pos orderly.Position) {
	t.Helper()
	resp, err := admin(t, c).CommitOffsets(context.Background(), group, kadm.Offsets{
		topic: {partition: {Topic: topic, Partition: partition, At: pos.Offset, LeaderEpoch: -1, Metadata: pos.Metadata}},
	})
	require.NoError(t, err)
	o, ok := resp.Lookup(topic, partition)
	require.True(t, ok)
	require.NoError(t, o.Err)
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
				t.Error(what + " within 30s")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
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

func (l *logCounter) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn
}
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCounter) WithGroup(string) slog.Handler      { return l }
func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		l.mu.Lock()
		l.n++
		l.mu.Unlock()
	}
	return nil
}

func posString(p orderly.Position) string { return fmt.Sprintf("%d/%q", p.Offset, p.Metadata) }
