package tracing_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/orderly-go/orderly/tracing"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// The engine's clock read before an attempt is wanted only when a duration
// histogram records it; spans read the clock themselves.
func TestStartTimeIsWantedOnlyByDurationMetrics(t *testing.T) {
	never := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	rec := &orderly.Record{Topic: "orders"}
	assert.False(t, tracing.New(tracing.WithTracerProvider(never), tracing.WithMeterProvider(noop.NewMeterProvider())).WantsStartTime(rec))
	assert.True(t, newRig(t).hooks.WantsStartTime(rec), "an SDK meter provider records the durations")
}

// A sampled record whose attempt came without a start time (the engine
// was told no hook wanted it) still has its enqueue and dequeue events and
// starts at its dispatch.
func TestSampledRecordWithoutStartTimeReadsTheClock(t *testing.T) {
	r := newRig(t)
	dispatched := time.Now().Add(-time.Second)
	rec := &orderly.Record{Topic: "orders", Offset: 7}
	info := orderly.RecordInfo{Dispatched: dispatched, Attempt: 1}
	ctx := r.hooks.OnAttemptStarted(context.Background(), rec, info)
	r.hooks.OnAttemptFinished(ctx, rec, info, nil)

	s := r.one(t, "process orders")
	assert.Equal(t, dispatched, s.StartTime())
	enq, deq := events(s, "enqueue"), events(s, "dequeue")
	require.Len(t, enq, 1)
	require.Len(t, deq, 1)
	assert.Equal(t, dispatched, enq[0].Time)
	assert.True(t, deq[0].Time.After(dispatched), "dequeued after dispatch")
	assert.False(t, s.EndTime().Before(deq[0].Time), "ends after the dequeue")
	wait := attrs(deq[0].Attributes)[tracing.MailboxWaitKey].AsFloat64()
	assert.InDelta(t, float64(deq[0].Time.Sub(dispatched))/float64(time.Millisecond), wait, 1e-6)
}

// An unsampled record adds no allocation to those of the provider's own
// Start: the options, names and attribute sets the hooks use are shared.
func TestUnsampledRecordAllocatesNothingOfItsOwn(t *testing.T) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	h := tracing.New(tracing.WithTracerProvider(tp), tracing.WithMeterProvider(noop.NewMeterProvider()))
	rec := &orderly.Record{Topic: "orders", Partition: 2, Offset: 9, Key: []byte("k"), Value: []byte("v")}
	info := orderly.RecordInfo{Group: "g", Dispatched: time.Now(), Attempt: 1}
	ctx := context.Background()
	hooks := testing.AllocsPerRun(200, func() {
		h.OnRecordDispatched(rec, info)
		hc := h.OnAttemptStarted(ctx, rec, info)
		h.OnAttemptFinished(hc, rec, info, nil)
		h.OnRecordDone(rec, info, orderly.OutcomeHandled, nil)
	})
	tr := tp.Tracer(tracing.ScopeName)
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithTimestamp(info.Dispatched)}
	start := testing.AllocsPerRun(200, func() { tr.Start(ctx, "process orders", opts...) })
	assert.LessOrEqual(t, hooks, start, "the hooks allocate no more than the SDK's Start alone")
}

// An unsampled record's handler still gets a span context, a new trace
// marked unsampled (so what it produces carries the decision on), even
// when the engine's context carries a span of its own.
func TestUnsampledRecordWithoutHeadersGetsAnUnsampledTrace(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans), sdktrace.WithSampler(sdktrace.NeverSample()))
	h := tracing.New(tracing.WithTracerProvider(tp))
	run := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled})
	rec := &orderly.Record{Topic: "orders", Offset: 1}
	info := orderly.RecordInfo{Dispatched: time.Now(), Attempt: 1}
	for name, ctx := range map[string]context.Context{
		"no span":    context.Background(),
		"Run's span": trace.ContextWithSpanContext(context.Background(), run),
	} {
		hc := h.OnAttemptStarted(ctx, rec, info)
		sc := trace.SpanContextFromContext(hc)
		assert.True(t, sc.IsValid(), name)
		assert.False(t, sc.IsSampled(), name)
		assert.NotEqual(t, run.TraceID(), sc.TraceID(), "%s: a trace of its own", name)
		h.OnAttemptFinished(hc, rec, info, nil)
	}
	assert.Empty(t, spans.Started())
}

