package actors_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/orderly-go/orderly/actors"
	"github.com/orderly-go/orderly/mailbox"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

type msg struct {
	id   int
	keys []int
	spin int // microseconds of work
}

// orderChecker records, per key, the order in which messages ran and
// whether two messages of one key ever overlapped, and checks that a
// message starts only after every earlier message of its keys was
// received, and is collected once, after it was received.
type orderChecker struct {
	mu        sync.Mutex
	running   map[int]int // key -> id running
	seen      map[int][]int
	collected map[int]bool
	finished  map[int]bool  // Receive returned
	before    map[int][]int // id -> the previous id of each of its keys
	problems  []string
	active    atomic.Int64
	maxActive atomic.Int64
	received  map[int]int
}

func newOrderChecker(msgs []msg) *orderChecker {
	c := &orderChecker{running: map[int]int{}, seen: map[int][]int{}, received: map[int]int{},
		collected: map[int]bool{}, finished: map[int]bool{}, before: map[int][]int{}}
	last := map[int]int{}
	for _, m := range msgs {
		for _, k := range dedupeInts(m.keys) {
			if p, ok := last[k]; ok {
				c.before[m.id] = append(c.before[m.id], p)
			}
			last[k] = m.id
		}
	}
	return c
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
	for _, p := range c.before[m.id] {
		if !c.finished[p] {
			c.problems = append(c.problems, fmt.Sprintf("%d started before %d, earlier on a key, was received", m.id, p))
		}
	}
	for _, k := range dedupeInts(m.keys) {
		if other, busy := c.running[k]; busy {
			c.problems = append(c.problems, fmt.Sprintf("key %d: %d and %d at once", k, other, m.id))
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
	c.finished[m.id] = true
	c.mu.Unlock()
	c.active.Add(-1)
}

func (c *orderChecker) collect(m *msg) {
	c.mu.Lock()
	if c.collected[m.id] {
		c.problems = append(c.problems, fmt.Sprintf("%d collected twice", m.id))
	}
	if !c.finished[m.id] {
		c.problems = append(c.problems, fmt.Sprintf("%d collected before it was received", m.id))
	}
	c.collected[m.id] = true
	c.mu.Unlock()
}

// TestGroupPerKeyOrderProperty sends random messages of random keys (none,
// one or several) in random batches: every message is received once; a
// key's messages run one at a time, in send order; each is collected once,
// after it ran; no more run at once than the limit; and
// when all is done, no key actor is left.
func TestGroupPerKeyOrderProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		limit := rapid.IntRange(1, 8).Draw(t, "limit")
		universe := rapid.IntRange(1, 6).Draw(t, "keys")
		n := rapid.IntRange(1, 150).Draw(t, "messages")
		msgs := make([]msg, n)
		for i := range msgs {
			nk := rapid.IntRange(0, 3).Draw(t, "nkeys")
			keys := make([]int, nk)
			for j := range keys {
				keys[j] = rapid.IntRange(0, universe-1).Draw(t, "key")
			}
			msgs[i] = msg{id: i, keys: keys, spin: rapid.SampledFrom([]int{0, 0, 0, 5, 200}).Draw(t, "spin")}
		}
		c := newOrderChecker(msgs)
		var wg sync.WaitGroup
		wg.Add(n)
		sched := actors.NewScheduler(limit, 0, nil)
		g := actors.NewGroup(sched, actors.GroupConfig[msg]{
			Receive: func(m *msg, _ *actors.Worker) (time.Duration, bool) { c.receive(*m); return 0, false },
			Turn:    rapid.IntRange(1, 4).Draw(t, "turn"),
		})
		o := runOwner(g, func(m *msg) { c.collect(m); wg.Done() })
		for i := 0; i < len(msgs); {
			k := rapid.IntRange(1, 10).Draw(t, "batch")
			var batch []actors.Message[msg]
			for _, m := range msgs[i:min(i+k, len(msgs))] {
				batch = append(batch, message(m, m.keys...))
			}
			require.Empty(t, o.send(batch...), "unbounded mailboxes refuse nothing")
			i += len(batch)
		}
		wg.Wait()
		o.do(func() {}) // the last Collect has finished applying
		o.stop()
		require.NoError(t, sched.Close(context.Background()))

		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.problems) > 0 {
			t.Fatalf("order broken: %v", c.problems)
		}
		if c.maxActive.Load() > int64(limit) {
			t.Fatalf("%d ran at once, limit %d", c.maxActive.Load(), limit)
		}
		for _, m := range msgs {
			if c.received[m.id] != 1 {
				t.Fatalf("message %d received %d times", m.id, c.received[m.id])
			}
		}
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
		if g.Keys() != 0 {
			t.Fatalf("%d keys still hold messages after all finished", g.Keys())
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

func weighted[M any](m M, weight int64, keys ...int) actors.Message[M] {
	out := message(m, keys...)
	out.Weight = weight
	return out
}

const hot, cold = 1, 2

// gate is a Receive whose calls block until the test lets them go, one at
// a time.
type gate struct {
	release chan struct{}
	done    chan int
}

func newGate() *gate { return &gate{release: make(chan struct{}), done: make(chan int, 64)} }

func (gt *gate) receive(m *int, _ *actors.Worker) (time.Duration, bool) {
	<-gt.release
	gt.done <- *m
	return 0, false
}

// step lets one blocked call go and returns its message.
func (gt *gate) step() int { gt.release <- struct{}{}; return <-gt.done }

// A key's mailbox refuses what passes its bound, reports the key over,
// and accepts again once the key falls to its low mark (a Low event);
// other keys are not affected, and an idle key is reported.
func TestGroupMailboxRefusesOverTheBound(t *testing.T) {
	sched := actors.NewScheduler(4, 0, nil)
	defer sched.Close(context.Background())
	gt := newGate()
	g := actors.NewGroup(sched, actors.GroupConfig[int]{Receive: gt.receive, Turn: 1,
		Mailbox: mailbox.Config{High: mailbox.Limits{Messages: 3}, Low: mailbox.Limits{Messages: 1}}})
	o := runOwner(g, nil)
	defer o.stop()
	require.Empty(t, o.send(weighted(0, 10, hot), weighted(1, 10, hot), weighted(2, 10, hot)))
	require.Equal(t, []int{0, 1}, o.send(weighted(3, 10, hot), weighted(4, 10, hot), weighted(5, 10, cold)),
		"the hot key is full; the cold key is not")
	require.True(t, g.KeyOver(hot))
	require.False(t, g.KeyOver(cold))
	require.Equal(t, 1, g.Over())
	require.Equal(t, mailbox.Limits{Messages: 3, Bytes: 30}, g.Load(hot))
	require.False(t, g.KeyIdle(hot))

	got := map[int]bool{}
	got[gt.step()] = true
	got[gt.step()] = true // hot 0 (and cold 5), in some order
	require.Eventually(t, func() bool { return len(o.takeEventsPeek()) > 0 }, 5*time.Second, time.Millisecond)
	require.Contains(t, o.takeEvents(), actors.KeyEvent{Key: cold, Idle: true})
	for !got[1] {
		got[gt.step()] = true
	}
	require.Eventually(t, func() bool { return !g.KeyOver(hot) }, 5*time.Second, time.Millisecond)
	require.Contains(t, o.takeEvents(), actors.KeyEvent{Key: hot, Low: true}, "down to 1: its low mark")
	require.Empty(t, o.send(weighted(6, 10, hot)), "accepts again")
	gt.step()
	gt.step()
	require.Eventually(t, func() bool { return g.KeyIdle(hot) && g.Keys() == 0 }, 5*time.Second, time.Millisecond)
}

// takeEventsPeek returns the events without forgetting them.
func (o *owner[M]) takeEventsPeek() []actors.KeyEvent {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]actors.KeyEvent(nil), o.events...)
}

