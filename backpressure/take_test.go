package backpressure

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestTakeIsAllOrNothing takes random sets of credits from random pools:
// a Take either takes every credit or none (the pools' holdings are
// unchanged), and names a credit that does not fit when it fails; Give
// returns exactly what Take took.
func TestTakeIsAllOrNothing(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 5).Draw(t, "pools")
		pools := make([]*Pool, n)
		for i := range pools {
			high := rapid.Int64Range(1, 50).Draw(t, "high")
			pools[i] = NewPool(high, rapid.Int64Range(0, high-1).Draw(t, "low"), nil)
		}
		var taken [][]Credit
		for range rapid.IntRange(1, 60).Draw(t, "steps") {
			if len(taken) > 0 && rapid.Bool().Draw(t, "give") {
				i := rapid.IntRange(0, len(taken)-1).Draw(t, "which")
				Give(taken[i])
				taken = append(taken[:i], taken[i+1:]...)
				continue
			}
			var cs []Credit
			for range rapid.IntRange(0, 4).Draw(t, "credits") {
				cs = append(cs, Credit{Pool: pools[rapid.IntRange(0, n-1).Draw(t, "pool")], N: rapid.Int64Range(0, 30).Draw(t, "n")})
			}
			oversize := rapid.Bool().Draw(t, "oversize")
			before := make([]int64, n)
			for i, p := range pools {
				before[i] = p.Held()
			}
			missing := Take(cs, oversize)
			if missing >= 0 {
				for i, p := range pools {
					if p.Held() != before[i] {
						t.Fatalf("failed Take changed pool %d: %d → %d", i, before[i], p.Held())
					}
				}
				c := cs[missing]
				if c.Pool == nil || c.N == 0 {
					t.Fatalf("Take blamed credit %d, which takes nothing", missing)
				}
				continue
			}
			want := append([]int64(nil), before...)
			for _, c := range cs {
				for i, p := range pools {
					if p == c.Pool {
						want[i] += c.N
					}
				}
			}
			for i, p := range pools {
				if p.Held() != want[i] {
					t.Fatalf("Take: pool %d holds %d, want %d", i, p.Held(), want[i])
				}
			}
			taken = append(taken, cs)
		}
		for _, cs := range taken {
			Give(cs)
		}
		for i, p := range pools {
			if p.Held() != 0 {
				t.Fatalf("pool %d holds %d after everything was given back", i, p.Held())
			}
		}
	})
}

func TestTakeBatchRespectsHighMark(t *testing.T) {
	p := NewPool(10, 5, nil)
	q := NewPool(100, 50, nil)
	// A batch must fit under every high mark; one item may pass alone.
	assert.Equal(t, 0, Take([]Credit{{Pool: p, N: 11}, {Pool: q, N: 1}}, false))
	assert.Equal(t, -1, Take([]Credit{{Pool: p, N: 11}, {Pool: q, N: 1}}, true))
	assert.Equal(t, int64(11), p.Held())
	assert.Equal(t, 0, Take([]Credit{{Pool: p, N: 1}}, true), "nothing fits while an oversized item is held")
	Give([]Credit{{Pool: p, N: 11}, {Pool: q, N: 1}})
	require.Equal(t, int64(0), p.Held()+q.Held())
}

func TestWaitGrantsInOrderAndCancels(t *testing.T) {
	p := NewPool(10, 2, nil)
	require.True(t, p.TryAcquire(8))
	w1 := p.Wait(5) // must wait: 8+5 > 10
	w2 := p.Wait(1) // fits, but queues behind w1 (FIFO)
	assert.False(t, w1.Granted())
	assert.False(t, w2.Granted())
	assert.True(t, p.Tripped())
	assert.False(t, p.TryAcquire(1), "TryAcquire never overtakes a waiter")
	p.Release(3) // held 5: w1 fits (10), then w2 does not (11)
	<-w1.Ready()
	assert.False(t, w2.Granted())
	assert.True(t, w1.Cancel(), "Cancel after the grant reports it")
	assert.False(t, w2.Cancel())
	assert.False(t, w2.Cancel(), "idempotent")
	assert.Equal(t, 0, p.Waiting())
	p.Release(10)
	assert.Equal(t, int64(0), p.Held())

	// Cancelling the head lets the waiters behind it in.
	require.True(t, p.TryAcquire(9))
	big := p.Wait(5)
	small := p.Wait(1)
	assert.False(t, small.Granted())
	assert.False(t, big.Cancel())
	<-small.Ready()
	p.Release(10)

	w := p.Wait(3) // nothing held, nobody waiting: granted at once
	assert.True(t, w.Granted())
	p.Release(3)
	assert.Panics(t, func() { p.Wait(0) })
}

// TestTakeRestLeavesTheHeldCredit: TakeRest takes every credit but the one
// the caller holds, all or nothing, and never releases the held one.
func TestTakeRestLeavesTheHeldCredit(t *testing.T) {
	a := NewPool(5, 1, nil)
	b := NewPool(10, 1, nil)
	c := NewPool(5, 1, nil)
	require.True(t, a.TryAcquire(2)) // the caller holds a's credit already
	cs := []Credit{{Pool: a, N: 2}, {Pool: b, N: 3}, {Pool: c, N: 4}}
	assert.Equal(t, -1, TakeRest(cs, 0, false))
	assert.Equal(t, []int64{2, 3, 4}, []int64{a.Held(), b.Held(), c.Held()})
	// c cannot give 4 more: nothing else is taken, a's stays held.
	assert.Equal(t, 2, TakeRest(cs, 0, false))
	assert.Equal(t, []int64{2, 3, 4}, []int64{a.Held(), b.Held(), c.Held()})
	Give(cs) // a's included
	assert.Equal(t, []int64{0, 0, 0}, []int64{a.Held(), b.Held(), c.Held()})
}
