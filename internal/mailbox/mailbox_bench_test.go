package mailbox

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// Each benchmark moves b.N items from the producers to one consumer through
// a queue of benchCapacity; ns/op is per item. BenchmarkChannel is the
// same traffic through a buffered channel of the same capacity.

const benchCapacity = 1024

var producerCounts = []struct {
	name string
	n    int
}{{"1P1C", 1}, {"4P1C", 4}}

// share splits n items over producers; producer p sends share(n, producers, p).
func share(n, producers, p int) int {
	k := n / producers
	if p < n%producers {
		k++
	}
	return k
}

func BenchmarkMailbox(b *testing.B) {
	for _, pc := range producerCounts {
		b.Run(pc.name, func(b *testing.B) {
			benchMailbox(b, pc.n, func(m *Mailbox[int], _ []int) (int, []int) {
				if _, err := m.Pop(context.Background()); err != nil {
					if errors.Is(err, ErrClosed) {
						return -1, nil
					}
					b.Fatal(err)
				}
				return 1, nil
			})
		})
		b.Run("Drain-"+pc.name, func(b *testing.B) {
			benchMailbox(b, pc.n, func(m *Mailbox[int], batch []int) (int, []int) {
				for {
					batch = m.Drain(batch[:0], 0)
					if len(batch) > 0 {
						return len(batch), batch
					}
					if m.Closed() {
						return -1, batch
					}
					<-m.Signal()
				}
			})
		})
	}
}

// benchMailbox runs the producers and calls consume until it returns -1
// (closed and empty), counting what it received.
func benchMailbox(b *testing.B, producers int, consume func(*Mailbox[int], []int) (int, []int)) {
	m := New[int](benchCapacity)
	ctx := context.Background()
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for p := range producers {
		wg.Go(func() {
			for i := range share(b.N, producers, p) {
				if err := m.Push(ctx, i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	go func() {
		wg.Wait()
		m.Close()
	}()
	received := 0
	var batch []int
	for {
		k, next := consume(m, batch)
		if k < 0 {
			break
		}
		received += k
		batch = next
	}
	b.StopTimer()
	if received != b.N {
		b.Fatalf("received %d items, want %d", received, b.N)
	}
}

func BenchmarkChannel(b *testing.B) {
	for _, pc := range producerCounts {
		b.Run(pc.name, func(b *testing.B) {
			benchChannel(b, pc.n, func(ch chan int) int {
				if _, ok := <-ch; !ok {
					return -1
				}
				return 1
			})
		})
		// The channel equivalent of Drain: block for one item, then take
		// whatever else is buffered without blocking.
		b.Run("Batch-"+pc.name, func(b *testing.B) {
			benchChannel(b, pc.n, func(ch chan int) int {
				if _, ok := <-ch; !ok {
					return -1
				}
				k := 1
				for range len(ch) {
					if _, ok := <-ch; !ok {
						break
					}
					k++
				}
				return k
			})
		})
	}
}

func benchChannel(b *testing.B, producers int, consume func(chan int) int) {
	ch := make(chan int, benchCapacity)
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for p := range producers {
		wg.Go(func() {
			for i := range share(b.N, producers, p) {
				ch <- i
			}
		})
	}
	go func() {
		wg.Wait()
		close(ch)
	}()
	received := 0
	for {
		k := consume(ch)
		if k < 0 {
			break
		}
		received += k
	}
	b.StopTimer()
	if received != b.N {
		b.Fatalf("received %d items, want %d", received, b.N)
	}
}
