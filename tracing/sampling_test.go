package tracing_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/tracing"
)

// attempt runs one attempt's hooks for rec and returns the handler's
// context and whether its span was recording while the handler ran.
func attempt(h *tracing.Hooks, ctx context.Context, rec *orderly.Record, n int, err error) (context.Context, bool) {
	info := orderly.RecordInfo{Group: "g", Dispatched: time.Now(), Attempt: n}
	hc := h.OnAttemptStarted(ctx, rec, info)
	recording := trace.SpanFromContext(hc).IsRecording()
	h.OnAttemptFinished(hc, rec, info, err)
	return hc, recording
}

// With WithRecordSampling(0) a record without a producer's decision gets
// no span, whatever the provider's sampler (here: always), and its handler
// no span context, not even that of the span Run's context carries. A
// record whose producer sampled it is traced; one whose producer did not
// is left out, and its handler carries the producer's unsampled context.
func TestRecordSamplingFollowsTheProducerAndLeavesTheRestOut(t *testing.T) {
	r := newRig(t, tracing.WithRecordSampling(0))

	runCtx, runSpan := r.tp.Tracer("app").Start(context.Background(), "run")
	for name, ctx := range map[string]context.Context{"no span": context.Background(), "Run's span": runCtx} {
		hc, _ := attempt(r.hooks, ctx, &orderly.Record{Topic: "orders", Offset: 1, Value: []byte("v")}, 1, nil)
		assert.False(t, trace.SpanContextFromContext(hc).IsValid(), "%s: the handler gets no span context", name)
	}

	sampled, producerSpan := r.produced(t, "orders", 0, 2, "k")
	_, recording := attempt(r.hooks, context.Background(), sampled, 1, nil)
	assert.True(t, recording, "the producer sampled it: traced")

	unsampledParent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{7}, SpanID: trace.SpanID{7}, Remote: true})
	unsampled := &orderly.Record{Topic: "orders", Offset: 3, Value: []byte("v")}
	tracing.Inject(trace.ContextWithSpanContext(context.Background(), unsampledParent), tracing.RecordCarrier(unsampled))
	hc, _ := attempt(r.hooks, runCtx, unsampled, 1, nil)
	sc := trace.SpanContextFromContext(hc)
	assert.Equal(t, unsampledParent.TraceID(), sc.TraceID(), "the producer's context goes on")
	assert.False(t, sc.IsSampled())

	runSpan.End()
	got := r.ended("process orders")
	require.Len(t, got, 1, "only the record its producer sampled has a span")
	assert.Equal(t, producerSpan.SpanID(), got[0].Parent().SpanID())
	require.Len(t, r.spans.Started(), 3, "the producer's span, Run's and the one process span")
}

// A ratio picks about that share of the records, the same ones each time:
// every attempt of a record gets the same answer, so a record left out has
// no retry span either.
func TestRecordSamplingRatioPicksTheSameRecordsEveryAttempt(t *testing.T) {
	r := newRig(t, tracing.WithRecordSampling(0.25))
	const n = 4000
	first := make(map[int64]bool)
	for o := range int64(n) {
		_, first[o] = attempt(r.hooks, context.Background(), &orderly.Record{Topic: "orders", Partition: 1, Offset: o}, 1, nil)
	}
	traced := 0
	for _, in := range first {
		if in {
			traced++
		}
	}
	assert.InDelta(t, n/4, traced, n/20, "about a quarter of the records traced")
	for o := range int64(n) {
		_, recording := attempt(r.hooks, context.Background(), &orderly.Record{Topic: "orders", Partition: 1, Offset: o}, 2, nil)
		require.Equal(t, first[o], recording, "offset %d: the same answer at a later attempt", o)
	}
	assert.Empty(t, r.ended("retry orders"), "a left-out record's later attempts start no retry span")
}

