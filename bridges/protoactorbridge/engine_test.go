package protoactorbridge_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/orderly-go/orderly/bridges/protoactorbridge"
)

// These tests run records through an orderly engine on the memory log,
// with per-key order actors behind the bridge.

const waitFor = 20 * time.Second // generous bound for event-based waits

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// closeBridge closes b after the engine has stopped, as the docs say to.
func closeBridge(t *testing.T, b *protoactorbridge.Bridge) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, b.Close(ctx))
}

// Each order's actor sees the order's events in offset order, one actor per
// order, its status following them, and every offset is committed.
func TestPerKeyActorsSeeTheirOrderInOffsetOrder(t *testing.T) {
	const orders, events, parts = 40, 5, 4
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("orders", parts))
	produceOrders(t, log, "orders", orders, 0, events)

	j, s := newJournal(), &store{}
	b, err := protoactorbridge.New(newSystem(),
		protoactorbridge.WithPerKey(orderProps(j, s, nil)),
		protoactorbridge.WithPassivation(protoactorbridge.NoPassivation))
	require.NoError(t, err)
	eng, err := orderly.New(log.Member("billing", []string{"orders"}), b,
		orderly.WithHooks(b), orderly.WithMaxConcurrency(16), orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)
	require.Eventually(t, func() bool { return eng.Stats().RecordsHandled == orders*events }, waitFor, time.Millisecond)
	require.NoError(t, stop())
	closeBridge(t, b)

	assert.Empty(t, j.problems)
	for o := range orders {
		key := "o" + strconv.Itoa(o)
		require.Equal(t, seq(0, events), j.events(key), "key %s", key)
		actors := map[int]bool{}
		for _, sn := range j.byKey[key] {
			actors[sn.actor] = true
			assert.Equal(t, 1, sn.attempt, "key %s: Request.Attempt from the hook", key)
		}
		assert.Len(t, actors, 1, "key %s: one actor", key)
		assert.Equal(t, events-1, s.load(key))
	}
	st := b.Stats()
	assert.Equal(t, uint64(orders), st.Spawned)
	assert.Zero(t, st.Actors, "Close stopped every actor")
	assert.Equal(t, orders, j.started)
	assert.Equal(t, orders, j.stopped)
	for p := range int32(parts) {
		end, err := log.EndOffset("orders", p)
		require.NoError(t, err)
		pos, ok := log.Committed("billing", "orders", p)
		require.True(t, ok)
		assert.Equal(t, end, pos.Offset, "partition %d committed to its end", p)
	}
}

// An error in a Reply is the handler's error: the engine retries the
// record, and the actor sees the attempts in order before the key's next
// event.
func TestActorErrorsAreRetriedInOrder(t *testing.T) {
	const orders, events = 10, 4
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("orders", 2))
	produceOrders(t, log, "orders", orders, 0, events)

	errBusy := errors.New("downstream busy")
	j, s := newJournal(), &store{}
	fail := func(r *protoactorbridge.Request) error {
		if eventOf(r.Record) == 2 && r.Attempt < 3 {
			return errBusy
		}
		return nil
	}
	b, err := protoactorbridge.New(newSystem(), protoactorbridge.WithPerKey(orderProps(j, s, fail)))
	require.NoError(t, err)
	eng, err := orderly.New(log.Member("billing", []string{"orders"}), b, orderly.WithHooks(b),
		orderly.WithRetry(orderly.RetryPolicy{MaxAttempts: 5, InitialDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}),
		orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)
	require.Eventually(t, func() bool { return eng.Stats().RecordsHandled == orders*events }, waitFor, time.Millisecond)
	require.NoError(t, stop())
	closeBridge(t, b)

	assert.Empty(t, j.problems)
	st := eng.Stats()
	assert.Equal(t, uint64(2*orders), st.AttemptsRetried)
	assert.Equal(t, uint64(2*orders), st.AttemptsFailed)
	assert.Zero(t, st.RecordsDeadLettered)
	want := []seen{{0, 1, 0}, {1, 1, 0}, {2, 1, 0}, {2, 2, 0}, {2, 3, 0}, {3, 1, 0}}
	for o := range orders {
		key := "o" + strconv.Itoa(o)
		var got []seen
		for _, sn := range j.byKey[key] {
			got = append(got, seen{event: sn.event, attempt: sn.attempt})
		}
		assert.Equal(t, want, got, "key %s: (event, attempt) as the actor saw them", key)
	}
}

