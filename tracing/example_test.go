package tracing_test

import (
	"context"
	"fmt"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/orderly-go/orderly/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// A producer writes its trace context into the record's headers; the
// engine, with the tracing hooks, handles the record in a span of the same
// trace, and the handler's context carries it.
func ExampleNew() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer func() { _ = tp.Shutdown(context.Background()) }()

	log := memory.NewLog()
	_ = log.CreateTopic("orders", 1)
	ctx, send := tp.Tracer("shop").Start(context.Background(), "send orders", trace.WithSpanKind(trace.SpanKindProducer))
	rec := orderly.Record{Topic: "orders", Key: []byte("order-1"), Value: []byte("created")}
	tracing.Inject(ctx, tracing.RecordCarrier(&rec)) // W3C traceparent header
	_, _ = log.ProduceRecord(rec)
	send.End()

	done := make(chan struct{})
	handler := orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		fmt.Println("same trace as the producer:", trace.SpanContextFromContext(ctx).TraceID() == send.SpanContext().TraceID())
		close(done)
		return nil
	})
	eng, _ := orderly.New(log.Member("billing", []string{"orders"}), handler,
		orderly.WithHooks(tracing.New(tracing.WithTracerProvider(tp), tracing.WithCommitSpans(false))))
	runCtx, stop := context.WithCancel(context.Background())
	finished := make(chan error)
	go func() { finished <- eng.Run(runCtx) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	stop()
	<-finished

	for _, s := range spans.Ended() {
		fmt.Println(s.Name(), s.SpanKind())
	}
	// Output:
	// same trace as the producer: true
	// send orders producer
	// process orders consumer
}
