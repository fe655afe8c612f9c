package backpressure

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// poolModel is the sequential specification of Pool.
type poolModel struct {
	high, low  int64
	held       int64
	tripped    bool
	lows       int   // expected onLow calls
	sinceEmpty int64 // successful acquisitions since held was last 0
}

func (m *poolModel) tryAcquire(n int64) bool {
	if n == 0 {
		return true
	}
	if m.held == 0 || m.held+n <= m.high {
		m.held += n
		m.sinceEmpty++
		return true
	}
	m.tripped = true
	return false
}

func (m *poolModel) release(n int64) {
	if n == 0 {
		return
	}
	m.held -= n
	if m.held == 0 {
		m.sinceEmpty = 0
	}
	if m.tripped && m.held <= m.low {
		m.tripped = false
		m.lows++
	}
}

func TestCreditsMatchModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		high := rapid.Int64Range(1, 20).Draw(t, "high")
		low := rapid.Int64Range(0, high-1).Draw(t, "low")
		lows := 0
		c := NewPool(high, low, func() { lows++ })
		m := &poolModel{high: high, low: low}

		t.Repeat(map[string]func(*rapid.T){
			"TryAcquire": func(t *rapid.T) {
				n := rapid.Int64Range(0, 2*high).Draw(t, "n")
				if got, want := c.TryAcquire(n), m.tryAcquire(n); got != want {
					t.Fatalf("TryAcquire(%d) = %v, model says %v", n, got, want)
				}
			},
			"Release": func(t *rapid.T) {
				if m.held == 0 {
					t.Skip("nothing held")
				}
				n := rapid.Int64Range(0, m.held).Draw(t, "n")
				c.Release(n)
				m.release(n)
			},
			"ReleaseTooMuch": func(t *rapid.T) {
				n := rapid.Int64Range(m.held+1, m.held+5).Draw(t, "n")
				assert.PanicsWithValue(t, "backpressure: released more credits than held", func() { c.Release(n) })
			},
			"": func(t *rapid.T) {
				if c.Held() != m.held || c.Tripped() != m.tripped || lows != m.lows {
					t.Fatalf("held=%d tripped=%v lows=%d, model held=%d tripped=%v lows=%d",
						c.Held(), c.Tripped(), lows, m.held, m.tripped, m.lows)
				}
				if m.held > high && m.sinceEmpty != 1 {
					t.Fatalf("held %d > high %d by %d acquisitions; only a lone one may exceed", m.held, high, m.sinceEmpty)
				}
			},
		})
	})
}

// TestCreditsConcurrentStress runs many goroutines that Acquire, TryAcquire
// and Release random amounts, some with contexts that expire while waiting.
// live counts credits known to be held: it is raised after a successful
// acquire and lowered before the matching Release, so it never exceeds the
// real number held; it may exceed high only for a lone oversized acquisition.
func TestCreditsConcurrentStress(t *testing.T) {
	const (
		high       = 50
		low        = 10
		goroutines = 32
		rounds     = 300
	)
	var lows atomic.Int64
	c := NewPool(high, low, func() { lows.Add(1) })

	var live, violations atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		// Owned by this test; the test waits for all of them via wg.
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 42))
			for range rounds {
				n := rng.Int64N(20) + 1
				if rng.IntN(50) == 0 {
					n = high + 10 // oversized
				}
				ok := true
				switch rng.IntN(4) {
				case 0:
					ok = c.TryAcquire(n)
				case 1:
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rng.IntN(50))*time.Microsecond)
					ok = c.Acquire(ctx, n) == nil
					cancel()
				default:
					if err := c.Acquire(context.Background(), n); err != nil {
						violations.Add(1)
						ok = false
					}
				}
				if !ok {
					continue
				}
				if v := live.Add(n); v > high && v != n {
					violations.Add(1)
				}
				live.Add(-n)
				c.Release(n)
			}
		})
	}

	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(60 * time.Second):
		t.Fatal("stress goroutines did not finish: lost wakeup or deadlock")
	}

	require.Zero(t, violations.Load(), "held exceeded high beside other acquisitions, or a background Acquire failed")
	assert.Equal(t, int64(0), c.Held())
	assert.Equal(t, 0, c.waiting())
	assert.False(t, c.Tripped(), "the final Release brought held to 0, which must clear any trip")
	t.Logf("onLow fired %d times", lows.Load())
}
