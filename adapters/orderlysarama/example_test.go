package orderlysarama_test

import (
	"context"
	"fmt"
	"log"
	"os/signal"
	"syscall"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/orderlysarama"
)

// A service consumes the "orders" topic as the "billing" group, with each
// order's events handled in order and different orders in parallel.
func Example() {
	cfg := orderlysarama.DefaultConfig() // cooperative-sticky, oldest offset for a new group
	cfg.ClientID = "billing"
	cfg.Consumer.Group.Rebalance.Timeout = time.Minute // above the engine's revoke timeout

	src, err := orderlysarama.NewSource([]string{"localhost:9092"}, "billing", []string{"orders"}, cfg)
	if err != nil {
		log.Fatal(err) // wraps orderlysarama.ErrInvalidConfig
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
// from its context (trace context, say) through ProducerHeaders.
func ExampleProducer() {
	p, err := orderlysarama.NewProducer([]string{"localhost:9092"}, nil,
		orderlysarama.WithInject(func(ctx context.Context, h orderlysarama.ProducerHeaders) {
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

// ProducerHeaders is a text-map carrier over a message's headers.
func ExampleProducerHeaders() {
	m := orderlysarama.NewProducerMessage("orders", []byte("order-42"), nil)
	h := orderlysarama.ProducerHeaders{Msg: m}
	h.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	fmt.Println(h.Keys(), h.Get("traceparent"))
	// Output: [traceparent] 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
}
