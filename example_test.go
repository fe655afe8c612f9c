package orderly_test

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
)

// Orders keyed by order id: each order's events are handled in order,
// different orders in parallel.
func Example() {
	log := memory.NewLog()
	_ = log.CreateTopic("orders", 1)
	for _, ev := range []struct{ order, event string }{
		{"o1", "created"}, {"o2", "created"}, {"o1", "paid"}, {"o2", "cancelled"}, {"o1", "shipped"},
	} {
		_, _, _ = log.Produce("orders", []byte(ev.order), []byte(ev.event))
	}

	var mu sync.Mutex
	history := map[string][]string{}
	ctx, stop := context.WithCancel(context.Background())
	handled := 0
	eng, err := orderly.New(log.Member("billing", []string{"orders"}),
		orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
			mu.Lock()
			defer mu.Unlock()
			history[string(r.Key)] = append(history[string(r.Key)], string(r.Value))
			if handled++; handled == 5 {
				stop() // drain, commit and return
			}
			return nil
		}),
		orderly.WithOrdering(orderly.ByKey()),
		orderly.WithMaxConcurrency(100))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := eng.Run(ctx); err != nil {
		fmt.Println(err)
	}
	committed, _ := log.Committed("billing", "orders", 0)
	fmt.Println("o1:", history["o1"])
	fmt.Println("o2:", history["o2"])
	fmt.Println("committed:", committed.Offset)
	// Output:
	// o1: [created paid shipped]
	// o2: [created cancelled]
	// committed: 5
}

// Invalid options fail at New with an error wrapping ErrInvalidOption.
func ExampleNew_invalidOption() {
	_, err := orderly.New(memory.NewLog().Member("g", []string{"t"}),
		orderly.HandlerFunc(func(context.Context, *orderly.Record) error { return nil }),
		orderly.WithMaxConcurrency(-1))
	fmt.Println(errors.Is(err, orderly.ErrInvalidOption))
	fmt.Println(err)
	// Output:
	// true
	// orderly: invalid option: WithMaxConcurrency(-1): must be ≥ 1 (0: the default)
}
