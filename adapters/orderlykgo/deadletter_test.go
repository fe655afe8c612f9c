package orderlykgo_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/orderlykgo"
)

// traceKey is the context key under which dlTraceHook leaves a value for
// the header injector: it stands for a dead-letter span's context.
type traceKey struct{}

// dlTraceHook marks the dead-letter context with the record's position,
// like package tracing starts a producer span there.
type dlTraceHook struct{}

func (dlTraceHook) OnDeadLetterStart(ctx context.Context, r *orderly.Record, _ orderly.RecordInfo, _ error) context.Context {
	return context.WithValue(ctx, traceKey{}, fmt.Sprintf("%d/%d", r.Partition, r.Offset))
}

func (dlTraceHook) OnDeadLetterEnd(context.Context, *orderly.Record, error) {}

// readAll reads every record of topic (partitions partitions), checking
// that there are exactly n, and returns them by partition in offset order.
func readAll(t *testing.T, c *kfake.Cluster, topic string, partitions int32, n int) map[int32][]*kgo.Record {
	t.Helper()
	ends, err := admin(t, c).ListEndOffsets(context.Background(), topic)
	require.NoError(t, err)
	total := int64(0)
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	require.Equal(t, int64(n), total, "records in %s", topic)

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic), kgo.FetchMaxWait(100*time.Millisecond))
	require.NoError(t, err)
	defer cl.Close()
	out := map[int32][]*kgo.Record{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for got := 0; got < n; {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "read %d of %d records from %s", got, n, topic)
		fs.EachRecord(func(r *kgo.Record) {
			out[r.Partition] = append(out[r.Partition], r)
			got++
		})
	}
	return out
}

func headerMap(r *kgo.Record) map[string]string {
	h := map[string]string{}
	for _, rh := range r.Headers {
		h[rh.Key] = string(rh.Value)
	}
	return h
}