// A record the actor keeps failing goes to the dead-letter sink after the
// last attempt, with the actor's error; orderly.Permanent in a Reply skips
// the retries. The key's later events go on afterwards, in order.
func TestFailingRecordsAreDeadLettered(t *testing.T) {
	const orders, events = 5, 3
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("orders", 2))
	produceOrders(t, log, "orders", orders, 0, events)

	errPoison := errors.New("poison order event")
	j, s := newJournal(), &store{}
	fail := func(r *protoactorbridge.Request) error {
		switch {
		case r.Key == "o2" && eventOf(r.Record) == 1:
			return errPoison
		case r.Key == "o3" && eventOf(r.Record) == 1:
			return orderly.Permanent(errPoison)
		}
		return nil
	}
	b, err := protoactorbridge.New(newSystem(), protoactorbridge.WithPerKey(orderProps(j, s, fail)))
	require.NoError(t, err)

	var mu sync.Mutex
	var dead []orderly.DeadLetter
	var deadRecs []*orderly.Record
	sink := orderly.DeadLetterFunc(func(_ context.Context, r *orderly.Record, dl orderly.DeadLetter) error {
		mu.Lock()
		defer mu.Unlock()
		dead, deadRecs = append(dead, dl), append(deadRecs, r)
		return nil
	})
	eng, err := orderly.New(log.Member("billing", []string{"orders"}), b, orderly.WithHooks(b),
		orderly.WithRetry(orderly.RetryPolicy{MaxAttempts: 3, InitialDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}),
		orderly.WithDeadLetter(sink), orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)
	require.Eventually(t, func() bool {
		st := eng.Stats()
		return st.RecordsHandled == orders*events-2 && st.RecordsDeadLettered == 2
	}, waitFor, time.Millisecond)
	require.NoError(t, stop())
	closeBridge(t, b)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, dead, 2)
	byKey := map[string]orderly.DeadLetter{}
	for i, r := range deadRecs {
		assert.Equal(t, 1, eventOf(r), "dead-lettered event of %s", r.Key)
		byKey[string(r.Key)] = dead[i]
	}
	require.Contains(t, byKey, "o2")
	require.Contains(t, byKey, "o3")
	assert.Equal(t, 3, byKey["o2"].Attempts, "retried to the policy's limit")
	assert.ErrorIs(t, byKey["o2"].Err, errPoison)
	assert.Equal(t, 1, byKey["o3"].Attempts, "Permanent skips retries")
	assert.ErrorIs(t, byKey["o3"].Err, errPoison)

	assert.Empty(t, j.problems)
	assert.Equal(t, []int{0, 1, 1, 1, 2}, j.events("o2"))
	assert.Equal(t, []int{0, 1, 2}, j.events("o3"))
	assert.Equal(t, 2, s.load("o2"), "the order went on after the dead letter")
	for _, key := range []string{"o0", "o1", "o4"} {
		assert.Equal(t, []int{0, 1, 2}, j.events(key))
	}
}

