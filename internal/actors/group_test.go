package actors_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
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
		sched := actors.NewScheduler(limit, 0, nil)
		defer sched.Close()
		g := actors.NewGroup(sched, actors.GroupConfig[msg]{
			Receive: func(m *msg) (time.Duration, bool) { c.receive(*m); wg.Done(); return 0, false },
			Turn:    rapid.IntRange(1, 4).Draw(t, "turn"),
		})
		// Sent in batches of random sizes: a batch is one lock acquisition.
		for i := 0; i < len(msgs); {
			n := rapid.IntRange(1, 10).Draw(t, "batch")
			var batch []actors.Message[msg]
			for _, m := range msgs[i:min(i+n, len(msgs))] {
				batch = append(batch, message(m, m.keys...))
			}
			g.Send(batch)
			i += len(batch)
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
		require.Eventually(t, func() bool { return sched.Busy() == 0 }, 5*time.Second, time.Millisecond)
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

// message builds a group message with int keys (hashed as themselves).
func message[M any](m M, keys ...int) actors.Message[M] {
	out := actors.Message[M]{Msg: m, Weight: 1}
	for _, k := range keys {
		out.Keys = append(out.Keys, uint64(k))
	}
	return out
}

// send sends one message with a weight.
func send[M any](g *actors.Group[M], m M, weight int64, keys ...int) {
	msg := message(m, keys...)
	msg.Weight = weight
	g.Send([]actors.Message[M]{msg})
}

const hot, cold = 1, 2

func TestGroupKeyLimitsReportOverAndUnder(t *testing.T) {
	sched := actors.NewScheduler(4, 0, nil)
	defer sched.Close()
	release := make(chan struct{})
	var (
		mu      sync.Mutex
		reports []int // over-counts, in seq order
		lastSeq uint64
	)
	done := make(chan struct{}, 16)
	g := actors.NewGroup(sched, actors.GroupConfig[int]{
		Receive: func(*int) (time.Duration, bool) { <-release; done <- struct{}{}; return 0, false },
		High:    actors.Load{Messages: 3},
		Low:     actors.Load{Messages: 1},
		OnOver: func(over int, seq uint64) {
			mu.Lock()
			defer mu.Unlock()
			if seq > lastSeq {
				lastSeq = seq
				reports = append(reports, over)
			}
		},
	})
	for i := range 4 {
		send(g, i, 10, hot)
	}
	send(g, 9, 10, cold)
	mu.Lock()
	require.Equal(t, []int{1}, reports, "the hot key reached its high mark once")
	mu.Unlock()
	require.Equal(t, actors.Load{Messages: 4, Weight: 40}, g.Load(hot))

	for range 3 {
		release <- struct{}{}
		<-done
	}
	// Wait until hot falls to its low mark.
	for g.Load(hot).Messages > 1 {
		release <- struct{}{}
		<-done
	}
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(reports) == 2 }, 5*time.Second, time.Millisecond)
	mu.Lock()
	require.Equal(t, []int{1, 0}, reports, "the hot key fell to its low mark")
	mu.Unlock()
	close(release)
	require.Eventually(t, func() bool { return g.Keys() == 0 }, 5*time.Second, time.Millisecond)
}

func TestSchedulerParksIdleWorkersAndReusesThem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sched := actors.NewScheduler(4, time.Minute, nil)
		defer sched.Close()
		// Two blocking items: two workers.
		release := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		for range 2 {
			sched.Submit(runFunc(func() { <-release; wg.Done() }))
		}
		synctest.Wait()
		require.Equal(t, 2, sched.Workers())
		close(release)
		wg.Wait()
		synctest.Wait()
		require.Zero(t, sched.Busy(), "every worker parked")
		require.Equal(t, 2, sched.Workers(), "parked workers stay")

		// Work submitted one item at a time wakes a parked worker: none is
		// started.
		for range 10 {
			wg.Add(1)
			sched.Submit(runFunc(wg.Done))
			wg.Wait()
			synctest.Wait()
		}
		require.Equal(t, 2, sched.Workers(), "parked workers were reused, none started")

		time.Sleep(2 * time.Minute) // fake time: past the idle time
		synctest.Wait()
		require.Zero(t, sched.Workers(), "idle workers exited")

		wg.Add(1)
		sched.Submit(runFunc(wg.Done))
		wg.Wait()
		sched.Close()
		synctest.Wait()
		require.Zero(t, sched.Workers(), "Close lets every worker exit")
	})
}

// Work that blocks fans out to every worker up to the limit: each worker
// that takes an item wakes the next before running it.
func TestSchedulerFansOutBlockingWork(t *testing.T) {
	const limit = 8
	sched := actors.NewScheduler(limit, 0, nil)
	defer sched.Close()
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(limit)
	for range limit {
		sched.Submit(runFunc(func() { started.Done(); <-release }))
	}
	started.Wait() // all limit items run at once
	require.Equal(t, limit, sched.Busy())
	close(release)
}

func TestSchedulerRecoversPanics(t *testing.T) {
	got := make(chan any, 1)
	sched := actors.NewScheduler(1, 0, func(v any) { got <- v })
	defer sched.Close()
	g := actors.NewGroup(sched, actors.GroupConfig[string]{Receive: func(m *string) (time.Duration, bool) {
		if *m == "boom" {
			panic(*m)
		}
		return 0, false
	}})
	var after sync.WaitGroup
	after.Add(1)
	g2 := actors.NewGroup(sched, actors.GroupConfig[string]{Receive: func(*string) (time.Duration, bool) { after.Done(); return 0, false }})
	send(g, "boom", 0, 1)
	require.Equal(t, "boom", <-got)
	send(g2, "next", 0, 1)
	after.Wait()
	require.Eventually(t, func() bool { return g.Keys() == 0 }, 5*time.Second, time.Millisecond,
		"the key moved on after its message panicked")
}

