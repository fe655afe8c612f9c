package memory_test

import (
	"context"
	"fmt"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
)

// A member of group "billing" reads a one-partition topic and commits the
// next offset after each record.
func Example() {
	l := memory.NewLog()
	if err := l.CreateTopic("orders", 1); err != nil {
		panic(err)
	}
	for _, v := range []string{"created", "paid", "shipped"} {
		if _, _, err := l.Produce("orders", []byte("order-1"), []byte(v)); err != nil {
			panic(err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	m := l.Member("billing", []string{"orders"})
	err := m.Consume(ctx, func(c orderly.Claim) {
		fmt.Println("start:", c.Start().Offset == orderly.NoOffset)
		for batch := range c.Records() {
			for _, r := range batch {
				fmt.Printf("%s/%d@%d %s=%s\n", r.Topic, r.Partition, r.Offset, r.Key, r.Value)
				if err := c.Commit(ctx, r.Offset+1, ""); err != nil {
					fmt.Println("commit:", err)
				}
				if r.Offset == 2 {
					cancel() // done: Consume revokes the claim and returns
				}
			}
		}
	})
	pos, _ := l.Committed("billing", "orders", 0)
	fmt.Println("consume:", err, "committed:", pos.Offset)
	// Output:
	// start: true
	// orders/0@0 order-1=created
	// orders/0@1 order-1=paid
	// orders/0@2 order-1=shipped
	// consume: <nil> committed: 3
}
