package backpressure

import "testing"

// BenchmarkCredits measures an uncontended TryAcquire+Release pair.
func BenchmarkCredits(b *testing.B) {
	c := NewPool(1024, 512, nil)
	for b.Loop() {
		if !c.TryAcquire(1) {
			b.Fatal("TryAcquire failed")
		}
		c.Release(1)
	}
}

// BenchmarkSemaphoreBaseline is the same pair on a buffered channel used as
// a semaphore, the cheapest unweighted alternative.
func BenchmarkSemaphoreBaseline(b *testing.B) {
	sem := make(chan struct{}, 1024)
	for b.Loop() {
		select {
		case sem <- struct{}{}:
		default:
			b.Fatal("channel semaphore full")
		}
		<-sem
	}
}
