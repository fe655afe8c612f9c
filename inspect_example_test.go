package orderly_test

import (
	"context"
	"fmt"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
)

// Inspect names the record that holds a partition's watermark back and
// what it is doing: here, order o1's first event, whose handler is stuck,
// with o1's next event queued behind it.
func ExampleEngine_Inspect() {
	log := memory.NewLog()
	_ = log.CreateTopic("orders", 1)
	for _, order := range []string{"o1", "o2", "o1"} {
		_, _, _ = log.Produce("orders", []byte(order), []byte("event"))
	}
	stuck, started := make(chan struct{}), make(chan struct{})
	eng, _ := orderly.New(log.Member("billing", []string{"orders"}),
		orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
			if r.Offset == 0 {
				close(started)
				<-stuck // a downstream call that never returns
			}
			return nil
		}))
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- eng.Run(ctx) }()
	<-started

	var p orderly.PartitionInspection
	for p.Blocking == nil || p.Keys != 1 { // until o2's event is done
		if in := eng.Inspect(); len(in.Partitions) == 1 {
			p = in.Partitions[0]
		}
		time.Sleep(time.Millisecond)
	}
	b := p.Blocking
	fmt.Printf("%s/%d: watermark %d, held by offset %d (key %s): %s, attempt %d, %d queued behind it\n",
		p.Topic, p.Partition, p.Watermark, b.Offset, b.Key, b.State, b.Attempts, b.Behind)

	close(stuck)
	stop()
	<-ran
	// Output:
	// orders/0: watermark 0, held by offset 0 (key o1): running, attempt 1, 1 queued behind it
}
