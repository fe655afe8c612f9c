package tracing_test

import (
	"context"
	"testing"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/tracing"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// neverSampledRecord runs the hook calls of one record that succeeds at
// once, as the engine makes them.
func neverSampledRecord(h *tracing.Hooks, r *orderly.Record, info orderly.RecordInfo) {
	h.OnRecordDispatched(r, info)
	if !h.WantsStartTime(r) {
		info.Started = time.Time{}
	}
	ctx := h.OnAttemptStarted(context.Background(), r, info)
	h.OnAttemptFinished(ctx, r, info, nil)
	h.OnRecordDone(r, info, orderly.OutcomeHandled, nil)
}

// The hook calls of one record that succeeds at once, unsampled: the
// floor of what tracing adds per record when sampling is off.
func BenchmarkNeverSampledRecord(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	h := tracing.New(tracing.WithTracerProvider(tp))
	r := &orderly.Record{Topic: "t", Partition: 1, Offset: 5, Key: []byte("k"), Value: []byte("v")}
	info := orderly.RecordInfo{Group: "g", Dispatched: time.Now(), Started: time.Now(), Attempt: 1}
	b.ReportAllocs()
	for b.Loop() {
		neverSampledRecord(h, r, info)
	}
}

// The same with the metrics recorded into an SDK MeterProvider.
func BenchmarkNeverSampledRecordWithMetrics(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	h := tracing.New(tracing.WithTracerProvider(tp), tracing.WithMeterProvider(mp))
	r := &orderly.Record{Topic: "t", Partition: 1, Offset: 5, Key: []byte("k"), Value: []byte("v")}
	info := orderly.RecordInfo{Group: "g", Dispatched: time.Now(), Started: time.Now(), Attempt: 1}
	b.ReportAllocs()
	for b.Loop() {
		neverSampledRecord(h, r, info)
	}
}

// The same over the API's no-op TracerProvider: the hooks' own cost, with
// a span start that costs next to nothing.
func BenchmarkNoopProviderRecord(b *testing.B) {
	h := tracing.New(tracing.WithTracerProvider(tracenoop.NewTracerProvider()))
	r := &orderly.Record{Topic: "t", Partition: 1, Offset: 5, Key: []byte("k"), Value: []byte("v")}
	info := orderly.RecordInfo{Group: "g", Dispatched: time.Now(), Started: time.Now(), Attempt: 1}
	b.ReportAllocs()
	for b.Loop() {
		neverSampledRecord(h, r, info)
	}
}

// The SDK's own Start of an unsampled span, with the options the hooks
// pass: the part of BenchmarkNeverSampledRecord the hooks cannot avoid
// (the OpenTelemetry API has no way to ask the sampler without starting a
// span).
func BenchmarkSDKStartNeverSampled(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	tr := tp.Tracer(tracing.ScopeName)
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithTimestamp(time.Now())}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, span := tr.Start(ctx, "process t", opts...)
		span.End()
	}
}
