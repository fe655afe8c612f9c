package tracing_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/orderly-go/orderly/tracing"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// An engine on the memory adapter with the tracing hooks: every record's
// process span continues its producer's trace, the flaky record's retries
// and the poison record's dead-letter write are spans of that trace, the
// dead-letter record carries the write's context, and the metrics count
// what happened.
func TestEngineTracesRecordsEndToEnd(t *testing.T) {
	r := newRig(t)
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("orders", 2))
	require.NoError(t, log.CreateTopic("orders.dlq", 1))

	producers := map[string]trace.SpanContext{}
	for _, key := range []string{"ok-1", "ok-2", "flaky", "poison", "ok-3"} {
		ctx, span := r.tp.Tracer("producer").Start(context.Background(), "send orders", trace.WithSpanKind(trace.SpanKindProducer))
		rec := orderly.Record{Topic: "orders", Partition: -1, Key: []byte(key), Value: []byte(key)}
		tracing.Inject(ctx, tracing.RecordCarrier(&rec))
		_, err := log.ProduceRecord(rec)
		require.NoError(t, err)
		span.End()
		producers[key] = span.SpanContext()
	}

	var mu sync.Mutex
	calls := map[string]int{}
	handler := orderly.HandlerFunc(func(ctx context.Context, rec *orderly.Record) error {
		mu.Lock()
		calls[string(rec.Key)]++
		n := calls[string(rec.Key)]
		mu.Unlock()
		switch {
		case string(rec.Key) == "flaky" && n <= 2:
			return errors.New("downstream timeout")
		case string(rec.Key) == "poison":
			return orderly.Permanent(errors.New("cannot decode"))
		}
		return nil
	})
	sink := orderly.DeadLetterFunc(func(ctx context.Context, rec *orderly.Record, dl orderly.DeadLetter) error {
		out := orderly.Record{Topic: "orders.dlq", Partition: 0, Key: rec.Key, Value: rec.Value}
		tracing.Inject(ctx, tracing.RecordCarrier(&out))
		_, err := log.ProduceRecord(out)
		return err
	})
	eng, err := orderly.New(log.Member("billing", []string{"orders"}), handler,
		orderly.WithHooks(r.hooks),
		orderly.WithRetry(orderly.RetryPolicy{InitialDelay: time.Millisecond, MaxAttempts: 5}),
		orderly.WithDeadLetter(sink),
		orderly.WithCommitInterval(5*time.Millisecond),
		orderly.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	require.NoError(t, err)
	reg, err := r.hooks.RegisterStats(eng.Stats)
	require.NoError(t, err)
	defer func() { require.NoError(t, reg.Unregister()) }()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	require.Eventually(t, func() bool {
		for p := range int32(2) {
			end, _ := log.EndOffset("orders", p)
			if pos, _ := log.Committed("billing", "orders", p); pos.Offset != end {
				return false
			}
		}
		return true
	}, 10*time.Second, time.Millisecond)
	metricsWhileRunning := r.collect(t)
	cancel()
	require.NoError(t, <-done)

	process := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range r.ended("process orders") {
		key := attrs(s.Attributes())["messaging.kafka.message.key"].AsString()
		require.NotContains(t, process, key, "one process span per record")
		process[key] = s
	}
	require.Len(t, process, len(producers))
	for key, producer := range producers {
		s := process[key]
		assert.Equal(t, producer.TraceID(), s.SpanContext().TraceID(), "%s: one trace from producer to handler", key)
		assert.Equal(t, producer.SpanID(), s.Parent().SpanID(), "%s: the producer span is the parent", key)
		assert.Equal(t, trace.SpanKindConsumer, s.SpanKind())
		require.Len(t, events(s, "dequeue"), 1, key)
	}
	assert.Equal(t, "handled", attrs(process["ok-1"].Attributes())[tracing.OutcomeKey].AsString())

	flaky := process["flaky"]
	assert.Equal(t, codes.Unset, flaky.Status().Code)
	assert.Len(t, events(flaky, "retry"), 2)
	assert.Len(t, events(flaky, "exception"), 2)
	retries := r.ended("retry orders")
	require.Len(t, retries, 2)
	for _, s := range retries {
		assert.Equal(t, flaky.SpanContext().SpanID(), s.Parent().SpanID())
	}

	poison := process["poison"]
	assert.Equal(t, codes.Error, poison.Status().Code)
	assert.Equal(t, "dead_lettered", attrs(poison.Attributes())[tracing.OutcomeKey].AsString())
	send := r.one(t, "send orders.dlq")
	assert.Equal(t, trace.SpanKindProducer, send.SpanKind())
	assert.Equal(t, poison.SpanContext().SpanID(), send.Parent().SpanID())
	dlq, err := readOne(log, "orders.dlq")
	require.NoError(t, err)
	tp, _ := dlq.Header("traceparent")
	assert.Contains(t, string(tp), send.SpanContext().SpanID().String(), "the dead-letter record carries the send span")

	var committedTo int64
	for _, s := range r.ended("commit orders") {
		committedTo += attrs(s.Attributes())[tracing.CommitRecordsKey].AsInt64()
	}
	assert.Equal(t, int64(len(producers)), committedTo, "the commit spans cover every record once")

	m := r.collect(t)
	assert.Equal(t, int64(5), total(t, m["messaging.client.consumed.messages"]))
	assert.Equal(t, int64(4), total(t, m["orderly.records.handled"]))
	assert.Equal(t, int64(3), total(t, m["orderly.records.failed"]))
	assert.Equal(t, int64(2), total(t, m["orderly.records.retried"]))
	assert.Equal(t, int64(1), total(t, m["orderly.records.dead_lettered"]))
	assert.Equal(t, int64(0), total(t, m["orderly.handler.in_flight"]))
	assert.Equal(t, uint64(7), count(t, m["messaging.process.duration"]))
	assert.Equal(t, uint64(5), count(t, m["orderly.mailbox.wait"]))
	assert.Equal(t, int64(5), total(t, m["orderly.commit.records"]))
	assert.Equal(t, int64(5), total(t, metricsWhileRunning["orderly.partition.watermark"]), "the watermarks of both partitions sum to the records")
	assert.Equal(t, int64(0), total(t, metricsWhileRunning["orderly.partition.commit_lag"]))
}

// readOne reads the first record of topic through a throwaway consumer
// group.
func readOne(log *memory.Log, topic string) (*orderly.Record, error) {
	got := make(chan *orderly.Record, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := log.Member("reader", []string{topic}).Consume(ctx, func(c orderly.Claim) {
		select {
		case b := <-c.Records():
			select {
			case got <- b[0]:
			default:
			}
			cancel()
		case <-ctx.Done():
		}
	})
	select {
	case rec := <-got:
		return rec, nil
	default:
		return nil, errors.Join(errors.New("no record"), err)
	}
}
