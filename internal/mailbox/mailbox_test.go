package mailbox

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// The module's go.sum lacks testify's yaml dependency, so these tests use
// the standard library for assertions (see the package's report).

func waiters[T any](m *Mailbox[T]) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := 0
	for w := m.waitHead; w != nil; w = w.next {
		k++
	}
	return k
}

func ringSize[T any](m *Mailbox[T]) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.buf)
}

func mustPop[T comparable](t *testing.T, m *Mailbox[T], want T) {
	t.Helper()
	got, ok := m.TryPop()
	if !ok || got != want {
		t.Fatalf("TryPop = %v, %v; want %v, true", got, ok, want)
	}
}

func mustEmpty[T any](t *testing.T, m *Mailbox[T]) {
	t.Helper()
	if v, ok := m.TryPop(); ok {
		t.Fatalf("TryPop = %v, true; want empty mailbox", v)
	}
}

func TestNewPanicsOnCapacityBelowOne(t *testing.T) {
	for _, c := range []int{0, -1} {
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("New(%d) did not panic", c)
				} else if s := fmt.Sprint(r); !strings.Contains(s, "capacity must be at least 1") {
					t.Errorf("New(%d) panic %q does not explain the capacity", c, s)
				}
			}()
			New[int](c)
		}()
	}
}

func TestFIFOOneProducer(t *testing.T) {
	const total = 20000
	ctx := context.Background()
	m := New[int](37) // odd capacity: the ring wraps, grows and shrinks off powers of two
	go func() {
		for i := range total {
			if err := m.Push(ctx, i); err != nil {
				t.Errorf("Push(%d) = %v", i, err)
				return
			}
		}
		m.Close()
	}()
	want := 0
	var batch []int
	for round := 0; want < total; round++ {
		// Rotate through the three consumer calls so each one's order is
		// checked; Pop blocks, so every third round makes progress.
		var got []int
		switch round % 3 {
		case 0:
			v, err := m.Pop(ctx)
			if err != nil {
				t.Fatalf("Pop after %d items = %v", want, err)
			}
			got = []int{v}
		case 1:
			if v, ok := m.TryPop(); ok {
				got = []int{v}
			}
		case 2:
			batch = m.Drain(batch[:0], 5)
			got = batch
		}
		for _, v := range got {
			if v != want {
				t.Fatalf("received %d, want %d", v, want)
			}
			want++
		}
	}
	if v, err := m.Pop(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Pop after all items = %v, %v; want ErrClosed", v, err)
	}
}

func TestManyProducersNothingLostPerProducerOrder(t *testing.T) {
	const producers, perProducer = 8, 5000
	type item struct{ producer, seq int }
	ctx := context.Background()
	m := New[item](64)

	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for s := range perProducer {
				v := item{p, s}
				if s%2 == 0 {
					if err := m.Push(ctx, v); err != nil {
						t.Errorf("Push(%v) = %v", v, err)
						return
					}
					continue
				}
				// TryPush must report every refusal; retrying until
				// accepted keeps the count exact.
				for {
					err := m.TryPush(v)
					if err == nil {
						break
					}
					if !errors.Is(err, ErrFull) {
						t.Errorf("TryPush(%v) = %v", v, err)
						return
					}
					runtime.Gosched() // a retry loop, not a correctness wait
				}
			}
		})
	}
	go func() {
		wg.Wait()
		m.Close()
	}()

	next := make([]int, producers) // next sequence expected from each producer
	received := 0
	var batch []item
	check := func(v item) {
		if v.seq != next[v.producer] {
			t.Fatalf("producer %d: received seq %d, want %d", v.producer, v.seq, next[v.producer])
		}
		next[v.producer]++
		received++
	}
	for {
		batch = m.Drain(batch[:0], 7)
		for _, v := range batch {
			check(v)
		}
		v, err := m.Pop(ctx)
		if errors.Is(err, ErrClosed) {
			break
		}
		if err != nil {
			t.Fatalf("Pop = %v", err)
		}
		check(v)
	}
	if received != producers*perProducer {
		t.Fatalf("received %d items, want %d", received, producers*perProducer)
	}
	for p, n := range next {
		if n != perProducer {
			t.Errorf("producer %d: received %d items, want %d", p, n, perProducer)
		}
	}
}

func TestTryPushFullDropsNothing(t *testing.T) {
	m := New[int](3)
	for i := range 3 {
		if err := m.TryPush(i); err != nil {
			t.Fatalf("TryPush(%d) = %v", i, err)
		}
	}
	for range 2 {
		if err := m.TryPush(99); !errors.Is(err, ErrFull) {
			t.Fatalf("TryPush on a full mailbox = %v, want ErrFull", err)
		}
	}
	if m.Len() != 3 || m.Cap() != 3 {
		t.Fatalf("Len, Cap = %d, %d; want 3, 3", m.Len(), m.Cap())
	}
	for i := range 3 {
		mustPop(t, m, i)
	}
	mustEmpty(t, m)
	// Room again: the refused value can now be pushed and is the only item.
	if err := m.TryPush(99); err != nil {
		t.Fatalf("TryPush after popping = %v", err)
	}
	mustPop(t, m, 99)
}