// With Hold, nothing is refused: what passes a key's bound waits behind
// its mailbox, in order, and the key counts as over until it drains.
func TestGroupHoldKeepsOverflowInOrder(t *testing.T) {
	sched := actors.NewScheduler(2, 0, nil)
	defer sched.Close(context.Background())
	gt := newGate()
	g := actors.NewGroup(sched, actors.GroupConfig[int]{Receive: gt.receive, Hold: true,
		Mailbox: mailbox.Config{High: mailbox.Limits{Messages: 2}, Low: mailbox.Limits{Messages: 0}}})
	o := runOwner(g, nil)
	defer o.stop()
	var batch []actors.Message[int]
	for i := range 6 {
		batch = append(batch, message(i, hot))
	}
	require.Empty(t, o.send(batch...))
	require.True(t, g.KeyOver(hot))
	require.Equal(t, 6, g.Load(hot).Messages)
	for i := range 6 {
		require.Equal(t, i, gt.step(), "in order, overflow included")
	}
	require.Eventually(t, func() bool { return g.KeyIdle(hot) && g.Over() == 0 }, 5*time.Second, time.Millisecond)
}

// A message that asks to be received again keeps its key blocked, holds no
// concurrency slot while it waits, and other keys go on.
func TestGroupRetryKeepsKeyBlockedAndFreesTheSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sched := actors.NewScheduler(1, 0, nil)
		defer sched.Close(context.Background())
		var mu sync.Mutex
		var order []string
		tries := 0
		var wg sync.WaitGroup
		wg.Add(3)
		g := actors.NewGroup(sched, actors.GroupConfig[string]{Receive: func(mp *string, _ *actors.Worker) (time.Duration, bool) {
			m := *mp
			mu.Lock()
			defer mu.Unlock()
			order = append(order, m)
			if m == "a1" && tries < 2 {
				tries++
				return 20 * time.Millisecond, true
			}
			return 0, false
		}})
		o := runOwner(g, func(*string) { wg.Done() })
		defer o.stop()
		const a, b = 1, 2
		o.send(message("a1", a), message("a2", a), message("b1", b))
		wg.Wait()
		mu.Lock()
		require.Equal(t, []string{"a1", "b1", "a1", "a1", "a2"}, order,
			"b ran while a1 waited (with one slot), and a2 only after a1 succeeded")
		mu.Unlock()
		synctest.Wait()
		require.Zero(t, g.Keys())
		require.Zero(t, g.Delayed())
	})
}

