package tracing_test

import (
	"context"
	"testing"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/tracing"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// rig is a tracer provider that records every span and a meter provider
// read by hand.
type rig struct {
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	hooks  *tracing.Hooks
}

func newRig(t *testing.T, opts ...tracing.Option) *rig {
	t.Helper()
	r := &rig{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	r.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.spans), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	t.Cleanup(func() { _ = r.tp.Shutdown(context.Background()); _ = mp.Shutdown(context.Background()) })
	r.hooks = tracing.New(append([]tracing.Option{tracing.WithTracerProvider(r.tp), tracing.WithMeterProvider(mp)}, opts...)...)
	return r
}

// produced returns a record of topic whose headers carry the context of a
// new producer span, and that span.
func (r *rig) produced(t *testing.T, topic string, partition int32, offset int64, key string) (*orderly.Record, trace.SpanContext) {
	t.Helper()
	ctx, span := r.tp.Tracer("producer").Start(context.Background(), "send "+topic, trace.WithSpanKind(trace.SpanKindProducer))
	defer span.End()
	rec := &orderly.Record{Topic: topic, Partition: partition, Offset: offset, Key: []byte(key), Value: []byte("v")}
	tracing.Inject(ctx, tracing.RecordCarrier(rec))
	return rec, span.SpanContext()
}

// ended returns the ended spans named name.
func (r *rig) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range r.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// one returns the single ended span named name.
func (r *rig) one(t *testing.T, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	got := r.ended(name)
	require.Len(t, got, 1, "ended spans named %q", name)
	return got[0]
}

func attrs(kvs []attribute.KeyValue) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

func events(s sdktrace.ReadOnlySpan, name string) []sdktrace.Event {
	var out []sdktrace.Event
	for _, e := range s.Events() {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// collect reads the metrics and returns them by name.
func (r *rig) collect(t *testing.T) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.reader.Collect(context.Background(), &rm))
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// total sums an int64 sum or gauge over the data points whose attributes
// include every one of with.
func total(t *testing.T, data metricdata.Aggregation, with ...attribute.KeyValue) int64 {
	t.Helper()
	var pts []metricdata.DataPoint[int64]
	switch d := data.(type) {
	case metricdata.Sum[int64]:
		pts = d.DataPoints
	case metricdata.Gauge[int64]:
		pts = d.DataPoints
	default:
		t.Fatalf("not an int64 sum or gauge: %T", data)
	}
	var n int64
	for _, p := range pts {
		if matches(p.Attributes, with) {
			n += p.Value
		}
	}
	return n
}

// count sums a float64 histogram's counts over matching data points.
func count(t *testing.T, data metricdata.Aggregation, with ...attribute.KeyValue) uint64 {
	t.Helper()
	h, ok := data.(metricdata.Histogram[float64])
	require.True(t, ok, "not a float64 histogram: %T", data)
	var n uint64
	for _, p := range h.DataPoints {
		if matches(p.Attributes, with) {
			n += p.Count
		}
	}
	return n
}

func matches(set attribute.Set, with []attribute.KeyValue) bool {
	for _, kv := range with {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}
