package orderlysarama_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/IBM/sarama/mocks"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/orderlysarama"
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

// injectTrace is the header injector: it writes what the hook put in ctx.
func injectTrace(ctx context.Context, m *sarama.ProducerMessage) {
	if v, ok := ctx.Value(traceKey{}).(string); ok {
		orderlysarama.ProducerHeaders{Msg: m}.Set("test-trace", v)
	}
}

// readAll reads n messages from every partition of topic, oldest first,
// and returns them by partition in offset order.
func readAll(t *testing.T, c *kfake.Cluster, topic string, partitions int32, n int) map[int32][]*sarama.ConsumerMessage {
	t.Helper()
	consumer, err := sarama.NewConsumer(c.ListenAddrs(), orderlysarama.DefaultConfig())
	require.NoError(t, err)
	defer consumer.Close()
	msgs := make(chan *sarama.ConsumerMessage, n+16)
	for p := range partitions {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		require.NoError(t, err)
		defer pc.Close()
		go func() {
			for m := range pc.Messages() {
				msgs <- m
			}
		}()
	}
	out := map[int32][]*sarama.ConsumerMessage{}
	timeout := time.After(20 * time.Second)
	for got := 0; got < n; got++ {
		select {
		case m := <-msgs:
			out[m.Partition] = append(out[m.Partition], m)
		case <-timeout:
			t.Fatalf("read %d of %d messages from %s", got, n, topic)
		}
	}
	select {
	case m := <-msgs:
		t.Fatalf("more than %d messages in %s: %s", n, topic, m.Value)
	case <-time.After(300 * time.Millisecond):
	}
	return out
}

func headerMap(m *sarama.ConsumerMessage) map[string]string {
	h := map[string]string{}
	for _, r := range m.Headers {
		h[string(r.Key)] = string(r.Value)
	}
	return h
}