func TestGroupWakeAllCutsRetryWaitsShort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sched := actors.NewScheduler(2, 0, nil)
		defer sched.Close(context.Background())
		got := make(chan int, 10)
		calls := 0
		g := actors.NewGroup(sched, actors.GroupConfig[string]{Receive: func(*string, *actors.Worker) (time.Duration, bool) {
			calls++
			got <- calls
			if calls == 1 {
				return time.Hour, true
			}
			return 0, false
		}})
		o := runOwner(g, nil)
		defer o.stop()
		o.send(message("x", 1))
		require.Equal(t, 1, <-got)
		synctest.Wait()
		require.Equal(t, 1, g.Delayed())
		o.do(g.WakeAll)
		require.Equal(t, 2, <-got)
		synctest.Wait()
		require.Zero(t, g.Delayed())
	})
}

// A panic in Receive reaches the scheduler's handler; its message counts
// as received, the key moves on, and the messages of its turn after it
// still run.
func TestGroupPanicMovesTheKeyOn(t *testing.T) {
	got := make(chan any, 1)
	sched := actors.NewScheduler(1, 0, func(v any) { got <- v })
	defer sched.Close(context.Background())
	var ran sync.WaitGroup
	ran.Add(2)
	g := actors.NewGroup(sched, actors.GroupConfig[string]{Turn: 4, Receive: func(m *string, _ *actors.Worker) (time.Duration, bool) {
		if *m == "boom" {
			panic(*m)
		}
		ran.Done()
		return 0, false
	}})
	var collected atomic.Int64
	o := runOwner(g, func(*string) { collected.Add(1) })
	defer o.stop()
	o.send(message("boom", 1), message("after", 1), message("after", 1))
	require.Equal(t, "boom", <-got)
	ran.Wait()
	require.Eventually(t, func() bool { return collected.Load() == 3 && g.Keys() == 0 }, 5*time.Second, time.Millisecond)
}

// Walk sees every message with its place: running, ready (waiting for a
// slot), behind its key, or delayed.
func TestGroupWalkPlaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sched := actors.NewScheduler(1, 0, nil)
		defer sched.Close(context.Background())
		release := make(chan struct{})
		retried := false
		g := actors.NewGroup(sched, actors.GroupConfig[int]{Turn: 1, Receive: func(m *int, _ *actors.Worker) (time.Duration, bool) {
			if *m == 0 {
				<-release
			}
			if *m == 3 && !retried {
				retried = true
				return time.Hour, true
			}
			return 0, false
		}})
		o := runOwner(g, nil)
		defer o.stop()
		o.send(message(3, 9)) // delayed
		synctest.Wait()
		o.send(message(0, 1), message(1, 1), message(2, 2)) // 0 runs; 1 behind it; 2 ready (one slot)
		synctest.Wait()
		places := map[int]actors.Place{}
		var heads []int
		g.Walk(func(k actors.KeyView[int]) { heads = append(heads, *k.Head.Msg) }, func(m actors.MessageView[int]) { places[*m.Msg] = m.Place })
		require.Equal(t, map[int]actors.Place{0: actors.Running, 1: actors.Queued, 2: actors.Ready, 3: actors.Delayed}, places)
		require.ElementsMatch(t, []int{0, 2, 3}, heads)
		close(release)
		o.do(g.WakeAll)
		synctest.Wait()
		o.do(func() {})
	})
}