// The blocking tests run in a synctest bubble: synctest.Wait returns once
// every goroutine is durably blocked, which is how they observe "Push is
// blocked" without sleeping.

func TestPushBlocksWhileFullAndUnblocksOnPop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := New[int](1)
		if err := m.TryPush(1); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- m.Push(context.Background(), 2) }()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Push on a full mailbox returned %v without blocking", err)
		default:
		}
		if waiters(m) != 1 || m.Len() != 1 {
			t.Fatalf("waiters, Len = %d, %d; want 1, 1", waiters(m), m.Len())
		}
		mustPop(t, m, 1)
		if err := <-done; err != nil {
			t.Fatalf("Push after Pop made room = %v", err)
		}
		mustPop(t, m, 2)
		mustEmpty(t, m)
	})
}

func TestBlockedPushersServedInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := New[int](1)
		if err := m.TryPush(0); err != nil {
			t.Fatal(err)
		}
		const pushers = 5
		var wg sync.WaitGroup
		for i := 1; i <= pushers; i++ {
			wg.Go(func() {
				if err := m.Push(context.Background(), i); err != nil {
					t.Errorf("Push(%d) = %v", i, err)
				}
			})
			synctest.Wait() // pusher i is queued before pusher i+1 starts
		}
		// A TryPush while pushers wait must not jump the queue.
		if err := m.TryPush(100); !errors.Is(err, ErrFull) {
			t.Fatalf("TryPush with blocked pushers = %v, want ErrFull", err)
		}
		for i := 0; i <= pushers; i++ {
			v, err := m.Pop(context.Background())
			if err != nil || v != i {
				t.Fatalf("Pop = %d, %v; want %d, nil", v, err, i)
			}
		}
		wg.Wait()
		mustEmpty(t, m)
	})
}

func TestPushContextDoneDoesNotEnqueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := New[string](1)
		if err := m.TryPush("kept"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.Push(ctx, "cancelled") }()
		synctest.Wait()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Push after cancel = %v, want context.Canceled", err)
		}

		tctx, tcancel := context.WithTimeout(context.Background(), time.Second)
		defer tcancel()
		if err := m.Push(tctx, "timed out"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Push past deadline = %v, want context.DeadlineExceeded", err)
		}
		// A done ctx with the mailbox still full fails at once.
		if err := m.Push(ctx, "already cancelled"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Push with a done ctx = %v, want context.Canceled", err)
		}

		if waiters(m) != 0 || m.Len() != 1 {
			t.Fatalf("waiters, Len = %d, %d; want 0, 1", waiters(m), m.Len())
		}
		mustPop(t, m, "kept")
		mustEmpty(t, m)
	})
}

// Cancellation racing the consumer: every Push that returned nil must be
// received exactly once and every Push that returned an error never.
func TestPushCancelRaceLosesAndDuplicatesNothing(t *testing.T) {
	const producers, perProducer = 4, 2000
	m := New[int](4)
	var (
		mu       sync.Mutex
		accepted = map[int]bool{}
		wg       sync.WaitGroup
	)
	for p := range producers {
		wg.Go(func() {
			for s := range perProducer {
				v := p*perProducer + s
				ctx, cancel := context.WithCancel(context.Background())
				switch s % 3 {
				case 0:
					cancel() // fails at once if full, succeeds if there is room
				case 1:
					go cancel() // races with the consumer's handoff
				}
				err := m.Push(ctx, v)
				cancel()
				if err == nil {
					mu.Lock()
					accepted[v] = true
					mu.Unlock()
				} else if !errors.Is(err, context.Canceled) {
					t.Errorf("Push = %v", err)
				}
			}
		})
	}
	go func() {
		wg.Wait()
		m.Close()
	}()
	seen := map[int]bool{}
	for {
		v, err := m.Pop(context.Background())
		if errors.Is(err, ErrClosed) {
			break
		}
		if seen[v] {
			t.Fatalf("received %d twice", v)
		}
		seen[v] = true
	}
	mu.Lock()
	defer mu.Unlock()
	for v := range seen {
		if !accepted[v] {
			t.Errorf("received %d, whose Push returned an error", v)
		}
	}
	if len(seen) != len(accepted) {
		t.Fatalf("received %d items, %d Pushes returned nil", len(seen), len(accepted))
	}
}