// Records that fail for good (transient errors until the attempts run out,
// and permanent errors at once) land in <topic>.dlq with their key, value
// and headers, plus the sink's headers; the engine commits past them.
func TestDeadLetterSinkWritesFailedRecordsToTheDeadLetterTopic(t *testing.T) {
	t.Parallel()
	const partitions, records, maxAttempts = 2, 40, 3
	c := cluster(t, 1, partitions, "orders", "orders.dlq")
	p := newProducer(t, c, false)

	type sent struct {
		key       string
		partition int32
	}
	// Record i fails transiently every time if i%10 == 3 and permanently
	// if i%10 == 7.
	kind := func(i int) string {
		switch i % 10 {
		case 3:
			return "transient"
		case 7:
			return "permanent"
		}
		return "ok"
	}
	var recs []sent
	byPos := map[[2]int64]int{}
	end := make([]int64, partitions)
	for i := range records {
		key := "k" + strconv.Itoa(i%6)
		part, off, err := p.Produce(context.Background(), "orders", []byte(key), []byte(strconv.Itoa(i)),
			orderly.Header{Key: "seq", Value: []byte(strconv.Itoa(i))}, orderly.Header{Key: "origin", Value: []byte("test")})
		require.NoError(t, err)
		recs = append(recs, sent{key, part})
		byPos[[2]int64{int64(part), off}] = i
		end[part] = max(end[part], off+1)
	}

	var mu sync.Mutex
	attempts := map[int]int{}
	h := orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		mu.Lock()
		i := byPos[[2]int64{int64(r.Partition), r.Offset}]
		attempts[i]++
		mu.Unlock()
		switch kind(i) {
		case "transient":
			return fmt.Errorf("downstream refused record %d", i)
		case "permanent":
			return orderly.Permanent(fmt.Errorf("record %d is malformed", i))
		}
		return nil
	})
	sink, err := orderlykgo.NewDeadLetterSink(newProducer(t, c, false), orderlykgo.WithHeaderInjector(func(ctx context.Context, r *kgo.Record) {
		if v, ok := ctx.Value(traceKey{}).(string); ok {
			orderlykgo.RecordHeaders{Rec: r}.Set("test-trace", v)
		}
	}))
	require.NoError(t, err)
	started := time.Now()
	eng, err := orderly.New(newSource(t, groupOpts(c, "g", "orders")), h,
		orderly.WithRetry(orderly.RetryPolicy{InitialDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond, MaxAttempts: maxAttempts}),
		orderly.WithDeadLetter(sink),
		orderly.WithHooks(dlTraceHook{}),
		orderly.WithCommitInterval(50*time.Millisecond),
		orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)
	waitCommittedAt(t, c, "g", "orders", end)
	require.NoError(t, stop())
	finished := time.Now()

	wantDead := 0
	for i := range records {
		want := map[string]int{"ok": 1, "transient": maxAttempts, "permanent": 1}[kind(i)]
		assert.Equal(t, want, attempts[i], "handler calls for record %d (%s)", i, kind(i))
		if kind(i) != "ok" {
			wantDead++
		}
	}
	require.Equal(t, uint64(wantDead), eng.Stats().RecordsDeadLettered)

	seen := map[int]bool{}
	for dp, msgs := range readAll(t, c, "orders.dlq", partitions, wantDead) {
		lastByKey := map[string]int64{}
		for _, m := range msgs {
			h := headerMap(m)
			op, err := strconv.ParseInt(h[orderlykgo.HeaderDeadLetterPartition], 10, 32)
			require.NoError(t, err)
			off, err := strconv.ParseInt(h[orderlykgo.HeaderDeadLetterOffset], 10, 64)
			require.NoError(t, err)
			i, ok := byPos[[2]int64{op, off}]
			require.True(t, ok, "dead letter names a produced record: %v", h)
			require.False(t, seen[i], "record %d dead-lettered twice", i)
			seen[i] = true
			require.NotEqual(t, "ok", kind(i), "record %d", i)

			require.Equal(t, recs[i].key, string(m.Key))
			require.Equal(t, strconv.Itoa(i), string(m.Value))
			require.GreaterOrEqual(t, len(m.Headers), 2)
			assert.Equal(t, kgo.RecordHeader{Key: "seq", Value: []byte(strconv.Itoa(i))}, m.Headers[0], "original headers first, in order")
			assert.Equal(t, kgo.RecordHeader{Key: "origin", Value: []byte("test")}, m.Headers[1])
			assert.Len(t, m.Headers, 2+7+1, "original, sink and injected headers: %v", h)

			if kind(i) == "transient" {
				assert.Equal(t, fmt.Sprintf("downstream refused record %d", i), h[orderlykgo.HeaderDeadLetterError])
				assert.Equal(t, strconv.Itoa(maxAttempts), h[orderlykgo.HeaderDeadLetterAttempts])
			} else {
				assert.Equal(t, fmt.Sprintf("record %d is malformed", i), h[orderlykgo.HeaderDeadLetterError])
				assert.Equal(t, "1", h[orderlykgo.HeaderDeadLetterAttempts])
			}
			assert.Equal(t, "orders", h[orderlykgo.HeaderDeadLetterTopic])
			assert.Equal(t, "g", h[orderlykgo.HeaderDeadLetterGroup], "the source names its group")
			ff, err := time.Parse(time.RFC3339Nano, h[orderlykgo.HeaderDeadLetterFirstFailure])
			require.NoError(t, err)
			assert.True(t, !ff.Before(started) && !ff.After(finished), "first failure %v within the run [%v, %v]", ff, started, finished)
			assert.Equal(t, fmt.Sprintf("%d/%d", op, off), h["test-trace"], "the injector gets the dead-letter context")

			// One key's dead letters share a partition, in offset order.
			if last, ok := lastByKey[string(m.Key)]; ok {
				assert.Greater(t, off, last, "dlq partition %d, key %s", dp, m.Key)
			}
			lastByKey[string(m.Key)] = off
		}
	}
	require.Len(t, seen, wantDead)
}