// Idle per-key actors are passivated while the engine runs, and the next
// events of their orders spawn new ones, which pick the status up from the
// store and go on in order.
func TestPassivatedActorsComeBackOnTheNextRecord(t *testing.T) {
	const orders = 10
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("orders", 2))
	produceOrders(t, log, "orders", orders, 0, 3)

	j, s := newJournal(), &store{}
	b, err := protoactorbridge.New(newSystem(), protoactorbridge.WithPerKey(orderProps(j, s, nil)),
		protoactorbridge.WithPassivation(20*time.Millisecond))
	require.NoError(t, err)
	eng, err := orderly.New(log.Member("billing", []string{"orders"}), b, orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)

	require.Eventually(t, func() bool { return eng.Stats().RecordsHandled == orders*3 }, waitFor, time.Millisecond)
	require.Eventually(t, func() bool {
		st := b.Stats()
		return st.Passivated == orders && st.Actors == 0 && j.count(func(j *journal) int { return j.stopped }) == orders
	}, waitFor, time.Millisecond, "every idle actor stops")

	produceOrders(t, log, "orders", orders, 3, 6)
	require.Eventually(t, func() bool { return eng.Stats().RecordsHandled == orders*6 }, waitFor, time.Millisecond)
	require.NoError(t, stop())
	closeBridge(t, b)

	assert.Empty(t, j.problems)
	assert.GreaterOrEqual(t, b.Stats().Spawned, uint64(2*orders))
	for o := range orders {
		key := "o" + strconv.Itoa(o)
		assert.Equal(t, seq(0, 6), j.events(key), "key %s", key)
		var before, after []int // actors of the events produced before and after every actor was passivated
		for _, sn := range j.byKey[key] {
			if sn.event < 3 {
				before = append(before, sn.actor)
			} else {
				after = append(after, sn.actor)
			}
		}
		for _, a := range after {
			assert.NotContains(t, before, a, "key %s: a new actor after passivation", key)
		}
		assert.Equal(t, 5, s.load(key))
	}
}

// An engine stopped in the middle of a stream, with requests still at the
// actors past its drain timeout, then the bridge closed, loses nothing: a
// second engine and bridge on the same group handle the rest, and in each
// run every order's actor sees its events in order.
func TestShutdownMidStreamLosesNothing(t *testing.T) {
	const orders, events = 20, 20
	const half = orders * events / 2
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("orders", 2))
	produceOrders(t, log, "orders", orders, 0, events)

	s := &store{}
	run := func(j *journal, fail func(*protoactorbridge.Request) error, enough func() bool, afterRun func()) {
		b, err := protoactorbridge.New(newSystem(), protoactorbridge.WithPerKey(orderProps(j, s, fail)))
		require.NoError(t, err)
		eng, err := orderly.New(log.Member("billing", []string{"orders"}), b,
			orderly.WithMaxConcurrency(8), orderly.WithDrainTimeout(50*time.Millisecond), orderly.WithLogger(quiet))
		require.NoError(t, err)
		stop := running(t, eng)
		require.Eventually(t, enough, waitFor, time.Millisecond)
		require.NoError(t, stop())
		afterRun()
		closeBridge(t, b)
		assert.Zero(t, b.Stats().InFlight)
		assert.Zero(t, b.Stats().Actors)
	}

	first, second := newJournal(), newJournal()
	handled := func() int { // distinct (order, event) pairs seen by either run
		n := 0
		for o := range orders {
			key := "o" + strconv.Itoa(o)
			all := map[int]bool{}
			for _, ev := range append(first.events(key), second.events(key)...) {
				all[ev] = true
			}
			n += len(all)
		}
		return n
	}
	// The first run's actors hold every request after the first half until
	// the engine has stopped: those outlive the drain timeout.
	var sent atomic.Int32
	gate := make(chan struct{})
	holdAfterHalf := func(*protoactorbridge.Request) error {
		if sent.Add(1) > half {
			<-gate
		}
		return nil
	}
	run(first, holdAfterHalf, func() bool { return sent.Load() > half }, func() { close(gate) })
	require.Less(t, handled(), orders*events, "the first run stopped before the end")
	run(second, nil, func() bool { return handled() == orders*events }, func() {})

	assert.Empty(t, first.problems)
	for o := range orders {
		key := "o" + strconv.Itoa(o)
		a, b := first.events(key), second.events(key)
		assert.True(t, slices.IsSorted(a) && slices.IsSorted(b), "key %s: in order in each run: %v then %v", key, a, b)
	}
}