func TestCloseWakesPushersAndKeepsQueuedItems(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := New[int](2)
		for i := range 2 {
			if err := m.TryPush(i); err != nil {
				t.Fatal(err)
			}
		}
		const pushers = 3
		errs := make(chan error, pushers)
		for i := range pushers {
			go func() { errs <- m.Push(context.Background(), 10+i) }()
		}
		synctest.Wait()
		if waiters(m) != pushers {
			t.Fatalf("waiters = %d, want %d", waiters(m), pushers)
		}
		m.Close()
		m.Close() // idempotent
		for range pushers {
			if err := <-errs; !errors.Is(err, ErrClosed) {
				t.Fatalf("blocked Push after Close = %v, want ErrClosed", err)
			}
		}
		if !m.Closed() {
			t.Fatal("Closed() = false after Close")
		}
		if err := m.TryPush(5); !errors.Is(err, ErrClosed) {
			t.Fatalf("TryPush after Close = %v, want ErrClosed", err)
		}
		if err := m.Push(context.Background(), 5); !errors.Is(err, ErrClosed) {
			t.Fatalf("Push after Close = %v, want ErrClosed", err)
		}
		for i := range 2 {
			v, err := m.Pop(context.Background())
			if err != nil || v != i {
				t.Fatalf("Pop after Close = %d, %v; want %d, nil", v, err, i)
			}
		}
		if _, err := m.Pop(context.Background()); !errors.Is(err, ErrClosed) {
			t.Fatalf("Pop on closed, empty mailbox = %v, want ErrClosed", err)
		}
		mustEmpty(t, m)
		if got := m.Drain(nil, 0); len(got) != 0 {
			t.Fatalf("Drain on closed, empty mailbox = %v", got)
		}
	})
}

func TestPopBlocksUntilPushCloseOrContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := New[int](4)
		type result struct {
			v   int
			err error
		}
		got := make(chan result, 1)
		pop := func(ctx context.Context) {
			go func() {
				v, err := m.Pop(ctx)
				got <- result{v, err}
			}()
			synctest.Wait()
		}

		pop(context.Background())
		select {
		case r := <-got:
			t.Fatalf("Pop on an empty mailbox returned %+v without blocking", r)
		default:
		}
		if err := m.TryPush(7); err != nil {
			t.Fatal(err)
		}
		if r := <-got; r.v != 7 || r.err != nil {
			t.Fatalf("Pop = %+v, want 7", r)
		}

		ctx, cancel := context.WithCancel(context.Background())
		pop(ctx)
		cancel()
		if r := <-got; !errors.Is(r.err, context.Canceled) {
			t.Fatalf("Pop after cancel = %+v, want context.Canceled", r)
		}

		pop(context.Background())
		m.Close()
		if r := <-got; !errors.Is(r.err, ErrClosed) {
			t.Fatalf("Pop after Close = %+v, want ErrClosed", r)
		}
	})
}

// Misuse, but documented: several blocked Pops all wake, each item goes to
// exactly one of them, and Close releases every one.
func TestConcurrentPopsAllWake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := New[int](4)
		const consumers = 3
		type result struct {
			v   int
			err error
		}
		got := make(chan result, consumers)
		for range consumers {
			go func() {
				v, err := m.Pop(context.Background())
				got <- result{v, err}
			}()
		}
		synctest.Wait()
		for i := 1; i <= 2; i++ {
			if err := m.TryPush(i); err != nil {
				t.Fatal(err)
			}
		}
		var items []int
		for range 2 {
			r := <-got
			if r.err != nil {
				t.Fatalf("Pop = %+v", r)
			}
			items = append(items, r.v)
		}
		slices.Sort(items)
		if !slices.Equal(items, []int{1, 2}) {
			t.Fatalf("consumers received %v, want [1 2]", items)
		}
		m.Close()
		if r := <-got; !errors.Is(r.err, ErrClosed) {
			t.Fatalf("last Pop = %+v, want ErrClosed", r)
		}
	})
}

func signalled(m interface{ Signal() <-chan struct{} }) bool {
	select {
	case <-m.Signal():
		return true
	default:
		return false
	}
}

func TestSignal(t *testing.T) {
	m := New[int](4)
	if signalled(m) {
		t.Fatal("signal on a new mailbox")
	}
	_ = m.TryPush(1)
	_ = m.TryPush(2)
	if !signalled(m) {
		t.Fatal("no signal after push into empty mailbox")
	}
	_ = m.TryPush(3)
	if signalled(m) {
		t.Fatal("signal after push into non-empty mailbox")
	}
	mustPop(t, m, 1)
	if got := m.Drain(nil, 0); !slices.Equal(got, []int{2, 3}) {
		t.Fatalf("Drain = %v, want [2 3]", got)
	}
	if signalled(m) {
		t.Fatal("signal from consuming")
	}
	if err := m.Push(context.Background(), 4); err != nil {
		t.Fatal(err)
	}
	if !signalled(m) {
		t.Fatal("no signal after push into a drained mailbox")
	}
	m.Close()
	if !signalled(m) {
		t.Fatal("no signal on Close")
	}
	m.Close()
	if signalled(m) {
		t.Fatal("second Close signalled again")
	}
}