// The sink's record: original key, value and headers first, the sink's
// headers replacing any of the same name from an earlier dead-lettering,
// the topic named by the option; a parked key's follower has no first
// failure. A failed write is returned (so the engine retries it), a done
// context sends nothing, and the original record is not modified.
func TestDeadLetterSinkRecord(t *testing.T) {
	t.Parallel()
	rec := &orderly.Record{Topic: "orders", Partition: 2, Offset: 41, Key: []byte("k"), Value: []byte("v"),
		Headers: []orderly.Header{{Key: "a", Value: []byte("1")}, {Key: orderlykgo.HeaderDeadLetterError, Value: []byte("old")}}}
	first := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	dl := orderly.DeadLetter{Err: errors.New("boom"), Attempts: 4, FirstFailure: first, Group: "billing"}

	c := cluster(t, 1, 1, "parked-orders")
	p := newProducer(t, c, false)
	sink, err := orderlykgo.NewDeadLetterSink(p,
		orderlykgo.WithDeadLetterTopic(func(topic string) string { return "parked-" + topic }))
	require.NoError(t, err)
	r := sink.Record(rec, dl)
	require.Equal(t, "parked-orders", r.Topic)
	require.Equal(t, "parked-orders", sink.DeadLetterTopic(rec))
	require.Equal(t, "k", string(r.Key))
	require.Equal(t, "v", string(r.Value))
	require.Equal(t, []kgo.RecordHeader{
		{Key: "a", Value: []byte("1")},
		{Key: orderlykgo.HeaderDeadLetterError, Value: []byte("boom")},
		{Key: orderlykgo.HeaderDeadLetterAttempts, Value: []byte("4")},
		{Key: orderlykgo.HeaderDeadLetterTopic, Value: []byte("orders")},
		{Key: orderlykgo.HeaderDeadLetterPartition, Value: []byte("2")},
		{Key: orderlykgo.HeaderDeadLetterOffset, Value: []byte("41")},
		{Key: orderlykgo.HeaderDeadLetterFirstFailure, Value: []byte("2026-01-02T03:04:05.000000006Z")},
		{Key: orderlykgo.HeaderDeadLetterGroup, Value: []byte("billing")},
	}, r.Headers)
	parked := headerMap(sink.Record(rec, orderly.DeadLetter{Err: orderly.ErrKeyParked}))
	require.Equal(t, orderly.ErrKeyParked.Error(), parked[orderlykgo.HeaderDeadLetterError])
	require.Equal(t, "0", parked[orderlykgo.HeaderDeadLetterAttempts])
	require.NotContains(t, parked, orderlykgo.HeaderDeadLetterFirstFailure)
	require.NotContains(t, parked, orderlykgo.HeaderDeadLetterGroup)

	require.NoError(t, sink.DeadLetter(context.Background(), rec, dl))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, sink.DeadLetter(cancelled, rec, dl), context.Canceled, "a done context sends nothing")
	readAll(t, c, "parked-orders", 1, 1)
	require.Equal(t, "1", string(rec.Headers[0].Value), "the record is not modified")
	require.Equal(t, "old", string(rec.Headers[1].Value))

	p.Close()
	require.Error(t, sink.DeadLetter(context.Background(), rec, dl), "a failed write is returned")
}

func TestNewDeadLetterSinkRejectsBadOptions(t *testing.T) {
	p := orderlykgo.NewProducerFrom(mustClient(t))
	for name, f := range map[string]func() error{
		"nil producer": func() error { _, err := orderlykgo.NewDeadLetterSink(nil); return err },
		"nil option":   func() error { _, err := orderlykgo.NewDeadLetterSink(p, nil); return err },
		"nil topic": func() error {
			_, err := orderlykgo.NewDeadLetterSink(p, orderlykgo.WithDeadLetterTopic(nil))
			return err
		},
		"nil injector": func() error {
			_, err := orderlykgo.NewDeadLetterSink(p, orderlykgo.WithHeaderInjector(nil))
			return err
		},
	} {
		require.ErrorIs(t, f(), orderlykgo.ErrInvalidConfig, name)
	}
}

func mustClient(t *testing.T) *kgo.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers("b:9092"))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}
