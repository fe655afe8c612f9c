package orderly_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
)

// BenchmarkDispatcher moves b.N records of 1000 keys, on one partition of
// the memory log, through a no-op handler; ns/op is per record. The log is
// filled before the timer starts and shutdown is not timed.
//
//   - orderly: the whole engine (ByKey, default options).
//   - naive: what one writes by hand: a dispatcher reading the claim, a
//     map from key to channel, one goroutine per key, a WaitGroup. No
//     commits, no backpressure, no concurrency limit.
func BenchmarkDispatcher(b *testing.B) {
	b.Run("orderly", func(b *testing.B) {
		log := dispatchBenchLog(b, b.N)
		var handled atomic.Int64
		done := make(chan struct{})
		eng, err := orderly.New(log.Member("bench", []string{"t"}), orderly.HandlerFunc(func(context.Context, *orderly.Record) error {
			if handled.Add(1) == int64(b.N) {
				close(done)
			}
			return nil
		}), orderly.WithOrdering(orderly.ByKey()))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan error, 1)
		b.ReportAllocs()
		b.ResetTimer()
		go func() { ran <- eng.Run(ctx) }()
		<-done
		b.StopTimer()
		cancel()
		if err := <-ran; err != nil {
			b.Fatal(err)
		}
	})
	b.Run("naive", func(b *testing.B) {
		log := dispatchBenchLog(b, b.N)
		var handled atomic.Int64
		done := make(chan struct{})
		ctx, cancel := context.WithCancel(context.Background())
		consumed := make(chan error, 1)
		b.ReportAllocs()
		b.ResetTimer()
		go func() {
			consumed <- log.Member("bench", []string{"t"}).Consume(ctx, func(c orderly.Claim) {
				var wg sync.WaitGroup
				chans := map[string]chan *orderly.Record{}
				for n := 0; n < b.N; {
					for _, r := range <-c.Records() {
						ch, ok := chans[string(r.Key)]
						if !ok {
							ch = make(chan *orderly.Record, 64)
							chans[string(r.Key)] = ch
							wg.Go(func() {
								for range ch {
									handled.Add(1)
								}
							})
						}
						ch <- r
						n++
					}
				}
				for _, ch := range chans {
					close(ch)
				}
				wg.Wait()
				close(done)
			})
		}()
		<-done
		b.StopTimer()
		cancel()
		if err := <-consumed; err != nil {
			b.Fatal(err)
		}
		if handled.Load() != int64(b.N) {
			b.Fatalf("handled %d of %d", handled.Load(), b.N)
		}
	})
}

// dispatchBenchLog returns a one-partition log holding n records whose
// keys go round-robin over 1000 keys.
func dispatchBenchLog(b *testing.B, n int) *memory.Log {
	b.Helper()
	log := memory.NewLog()
	if err := log.CreateTopic("t", 1); err != nil {
		b.Fatal(err)
	}
	keys := make([][]byte, 1000)
	for i := range keys {
		keys[i] = []byte("key-" + strconv.Itoa(i))
	}
	for i := range n {
		if _, err := log.ProduceTo("t", 0, keys[i%len(keys)], nil); err != nil {
			b.Fatal(err)
		}
	}
	return log
}
