package actors_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderly-go/orderly/internal/actors"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

type msg struct {
	id   int
	keys []int
	spin int // microseconds of work
}

// orderChecker records, per key, the order in which messages ran and
// whether two messages of one key ever overlapped.
type orderChecker struct {
	mu        sync.Mutex
	running   map[int]int // key -> id running
	seen      map[int][]int
	overlaps  []string
	active    atomic.Int64
	maxActive atomic.Int64
	received  map[int]int
}

func newOrderChecker() *orderChecker {
	return &orderChecker{running: map[int]int{}, seen: map[int][]int{}, received: map[int]int{}}
}

func (c *orderChecker) receive(m msg) {
	n := c.active.Add(1)
	for {
		old := c.maxActive.Load()
		if n <= old || c.maxActive.CompareAndSwap(old, n) {
			break
		}
	}
	c.mu.Lock()
	c.received[m.id]++
	for _, k := range dedupeInts(m.keys) {
		if other, busy := c.running[k]; busy {
			c.overlaps = append(c.overlaps, fmt.Sprintf("key %d: %d and %d at once", k, other, m.id))
		}
		c.running[k] = m.id
		c.seen[k] = append(c.seen[k], m.id)
	}
	c.mu.Unlock()
	if m.spin > 0 {
		time.Sleep(time.Duration(m.spin) * time.Microsecond)
	}
	c.mu.Lock()
	for _, k := range dedupeInts(m.keys) {
		delete(c.running, k)
	}
	c.mu.Unlock()
	c.active.Add(-1)
}

func TestGroupPerKeyOrderProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		limit := rapid.IntRange(1, 8).Draw(t, "limit")
		universe := rapid.IntRange(1, 6).Draw(t, "keys")
		n := rapid.IntRange(1, 120).Draw(t, "messages")
		msgs := make([]msg, n)
		for i := range msgs {
			nk := rapid.IntRange(0, 3).Draw(t, "nkeys")
			keys := make([]int, nk)
			for j := range keys {
				keys[j] = rapid.IntRange(0, universe-1).Draw(t, "key")
			}
			msgs[i] = msg{id: i, keys: keys, spin: rapid.IntRange(0, 200).Draw(t, "spin")}
		}

		c := newOrderChecker()
		var wg sync.WaitGroup
		wg.Add(n)
		sched := actors.NewScheduler(limit, nil)
		g := actors.NewGroup(sched, func(m *msg) (time.Duration, bool) { c.receive(*m); wg.Done(); return 0, false }, actors.KeyLimits[int]{})
		for _, m := range msgs {
			g.Send(m, 1, m.keys...)
		}
		wg.Wait()

		if len(c.overlaps) > 0 {
			t.Fatalf("messages of one key overlapped: %v", c.overlaps)
		}
		if c.maxActive.Load() > int64(limit) {
			t.Fatalf("%d ran at once, limit %d", c.maxActive.Load(), limit)
		}
		for _, m := range msgs {
			if c.received[m.id] != 1 {
				t.Fatalf("message %d received %d times", m.id, c.received[m.id])
			}
		}
		// Per key, the run order is the send order.
		want := map[int][]int{}
		for _, m := range msgs {
			for _, k := range dedupeInts(m.keys) {
				want[k] = append(want[k], m.id)
			}
		}
		for k, ids := range want {
			if fmt.Sprint(ids) != fmt.Sprint(c.seen[k]) {
				t.Fatalf("key %d ran %v, sent %v", k, c.seen[k], ids)
			}
		}
		require.Eventually(t, func() bool { return sched.Running() == 0 }, 5*time.Second, time.Millisecond)
		if g.Keys() != 0 {
			t.Fatalf("%d key actors not passivated after all messages finished", g.Keys())
		}
	})
}

func dedupeInts(in []int) []int {
	var out []int
	for _, k := range in {
		dup := false
		for _, o := range out {
			dup = dup || o == k
		}
		if !dup {
			out = append(out, k)
		}
	}
	return out
}

