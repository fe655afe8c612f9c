package orderlykgo_test

import (
	"context"
	"fmt"
	"log"
	"os/signal"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/orderlykgo"
)

// A service consumes the "orders" topic as the "billing" group, with each
// order's events handled in order and different orders in parallel.
func Example() {
	src, err := orderlykgo.NewSource([]kgo.Opt{
		kgo.SeedBrokers("localhost:9092"),
		kgo.ConsumerGroup("billing"),
		kgo.ConsumeTopics("orders"),
		kgo.ClientID("billing"),
		kgo.RebalanceTimeout(time.Minute), // above the engine's revoke timeout
	})
	if err != nil {
		log.Fatal(err) // wraps orderlykgo.ErrInvalidConfig
	}
	eng, err := orderly.New(src, orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		fmt.Printf("order %s: %s\n", r.Key, r.Value)
		return nil
	}), orderly.WithMaxConcurrency(100), orderly.WithRevokeTimeout(30*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := eng.Run(ctx); err != nil { // drains and commits on SIGTERM
		log.Fatal(err)
	}
}

// Producing a record with headers; with WithInject, Produce adds headers
// from its context (trace context, say) through RecordHeaders.
func ExampleProducer() {
	p, err := orderlykgo.NewProducer([]kgo.Opt{kgo.SeedBrokers("localhost:9092")},
		orderlykgo.WithInject(func(ctx context.Context, h orderlykgo.RecordHeaders) {
			h.Set("request-id", fmt.Sprint(ctx.Value("request-id")))
		}))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	partition, offset, err := p.Produce(context.Background(), "orders", []byte("order-42"), []byte(`{"paid":true}`),
		orderly.Header{Key: "schema", Value: []byte("v2")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(partition, offset)
}

// RecordHeaders is a text-map carrier over a kgo record's headers.
func ExampleRecordHeaders() {
	r := orderlykgo.NewRecord("orders", []byte("order-42"), nil)
	h := orderlykgo.RecordHeaders{Rec: r}
	h.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	fmt.Println(h.Keys(), h.Get("traceparent"))
	// Output: [traceparent] 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
}

// Records that fail for good go to "<topic>.dlq", carrying the dead-letter
// span's trace context (here: whatever the injector writes from ctx).
func ExampleNewDeadLetterSink() {
	brokers := kgo.SeedBrokers("localhost:9092")
	producer, err := orderlykgo.NewProducer([]kgo.Opt{brokers})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer producer.Close() // after the engine's Run returned
	sink, err := orderlykgo.NewDeadLetterSink(producer,
		orderlykgo.WithHeaderInjector(func(ctx context.Context, r *kgo.Record) {
			// e.g. tracing.Inject(ctx, orderlykgo.RecordHeaders{Rec: r})
		}))
	if err != nil {
		fmt.Println(err)
		return
	}
	src, err := orderlykgo.NewSource([]kgo.Opt{brokers, kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("orders")})
	if err != nil {
		fmt.Println(err)
		return
	}
	eng, err := orderly.New(src, orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error { return nil }),
		orderly.WithRetry(orderly.RetryPolicy{MaxAttempts: 5}),
		orderly.WithDeadLetter(sink),
		orderly.WithKeyParking(orderly.ParkUntilReleased))
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = eng.Run(context.Background())
}