type runFunc func()

func (f runFunc) Run() { f() }

// A message that asks to be received again keeps its key blocked, holds no
// concurrency slot while it waits, and other keys go on.
func TestGroupRetryKeepsKeyBlockedAndFreesTheSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sched := actors.NewScheduler(1, 0, nil)
		defer sched.Close()
		var mu sync.Mutex
		var order []string
		tries := 0
		var wg sync.WaitGroup
		wg.Add(3)
		g := actors.NewGroup(sched, actors.GroupConfig[string]{Receive: func(mp *string) (time.Duration, bool) {
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
		}})
		const a, b = 1, 2
		g.Send([]actors.Message[string]{message("a1", a), message("a2", a), message("b1", b)})
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		require.Equal(t, []string{"a1", "b1", "a1", "a1", "a2"}, order,
			"b ran while a1 waited (with one slot), and a2 only after a1 succeeded")
		synctest.Wait()
		require.Zero(t, g.Keys())
		require.Zero(t, g.Delayed())
	})
}

// Done runs under the group's lock before the key moves on: a key's next
// message never starts before its predecessor's Done.
func TestGroupDoneRunsBeforeTheKeyMovesOn(t *testing.T) {
	sched := actors.NewScheduler(4, 0, nil)
	defer sched.Close()
	var (
		mu     sync.Mutex // guards doneOf; Done runs under the group's lock
		doneOf = map[int]bool{}
		bad    []int
	)
	var wg sync.WaitGroup
	const n = 200
	wg.Add(n)
	g := actors.NewGroup(sched, actors.GroupConfig[int]{
		Receive: func(m *int) (time.Duration, bool) {
			mu.Lock()
			if *m > 0 && !doneOf[*m-1] {
				bad = append(bad, *m)
			}
			mu.Unlock()
			return 0, false
		},
		Done: func(m *int) { mu.Lock(); doneOf[*m] = true; mu.Unlock(); wg.Done() },
		Turn: 3,
	})
	var batch []actors.Message[int]
	for i := range n {
		batch = append(batch, message(i, 7))
	}
	g.Send(batch)
	wg.Wait()
	require.Empty(t, bad, "messages started before their predecessor was done")
}

func TestGroupWakeAllCutsRetryWaitsShort(t *testing.T) {
	sched := actors.NewScheduler(2, 0, nil)
	defer sched.Close()
	got := make(chan int, 10)
	calls := 0
	g := actors.NewGroup(sched, actors.GroupConfig[string]{Receive: func(*string) (time.Duration, bool) {
		calls++
		got <- calls
		if calls == 1 {
			return time.Hour, true
		}
		return 0, false
	}})
	send(g, "x", 0, 1)
	require.Equal(t, 1, <-got)
	require.Eventually(t, func() bool { return g.Delayed() == 1 }, 5*time.Second, time.Millisecond)
	g.WakeAll()
	require.Equal(t, 2, <-got)
}

// Key events: while on, the group reports a key that falls back to its low
// mark and a key that becomes idle, under its lock; while off, nothing.
// IsOverLocked, IdleLocked and OverLocked agree with what was sent.
func TestGroupKeyEvents(t *testing.T) {
	sched := actors.NewScheduler(4, 0, nil)
	defer sched.Close()
	release := make(chan struct{})
	done := make(chan struct{}, 16)
	events := make(chan uint64, 64) // KeyEvent runs under the lock: it must not block
	g := actors.NewGroup(sched, actors.GroupConfig[int]{
		Receive:  func(*int) (time.Duration, bool) { <-release; done <- struct{}{}; return 0, false },
		High:     actors.Load{Messages: 3},
		Low:      actors.Load{Messages: 1},
		KeyEvent: func(k uint64) { events <- k },
	})
	step := func() { release <- struct{}{}; <-done }

	// Off: a cold key goes idle unreported.
	send(g, 0, 1, cold)
	step()
	require.Eventually(t, func() bool { return g.Keys() == 0 }, 5*time.Second, time.Millisecond)
	require.Empty(t, events)

	g.Lock()
	g.SetKeyEventsLocked(true)
	g.Unlock()
	for i := range 4 {
		send(g, i, 1, hot)
	}
	g.Lock()
	require.True(t, g.IsOverLocked(hot))
	require.False(t, g.IdleLocked(hot))
	require.False(t, g.IsOverLocked(cold))
	require.True(t, g.IdleLocked(cold))
	require.Equal(t, 1, g.OverLocked())
	g.Unlock()

	step() // 3 left: still over
	step() // 2 left
	require.Empty(t, events)
	step() // 1 left: at its low mark
	require.Equal(t, uint64(hot), <-events, "the key fell to its low mark")
	g.Lock()
	require.False(t, g.IsOverLocked(hot))
	require.Equal(t, 0, g.OverLocked())
	g.Unlock()
	step() // none left
	require.Equal(t, uint64(hot), <-events, "the key became idle")
	g.Lock()
	require.True(t, g.IdleLocked(hot))
	g.SetKeyEventsLocked(false)
	g.Unlock()
	send(g, 9, 1, hot)
	step()
	require.Eventually(t, func() bool { return g.Keys() == 0 }, 5*time.Second, time.Millisecond)
	require.Empty(t, events, "events are off again")
}