// waitCommitted waits until the group's commits reach end on every
// partition.
func waitCommitted(t *testing.T, c *kfake.Cluster, group, topic string, end []int64) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(c.ListenAddrs(), orderlysarama.DefaultConfig())
	require.NoError(t, err)
	defer admin.Close()
	parts := make([]int32, len(end))
	for i := range parts {
		parts[i] = int32(i)
	}
	require.Eventually(t, func() bool {
		resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
		if err != nil {
			return false // the group may not exist yet
		}
		for p, want := range end {
			b := resp.GetBlock(topic, int32(p))
			if b == nil || b.Err != sarama.ErrNoError || b.Offset != want {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "commits reach the end of every partition, past the dead-lettered records")
}

// Records that fail for good (transient errors until the attempts run out,
// and permanent errors at once) land in <topic>.dlq with their key, value
// and headers, plus the sink's headers; the engine commits past them.
func TestDeadLetterSinkWritesFailedRecordsToTheDeadLetterTopic(t *testing.T) {
	t.Parallel()
	const partitions, records, maxAttempts = 2, 60, 3
	c := cluster(t, 3, partitions, "orders", "orders.dlq")
	p := newProducer(t, c, false)

	type sent struct {
		key       string
		partition int32
		offset    int64
	}
	// Record i fails transiently every time if i%10 == 3, permanently if
	// i%10 == 7, and transiently twice (then succeeds) if i%10 == 5.
	kind := func(i int) string {
		switch i % 10 {
		case 3:
			return "transient"
		case 7:
			return "permanent"
		case 5:
			return "flaky"
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
		recs = append(recs, sent{key, part, off})
		byPos[[2]int64{int64(part), off}] = i
		end[part] = max(end[part], off+1)
	}

	var mu sync.Mutex
	attempts := map[int]int{}
	h := orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		mu.Lock()
		i := byPos[[2]int64{int64(r.Partition), r.Offset}]
		attempts[i]++
		a := attempts[i]
		mu.Unlock()
		switch kind(i) {
		case "transient":
			return fmt.Errorf("downstream refused record %d", i)
		case "permanent":
			return orderly.Permanent(fmt.Errorf("record %d is malformed", i))
		case "flaky":
			if a < maxAttempts {
				return errors.New("flaky")
			}
		}
		return nil
	})
	sink, err := orderlysarama.NewDeadLetterSink(newProducer(t, c, false), orderlysarama.WithHeaderInjector(injectTrace))
	require.NoError(t, err)
	started := time.Now()
	eng, err := orderly.New(newSource(t, c, "g", config(nil), "orders"), h,
		orderly.WithRetry(orderly.RetryPolicy{InitialDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond, MaxAttempts: maxAttempts}),
		orderly.WithDeadLetter(sink),
		orderly.WithHooks(dlTraceHook{}),
		orderly.WithCommitInterval(50*time.Millisecond),
		orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)
	waitCommitted(t, c, "g", "orders", end)
	require.NoError(t, stop())
	finished := time.Now()

	var wantDead int
	for i := range records {
		want := map[string]int{"ok": 1, "flaky": maxAttempts, "transient": maxAttempts, "permanent": 1}[kind(i)]
		assert.Equal(t, want, attempts[i], "handler calls for record %d (%s)", i, kind(i))
		if k := kind(i); k == "transient" || k == "permanent" {
			wantDead++
		}
	}
	require.Equal(t, uint64(wantDead), eng.Stats().RecordsDeadLettered)

	dlq := readAll(t, c, "orders.dlq", partitions, wantDead)
	seen := map[int]bool{}
	for dp, msgs := range dlq {
		lastByKey := map[string]int64{}
		for _, m := range msgs {
			h := headerMap(m)
			op, err := strconv.ParseInt(h[orderlysarama.HeaderDeadLetterPartition], 10, 32)
			require.NoError(t, err)
			off, err := strconv.ParseInt(h[orderlysarama.HeaderDeadLetterOffset], 10, 64)
			require.NoError(t, err)
			i, ok := byPos[[2]int64{op, off}]
			require.True(t, ok, "dead letter names a produced record: %v", h)
			require.False(t, seen[i], "record %d dead-lettered twice", i)
			seen[i] = true
			k := kind(i)
			require.Contains(t, []string{"transient", "permanent"}, k, "record %d", i)

			require.Equal(t, recs[i].key, string(m.Key))
			require.Equal(t, strconv.Itoa(i), string(m.Value))
			require.GreaterOrEqual(t, len(m.Headers), 2)
			assert.Equal(t, "seq", string(m.Headers[0].Key), "original headers first, in order")
			assert.Equal(t, strconv.Itoa(i), string(m.Headers[0].Value))
			assert.Equal(t, "origin", string(m.Headers[1].Key))
			assert.Equal(t, "test", string(m.Headers[1].Value))
			assert.Len(t, m.Headers, 2+7+1, "original, sink and injected headers: %v", h)

			if k == "transient" {
				assert.Equal(t, fmt.Sprintf("downstream refused record %d", i), h[orderlysarama.HeaderDeadLetterError])
				assert.Equal(t, strconv.Itoa(maxAttempts), h[orderlysarama.HeaderDeadLetterAttempts])
			} else {
				assert.Equal(t, fmt.Sprintf("record %d is malformed", i), h[orderlysarama.HeaderDeadLetterError])
				assert.Equal(t, "1", h[orderlysarama.HeaderDeadLetterAttempts])
			}
			assert.Equal(t, "orders", h[orderlysarama.HeaderDeadLetterTopic])
			assert.Equal(t, "g", h[orderlysarama.HeaderDeadLetterGroup])
			ff, err := time.Parse(time.RFC3339Nano, h[orderlysarama.HeaderDeadLetterFirstFailure])
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

// With key parking, the records of a key after its dead-lettered one
// follow it to the dead-letter topic in order and are never handled; the
// other keys go on, and the commits pass them all.
func TestDeadLetterSinkWithKeyParking(t *testing.T) {
	t.Parallel()
	c := cluster(t, 1, 1, "orders", "orders.dlq")
	p := newProducer(t, c, true)
	var badOffsets []int64
	var end int64
	for i := range 30 {
		key := []string{"bad", "a", "b"}[i%3]
		off := produceTo(t, p, "orders", 0, key, strconv.Itoa(i), orderly.Header{Key: "seq", Value: []byte(strconv.Itoa(i))})
		if key == "bad" {
			badOffsets = append(badOffsets, off)
		}
		end = off + 1
	}

	var mu sync.Mutex
	handledBad := []int64{}
	handledOthers := 0
	h := orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		mu.Lock()
		defer mu.Unlock()
		if string(r.Key) != "bad" {
			handledOthers++
			return nil
		}
		handledBad = append(handledBad, r.Offset)
		if r.Offset == badOffsets[0] {
			return orderly.Permanent(errors.New("poison"))
		}
		return nil
	})
	sink, err := orderlysarama.NewDeadLetterSink(newProducer(t, c, false))
	require.NoError(t, err)
	eng, err := orderly.New(newSource(t, c, "g", config(nil), "orders"), h,
		orderly.WithRetry(orderly.RetryPolicy{InitialDelay: 5 * time.Millisecond, MaxAttempts: 3}),
		orderly.WithDeadLetter(sink),
		orderly.WithKeyParking(0),
		orderly.WithCommitInterval(50*time.Millisecond),
		orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)
	waitCommitted(t, c, "g", "orders", []int64{end})
	require.Equal(t, 1, eng.Stats().Partitions[0].Parked)
	require.NoError(t, stop())

	mu.Lock()
	require.Equal(t, badOffsets[:1], handledBad, "a parked key's later records are never handled")
	require.Equal(t, 20, handledOthers, "other keys are not affected")
	mu.Unlock()

	msgs := readAll(t, c, "orders.dlq", 1, len(badOffsets))[0]
	var got []int64
	for i, m := range msgs {
		h := headerMap(m)
		off, err := strconv.ParseInt(h[orderlysarama.HeaderDeadLetterOffset], 10, 64)
		require.NoError(t, err)
		got = append(got, off)
		require.Equal(t, "bad", string(m.Key))
		require.Equal(t, "seq", string(m.Headers[0].Key))
		require.Equal(t, string(m.Value), string(m.Headers[0].Value))
		if i == 0 {
			require.Equal(t, "poison", h[orderlysarama.HeaderDeadLetterError])
			require.Equal(t, "1", h[orderlysarama.HeaderDeadLetterAttempts])
			require.NotEmpty(t, h[orderlysarama.HeaderDeadLetterFirstFailure])
			continue
		}
		require.Equal(t, orderly.ErrKeyParked.Error(), h[orderlysarama.HeaderDeadLetterError])
		require.Equal(t, "0", h[orderlysarama.HeaderDeadLetterAttempts], "never handled")
		require.NotContains(t, h, orderlysarama.HeaderDeadLetterFirstFailure, "never failed")
		require.Equal(t, "g", h[orderlysarama.HeaderDeadLetterGroup], "the source names its group")
	}
	require.Equal(t, badOffsets, got, "the key's records reach the dead-letter topic in offset order")
}

// A failed write is returned, so the engine retries it; a done context
// sends nothing; the topic is configurable; a record dead-lettered again
// gets fresh sink headers rather than duplicates.
func TestDeadLetterSinkWrites(t *testing.T) {
	rec := &orderly.Record{Topic: "orders", Partition: 2, Offset: 41, Key: []byte("k"), Value: []byte("v"),
		Headers: []orderly.Header{{Key: "a", Value: []byte("1")}, {Key: orderlysarama.HeaderDeadLetterError, Value: []byte("old")}}}
	first := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	dl := orderly.DeadLetter{Err: errors.New("boom"), Attempts: 4, FirstFailure: first, Group: "billing"}

	sp := mocks.NewSyncProducer(t, nil)
	brokerDown := errors.New("broker down")
	sp.ExpectSendMessageAndFail(brokerDown)
	sp.ExpectSendMessageWithMessageCheckerFunctionAndSucceed(func(m *sarama.ProducerMessage) error {
		if m.Topic != "parked-orders" {
			return fmt.Errorf("topic %q", m.Topic)
		}
		k, _ := m.Key.Encode()
		v, _ := m.Value.Encode()
		if string(k) != "k" || string(v) != "v" {
			return fmt.Errorf("key %q value %q", k, v)
		}
		got := map[string][]string{}
		var order []string
		for _, h := range m.Headers {
			got[string(h.Key)] = append(got[string(h.Key)], string(h.Value))
			order = append(order, string(h.Key))
		}
		want := map[string][]string{
			"a":                                        {"1"},
			orderlysarama.HeaderDeadLetterError:        {"boom"},
			orderlysarama.HeaderDeadLetterAttempts:     {"4"},
			orderlysarama.HeaderDeadLetterTopic:        {"orders"},
			orderlysarama.HeaderDeadLetterPartition:    {"2"},
			orderlysarama.HeaderDeadLetterOffset:       {"41"},
			orderlysarama.HeaderDeadLetterFirstFailure: {"2026-01-02T03:04:05.000000006Z"},
			orderlysarama.HeaderDeadLetterGroup:        {"billing"},
			"injected":                                 {"yes"},
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || order[0] != "a" {
			return fmt.Errorf("headers %v (order %v), want %v", got, order, want)
		}
		return nil
	})
	sink, err := orderlysarama.NewDeadLetterSink(orderlysarama.NewProducerFrom(sp),
		orderlysarama.WithDeadLetterTopic(func(topic string) string { return "parked-" + topic }),
		orderlysarama.WithHeaderInjector(func(ctx context.Context, m *sarama.ProducerMessage) {
			orderlysarama.ProducerHeaders{Msg: m}.Set("injected", "yes")
		}))
	require.NoError(t, err)

	require.ErrorIs(t, sink.DeadLetter(context.Background(), rec, dl), brokerDown)
	require.NoError(t, sink.DeadLetter(context.Background(), rec, dl))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, sink.DeadLetter(ctx, rec, dl), context.Canceled, "a done context sends nothing")
	require.Equal(t, "1", string(rec.Headers[0].Value), "the record is not modified")
	require.Equal(t, "old", string(rec.Headers[1].Value))
	require.NoError(t, sp.Close())

	require.Equal(t, "orders.dlq", mustSink(t).Message(rec, dl).Topic)
}

func mustSink(t *testing.T) *orderlysarama.DeadLetterSink {
	s, err := orderlysarama.NewDeadLetterSink(orderlysarama.NewProducerFrom(mocks.NewSyncProducer(t, nil)))
	require.NoError(t, err)
	return s
}

func TestNewDeadLetterSinkRejectsBadOptions(t *testing.T) {
	p := orderlysarama.NewProducerFrom(mocks.NewSyncProducer(t, nil))
	for name, f := range map[string]func() error{
		"nil producer": func() error { _, err := orderlysarama.NewDeadLetterSink(nil); return err },
		"nil option":   func() error { _, err := orderlysarama.NewDeadLetterSink(p, nil); return err },
		"nil topic": func() error {
			_, err := orderlysarama.NewDeadLetterSink(p, orderlysarama.WithDeadLetterTopic(nil))
			return err
		},
		"nil injector": func() error {
			_, err := orderlysarama.NewDeadLetterSink(p, orderlysarama.WithHeaderInjector(nil))
			return err
		},
	} {
		require.ErrorIs(t, f(), orderlysarama.ErrInvalidConfig, name)
	}
}

// Records that fail for good go to "<topic>.dlq", carrying the dead-letter
// span's trace context (here: whatever the injector writes from ctx).
func ExampleNewDeadLetterSink() {
	brokers := []string{"localhost:9092"}
	producer, err := orderlysarama.NewProducer(brokers, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer producer.Close() // after the engine's Run returned
	sink, err := orderlysarama.NewDeadLetterSink(producer,
		orderlysarama.WithHeaderInjector(func(ctx context.Context, m *sarama.ProducerMessage) {
			// e.g. tracing.Inject(ctx, tracing.ProducerCarrier(m))
		}))
	if err != nil {
		fmt.Println(err)
		return
	}
	src, err := orderlysarama.NewSource(brokers, "billing", []string{"orders"}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	eng, err := orderly.New(src, orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error { return nil }),
		orderly.WithRetry(orderly.RetryPolicy{MaxAttempts: 5}),
		orderly.WithDeadLetter(sink),
		orderly.WithKeyParking(0))
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = eng.Run(context.Background())
}