func TestGroupKeyLimitsReportOverAndUnder(t *testing.T) {
	sched := actors.NewScheduler(4, nil)
	release := make(chan struct{})
	var overs, unders []string
	var mu sync.Mutex
	done := make(chan struct{}, 16)
	g := actors.NewGroup(sched, func(*int) (time.Duration, bool) { <-release; done <- struct{}{}; return 0, false }, actors.KeyLimits[string]{
		High:    actors.Load{Messages: 3},
		Low:     actors.Load{Messages: 1},
		OnOver:  func(k string) { mu.Lock(); overs = append(overs, k); mu.Unlock() },
		OnUnder: func(k string) { mu.Lock(); unders = append(unders, k); mu.Unlock() },
	})
	for i := range 4 {
		g.Send(i, 10, "hot")
	}
	g.Send(9, 10, "cold")
	mu.Lock()
	require.Equal(t, []string{"hot"}, overs, "the key reached its high mark once")
	mu.Unlock()
	require.Equal(t, actors.Load{Messages: 4, Weight: 40}, g.Load("hot"))

	for range 3 {
		release <- struct{}{}
		<-done
	}
	// Two finished (hot at 2 or cold done): wait until hot falls to its low mark.
	for g.Load("hot").Messages > 1 {
		release <- struct{}{}
		<-done
	}
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(unders) == 1 }, 5*time.Second, time.Millisecond)
	close(release)
	require.Eventually(t, func() bool { return g.Keys() == 0 }, 5*time.Second, time.Millisecond)
}

func TestSchedulerHoldsNoGoroutineWhenIdle(t *testing.T) {
	sched := actors.NewScheduler(3, nil)
	var wg sync.WaitGroup
	wg.Add(50)
	for range 50 {
		sched.Submit(runFunc(wg.Done))
	}
	wg.Wait()
	require.Eventually(t, func() bool { return sched.Running() == 0 && sched.Ready() == 0 }, 5*time.Second, time.Millisecond)
}

func TestSchedulerRecoversPanics(t *testing.T) {
	got := make(chan any, 1)
	sched := actors.NewScheduler(1, func(v any) { got <- v })
	g := actors.NewGroup(sched, func(m *string) (time.Duration, bool) {
		if *m == "boom" {
			panic(*m)
		}
		return 0, false
	}, actors.KeyLimits[string]{})
	var after sync.WaitGroup
	after.Add(1)
	g2 := actors.NewGroup(sched, func(*string) (time.Duration, bool) { after.Done(); return 0, false }, actors.KeyLimits[string]{})
	g.Send("boom", 0, "k")
	require.Equal(t, "boom", <-got)
	g2.Send("next", 0, "k")
	after.Wait()
	require.Eventually(t, func() bool { return g.Keys() == 0 }, 5*time.Second, time.Millisecond,
		"the key moved on after its message panicked")
}

type runFunc func()

func (f runFunc) Run() { f() }

// A message that asks to be received again keeps its key blocked, holds no
// concurrency slot while it waits, and other keys go on.
func TestGroupRetryKeepsKeyBlockedAndFreesTheSlot(t *testing.T) {
	sched := actors.NewScheduler(1, nil)
	var mu sync.Mutex
	var order []string
	tries := 0
	var wg sync.WaitGroup
	wg.Add(3)
	g := actors.NewGroup(sched, func(mp *string) (time.Duration, bool) {
		m := *mp
		mu.Lock()
		defer mu.Unlock()
		order = append(order, m)
		if m == "a1" && tries < 2 {
			tries++
			return 20 * time.Millisecond, true
		}
		wg.Done()
		return 0, false
	}, actors.KeyLimits[string]{})
	g.Send("a1", 0, "a")
	g.Send("a2", 0, "a")
	g.Send("b1", 0, "b")
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"a1", "b1", "a1", "a1", "a2"}, order,
		"b ran while a1 waited (with one slot), and a2 only after a1 succeeded")
	require.Eventually(t, func() bool { return g.Keys() == 0 && g.Delayed() == 0 }, 5*time.Second, time.Millisecond)
}

func TestGroupWakeAllCutsRetryWaitsShort(t *testing.T) {
	sched := actors.NewScheduler(2, nil)
	got := make(chan int, 10)
	calls := 0
	g := actors.NewGroup(sched, func(*string) (time.Duration, bool) {
		calls++
		got <- calls
		if calls == 1 {
			return time.Hour, true
		}
		return 0, false
	}, actors.KeyLimits[string]{})
	g.Send("x", 0, "k")
	require.Equal(t, 1, <-got)
	require.Eventually(t, func() bool { return g.Delayed() == 1 }, 5*time.Second, time.Millisecond)
	g.WakeAll()
	require.Equal(t, 2, <-got)
}
