package tracing_test

import (
	"context"
	"testing"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The hook calls of one record that succeeds at once, unsampled: the
// floor of what tracing adds per record when sampling is off.
func BenchmarkNeverSampledRecord(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	h := tracing.New(tracing.WithTracerProvider(tp))
	r := &orderly.Record{Topic: "t", Partition: 1, Offset: 5, Key: []byte("k"), Value: []byte("v")}
	info := orderly.RecordInfo{Group: "g", Dispatched: time.Now(), Started: time.Now(), Attempt: 1}
	b.ReportAllocs()
	for b.Loop() {
		h.OnRecordDispatched(r, info)
		ctx := h.OnAttemptStarted(context.Background(), r, info)
		h.OnAttemptFinished(ctx, r, info, nil)
		h.OnRecordDone(r, info, orderly.OutcomeHandled, nil)
	}
}