// A left-out record's dead-letter write starts no span, and
// OnDeadLetterEnd ends none: not the span Run's context carries.
func TestRecordSamplingLeavesOutTheDeadLetterWriteToo(t *testing.T) {
	r := newRig(t, tracing.WithRecordSampling(0))
	runCtx, runSpan := r.tp.Tracer("app").Start(context.Background(), "run")
	rec := &orderly.Record{Topic: "orders", Offset: 1}
	attempt(r.hooks, runCtx, rec, 1, assert.AnError)
	info := orderly.RecordInfo{Group: "g", Attempt: 1}
	dl := r.hooks.OnDeadLetterStart(runCtx, rec, info, assert.AnError)
	assert.False(t, trace.SpanFromContext(dl).IsRecording())
	r.hooks.OnDeadLetterEnd(dl, rec, nil)
	r.hooks.OnRecordDone(rec, info, orderly.OutcomeDeadLettered, assert.AnError)
	assert.Empty(t, r.ended("send orders.dlq"))
	assert.Empty(t, r.spans.Ended(), "Run's span is not ended by the hooks")
	runSpan.End()
}

// Ratios outside 0..1 are clamped: above 1 traces every record, below 0
// (and NaN) none.
func TestRecordSamplingClampsTheRatio(t *testing.T) {
	for _, c := range []struct {
		ratio  float64
		traced bool
	}{{2, true}, {1, true}, {0, false}, {-1, false}, {math.NaN(), false}} {
		r := newRig(t, tracing.WithRecordSampling(c.ratio))
		for o := range int64(100) {
			_, recording := attempt(r.hooks, context.Background(), &orderly.Record{Topic: "orders", Offset: o}, 1, nil)
			require.Equal(t, c.traced, recording, "ratio %v, offset %d", c.ratio, o)
		}
	}
}

// A record left out allocates nothing at all, and the provider is not
// asked: no span is started.
func TestRecordLeftOutAllocatesNothing(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	h := tracing.New(tracing.WithTracerProvider(tp), tracing.WithMeterProvider(noop.NewMeterProvider()), tracing.WithRecordSampling(0))
	rec := &orderly.Record{Topic: "orders", Partition: 2, Offset: 9, Key: []byte("k"), Value: []byte("v")}
	info := orderly.RecordInfo{Group: "g", Dispatched: time.Now(), Attempt: 1}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(200, func() {
		h.OnRecordDispatched(rec, info)
		hc := h.OnAttemptStarted(ctx, rec, info)
		h.OnAttemptFinished(hc, rec, info, nil)
		h.OnRecordDone(rec, info, orderly.OutcomeHandled, nil)
	})
	assert.Zero(t, allocs)
	assert.Empty(t, spans.Started())
}

// ObserveRecords (orderly.HookRecordFilter) leaves out, with
// WithRecordSampling, the records the ratio leaves out and that carry no
// producer context; it keeps every record without WithRecordSampling, when
// a per-record metric is enabled, or when Run's context carries a span.
func TestObserveRecordsLeavesOutWhatIsNotTraced(t *testing.T) {
	recs := []*orderly.Record{{Topic: "orders", Offset: 1}, {Topic: "orders", Offset: 2}}
	withHeader := &orderly.Record{Topic: "orders", Offset: 3}
	tracing.Inject(trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}})), tracing.RecordCarrier(withHeader))
	recs = append(recs, withHeader)
	keep := func(h *tracing.Hooks, ctx context.Context) []bool {
		k := make([]bool, len(recs))
		h.ObserveRecords(ctx, recs, k)
		return k
	}
	none := tracing.New(tracing.WithRecordSampling(0), tracing.WithMeterProvider(noop.NewMeterProvider()))
	assert.Equal(t, []bool{false, false, true}, keep(none, context.Background()))
	every := tracing.New(tracing.WithRecordSampling(1), tracing.WithMeterProvider(noop.NewMeterProvider()))
	assert.Equal(t, []bool{true, true, true}, keep(every, context.Background()))
	unsampled := tracing.New(tracing.WithMeterProvider(noop.NewMeterProvider()))
	assert.Equal(t, []bool{true, true, true}, keep(unsampled, context.Background()), "without WithRecordSampling the sampler decides: all kept")
	tp := sdktrace.NewTracerProvider()
	runCtx, span := tp.Tracer("app").Start(context.Background(), "run")
	defer span.End()
	assert.Equal(t, []bool{true, true, true}, keep(none, runCtx), "Run's span must not reach a left-out handler: all kept")
}