// Records dispatched at many different moments each start their span at
// their own dispatch, whatever the records around them (the start options
// of a dispatch time are shared and cached).
func TestEverySpanStartsAtItsOwnDispatch(t *testing.T) {
	r := newRig(t)
	base := time.Now().Add(-time.Hour)
	const n = 500
	ctxs := make([]context.Context, n)
	recs := make([]*orderly.Record, n)
	infos := make([]orderly.RecordInfo, n)
	for i := range n {
		recs[i] = &orderly.Record{Topic: "orders", Partition: int32(i % 3), Offset: int64(i)}
		// Batches of 4 records share a dispatch time.
		infos[i] = orderly.RecordInfo{Dispatched: base.Add(time.Duration(i/4) * 1237 * time.Microsecond), Attempt: 1}
	}
	for i := range n { // started out of dispatch order
		j := (i * 7) % n
		ctxs[j] = r.hooks.OnAttemptStarted(context.Background(), recs[j], infos[j])
	}
	for i := range n {
		r.hooks.OnAttemptFinished(ctxs[i], recs[i], infos[i], nil)
	}
	spans := r.ended("process orders")
	require.Len(t, spans, n)
	for _, s := range spans {
		off := attrs(s.Attributes())["messaging.kafka.offset"].AsInt64()
		assert.Equal(t, infos[off].Dispatched, s.StartTime(), "offset %d", off)
	}
}

// Partitions that share a number but not a topic or group are measured
// apart, also when their first records race.
func TestPartitionsSharingANumberAreMeasuredApart(t *testing.T) {
	r := newRig(t)
	type part struct {
		group, topic string
	}
	parts := []part{{"g1", "a"}, {"g2", "a"}, {"g1", "b"}, {"", "a"}}
	var wg sync.WaitGroup
	for i, p := range parts {
		for range 3 {
			wg.Go(func() {
				for range i + 1 {
					r.hooks.OnRecordDispatched(&orderly.Record{Topic: p.topic, Partition: 0}, orderly.RecordInfo{Group: p.group})
				}
			})
		}
	}
	wg.Wait()
	m := r.collect(t)
	for i, p := range parts {
		with := []attribute.KeyValue{semconv.MessagingDestinationName(p.topic), semconv.MessagingDestinationPartitionID("0")}
		if p.group != "" {
			with = append(with, semconv.MessagingConsumerGroupName(p.group))
		}
		got := total(t, m["messaging.client.consumed.messages"], with...)
		if p.group == "" {
			got -= total(t, m["messaging.client.consumed.messages"], semconv.MessagingDestinationName(p.topic), semconv.MessagingConsumerGroupName("g1"))
			got -= total(t, m["messaging.client.consumed.messages"], semconv.MessagingDestinationName(p.topic), semconv.MessagingConsumerGroupName("g2"))
		}
		assert.Equal(t, int64(3*(i+1)), got, fmt.Sprintf("%s/%s", p.group, p.topic))
	}
}

// An engine with the hooks, sampling everything and no metrics (so the
// engine skips its clock read before each attempt): every process span
// still starts at its dispatch and carries enqueue, then dequeue.
func TestEngineWithoutMetricsStillTimesSampledSpans(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	hooks := tracing.New(tracing.WithTracerProvider(tp), tracing.WithMeterProvider(noop.NewMeterProvider()))
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("orders", 2))
	const n = 50
	for i := range n {
		_, _, err := log.Produce("orders", fmt.Appendf(nil, "k%d", i%7), []byte("v"))
		require.NoError(t, err)
	}
	done := make(chan struct{}, n)
	eng, err := orderly.New(log.Member("billing", []string{"orders"}), orderly.HandlerFunc(func(context.Context, *orderly.Record) error {
		done <- struct{}{}
		return nil
	}), orderly.WithHooks(hooks))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- eng.Run(ctx) }()
	for range n {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("records not handled")
		}
	}
	cancel()
	require.NoError(t, <-stopped)

	var process []sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		if s.Name() == "process orders" {
			process = append(process, s)
		}
	}
	require.Len(t, process, n)
	for _, s := range process {
		enq, deq := events(s, "enqueue"), events(s, "dequeue")
		require.Len(t, enq, 1)
		require.Len(t, deq, 1)
		assert.Equal(t, enq[0].Time, s.StartTime(), "starts at dispatch")
		assert.False(t, deq[0].Time.Before(enq[0].Time), "dequeued after dispatch")
		assert.False(t, s.EndTime().Before(deq[0].Time), "ends after the dequeue")
	}
}
