package orderly_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/orderly-go/orderly"
)

// BenchmarkDispatcherModes is BenchmarkDispatcher's orderly run in two ordering modes:
// ByKey, and Unordered, whose records sit in no key's queue. ns/op is per
// record.
func BenchmarkDispatcherModes(b *testing.B) {
	for _, m := range []struct {
		name string
		o    orderly.Ordering
	}{{"key", orderly.ByKey()}, {"unordered", orderly.Unordered()}} {
		b.Run(m.name, func(b *testing.B) {
			log := dispatchBenchLog(b, b.N)
			var handled atomic.Int64
			done := make(chan struct{})
			eng, err := orderly.New(log.Member("bench", []string{"t"}), orderly.HandlerFunc(func(context.Context, *orderly.Record) error {
				if handled.Add(1) == int64(b.N) {
					close(done)
				}
				return nil
			}), orderly.WithOrdering(m.o))
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
	}
}