// An actor selecting on Signal and draining after each receive sees every
// item, in order, and notices Close.
func TestSignalDrivenConsumerSeesEverything(t *testing.T) {
	const total = 10000
	m := New[int](16)
	go func() {
		for i := range total {
			if err := m.Push(context.Background(), i); err != nil {
				t.Errorf("Push = %v", err)
				return
			}
		}
		m.Close()
	}()
	ticker := time.NewTicker(time.Millisecond)
	defer ticker.Stop()
	want := 0
	var batch []int
	for {
		select {
		case <-m.Signal():
		case <-ticker.C:
			continue // the ticker case exists to show the select shape
		}
		for {
			batch = m.Drain(batch[:0], 0)
			if len(batch) == 0 {
				break
			}
			for _, v := range batch {
				if v != want {
					t.Fatalf("received %d, want %d", v, want)
				}
				want++
			}
		}
		if m.Closed() && m.Len() == 0 {
			break
		}
	}
	if want != total {
		t.Fatalf("received %d items, want %d", want, total)
	}
}

func TestDrainMax(t *testing.T) {
	m := New[int](8)
	// Wrap the ring: 5 in, 5 out, then 8 in.
	for i := range 5 {
		_ = m.TryPush(-i)
	}
	_ = m.Drain(nil, 0)
	for i := range 8 {
		if err := m.TryPush(i); err != nil {
			t.Fatal(err)
		}
	}
	dst := []int{-1}
	dst = m.Drain(dst, 3)
	if !slices.Equal(dst, []int{-1, 0, 1, 2}) {
		t.Fatalf("Drain(dst, 3) = %v, want [-1 0 1 2]", dst)
	}
	if m.Len() != 5 {
		t.Fatalf("Len = %d, want 5", m.Len())
	}
	if got := m.Drain(nil, -1); !slices.Equal(got, []int{3, 4, 5, 6, 7}) {
		t.Fatalf("Drain(nil, -1) = %v, want [3 4 5 6 7]", got)
	}
	if got := m.Drain(nil, 3); got != nil {
		t.Fatalf("Drain on empty mailbox = %v, want nil", got)
	}
}

func TestDrainWakesBlockedPushers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := New[int](2)
		_, _ = m.TryPush(0), m.TryPush(1)
		errs := make(chan error, 2)
		for i := 2; i <= 3; i++ {
			go func() { errs <- m.Push(context.Background(), i) }()
			synctest.Wait()
		}
		if got := m.Drain(nil, 0); !slices.Equal(got, []int{0, 1}) {
			t.Fatalf("Drain = %v, want [0 1]", got)
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatalf("Push after Drain = %v", err)
			}
		}
		if got := m.Drain(nil, 0); !slices.Equal(got, []int{2, 3}) {
			t.Fatalf("second Drain = %v, want [2 3]", got)
		}
	})
}

func TestRingStaysSmall(t *testing.T) {
	m := New[int](10000)
	if ringSize(m) != 0 {
		t.Fatalf("new mailbox ring = %d slots, want 0", ringSize(m))
	}
	_ = m.TryPush(1)
	if ringSize(m) > minRing {
		t.Fatalf("one item: ring = %d slots, want ≤ %d", ringSize(m), minRing)
	}
	for i := range 5000 {
		_ = m.TryPush(i)
	}
	if n := ringSize(m); n < 5001 || n > 10000 {
		t.Fatalf("5001 items: ring = %d slots", n)
	}
	for m.Len() > 3 {
		m.TryPop()
	}
	if ringSize(m) > 4*minRing {
		t.Fatalf("3 items after popping: ring = %d slots, want ≤ %d", ringSize(m), 4*minRing)
	}
	m.Drain(nil, 0)
	if ringSize(m) > minRing {
		t.Fatalf("empty: ring = %d slots, want ≤ %d", ringSize(m), minRing)
	}
	// Growing to capacity and back keeps every item in order.
	for i := range 10000 {
		if err := m.TryPush(i); err != nil {
			t.Fatalf("TryPush(%d) = %v", i, err)
		}
	}
	if ringSize(m) != 10000 {
		t.Fatalf("full: ring = %d slots, want 10000", ringSize(m))
	}
	for i := range 10000 {
		mustPop(t, m, i)
	}
}
