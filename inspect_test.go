package orderly_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/stretchr/testify/require"
)

// inspected waits until partition p's inspection satisfies ok and returns
// that inspection (and the engine-wide one it came from); on timeout it
// fails with the last one seen.
func inspected(t *testing.T, eng *orderly.Engine, p int32, ok func(orderly.PartitionInspection) bool) (orderly.PartitionInspection, orderly.Inspection) {
	t.Helper()
	return inspectedIn(t, eng, p, func(pi orderly.PartitionInspection, _ orderly.Inspection) bool { return ok(pi) })
}

// inspectedIn is inspected with a condition on the engine-wide figures too.
func inspectedIn(t *testing.T, eng *orderly.Engine, p int32, ok func(orderly.PartitionInspection, orderly.Inspection) bool) (orderly.PartitionInspection, orderly.Inspection) {
	t.Helper()
	var last orderly.Inspection
	var found orderly.PartitionInspection
	cond := func() bool {
		last = eng.Inspect()
		for _, pi := range last.Partitions {
			if pi.Partition == p && ok(pi, last) {
				found = pi
				return true
			}
		}
		return false
	}
	if !eventually(cond, 10*time.Second) {
		t.Fatalf("partition %d never looked as expected; last inspection:\n%+v", p, last)
	}
	return found, last
}

// eventually polls cond until it holds or the bound passes.
func eventually(cond func() bool, bound time.Duration) bool {
	deadline := time.Now().Add(bound)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

// gatedHandler blocks the records whose key is in block until the gate is
// closed, and tells started about each record it starts.
type gatedHandler struct {
	block   map[string]bool
	gate    chan struct{}
	started chan int64
	handled atomic.Int64
}

func newGatedHandler(blocked ...string) *gatedHandler {
	h := &gatedHandler{block: map[string]bool{}, gate: make(chan struct{}), started: make(chan int64, 1000)}
	for _, k := range blocked {
		h.block[k] = true
	}
	return h
}

func (h *gatedHandler) Handle(ctx context.Context, r *orderly.Record) error {
	h.started <- r.Offset
	if h.block[string(r.Key)] {
		<-h.gate
	}
	h.handled.Add(1)
	return nil
}

// A handler blocked on a channel holds the watermark: in every ordering
// mode, Inspect names its offset and key, says it is running, since when,
// and what queues behind it; once it returns, nothing blocks.
func TestInspectNamesABlockedHandler(t *testing.T) {
	for _, mode := range []struct {
		name string
		o    orderly.Ordering
		keys []string // the blocked record's ordering keys
	}{
		{"key", orderly.ByKey(), []string{"stuck"}},
		{"key-func", orderly.ByKeyFunc(func(r *orderly.Record) (string, bool) { return "id-" + string(r.Key), true }), []string{"id-stuck"}},
		{"keys", orderly.ByKeys(func(r *orderly.Record) []string { return []string{"x-" + string(r.Key), "y"} }), []string{"x-stuck", "y"}},
		{"serial", orderly.Serial(), []string{""}},
		{"unordered", orderly.Unordered(), nil},
	} {
		t.Run(mode.name, func(t *testing.T) {
			log := memory.NewLog()
			require.NoError(t, log.CreateTopic("t", 1))
			produce(t, log, "t", 0, "stuck", "a", "b", "stuck", "c")
			h := newGatedHandler("stuck")
			eng, err := orderly.New(log.Member("g", []string{"t"}), h, orderly.WithOrdering(mode.o), orderly.WithLogger(quiet))
			require.NoError(t, err)
			start := time.Now()
			stop := running(t, eng)

			pi, in := inspected(t, eng, 0, func(pi orderly.PartitionInspection) bool {
				return pi.Blocking != nil && pi.Blocking.State == orderly.RecordRunning && pi.Blocking.Age > 0 && pi.InFlight >= 1
			})
			b := pi.Blocking
			require.Equal(t, int64(0), b.Offset)
			require.Equal(t, int64(0), pi.Watermark)
			require.Equal(t, "stuck", b.Key)
			require.True(t, b.HasKey)
			require.Equal(t, mode.keys, b.Keys)
			require.Equal(t, 1, b.Attempts)
			require.NoError(t, b.LastError)
			require.Nil(t, b.WaitingOn)
			require.GreaterOrEqual(t, pi.InFlight, int64(1))
			require.Equal(t, "t", pi.Topic)
			require.Equal(t, int64(1000), pi.Limits.Records)
			require.Equal(t, int64(1_000_000), pi.MaxUncommitted, "the default window")
			require.Equal(t, 64, in.MaxConcurrency)
			require.Equal(t, orderly.BreakerNone, in.Breaker)
			require.Empty(t, in.Stuck, "no attempt timeout: nothing counts as stuck")
			require.LessOrEqual(t, b.Age, in.Time.Sub(start), "dispatched after the engine started")

			if mode.name == "key" || mode.name == "serial" {
				// Offset 3 (key "stuck", or the serial partition) queues
				// behind the blocked head; the others finish.
				pi, _ = inspected(t, eng, 0, func(pi orderly.PartitionInspection) bool {
					return h.handled.Load() == map[string]int64{"key": 3, "serial": 0}[mode.name] && pi.Blocking != nil
				})
				require.Equal(t, map[string]int{"key": 1, "serial": 4}[mode.name], pi.Blocking.Behind, "the records queued behind it")
				require.NotEmpty(t, pi.TopKeys)
				top := pi.TopKeys[0]
				require.Equal(t, mode.keys[0], top.Key)
				require.Equal(t, int64(0), top.Head.Offset)
				require.Equal(t, orderly.RecordRunning, top.Head.State)
				require.Equal(t, map[string]int{"key": 2, "serial": 5}[mode.name], top.Records)
				require.Positive(t, top.Bytes)
				require.Equal(t, top.Head.Age, top.Age)
			}

			close(h.gate)
			inspected(t, eng, 0, func(pi orderly.PartitionInspection) bool { return pi.Blocking == nil && pi.Watermark == 5 })
			require.NoError(t, stop())
		})
	}
}

// A handler that outlives twice its attempt timeout is listed as stuck,
// with its offset, key and running time, until it returns.
func TestInspectListsStuckHandlers(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 2))
	produce(t, log, "t", 1, "ok", "stuck")
	h := newGatedHandler("stuck") // ignores its context
	eng, err := orderly.New(log.Member("g", []string{"t"}), h, orderly.WithAttemptTimeout(10*time.Millisecond), orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)

	var in orderly.Inspection
	require.True(t, eventually(func() bool { in = eng.Inspect(); return len(in.Stuck) == 1 && eng.Stats().Stuck == 1 }, 10*time.Second), "%+v", in)
	s := in.Stuck[0]
	require.Equal(t, orderly.StuckHandler{Topic: "t", Partition: 1, Offset: 1, Key: "stuck", HasKey: true, Attempt: 1, Running: s.Running}, s)
	require.GreaterOrEqual(t, s.Running, 20*time.Millisecond)

	close(h.gate)
	require.True(t, eventually(func() bool { return len(eng.Inspect().Stuck) == 0 && eng.Stats().Stuck == 0 }, 10*time.Second))
	require.NoError(t, stop())
}

// A record whose attempt failed waits for its retry: Inspect says when it
// is due, how many attempts were made and the last error; its key's later
// record waits behind it.
func TestInspectNamesARecordWaitingForItsRetry(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	produce(t, log, "t", 0, "flaky", "other", "flaky")
	var failures atomic.Int64
	eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		if r.Offset == 0 {
			failures.Add(1)
			return fmt.Errorf("downstream said no (%d)", failures.Load())
		}
		return nil
	}), orderly.WithRetry(orderly.RetryPolicy{InitialDelay: 5 * time.Millisecond, MaxDelay: time.Hour, Multiplier: 1000, Jitter: orderly.NoJitter}),
		orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)

	// The first retry comes after 5ms, the second after 5s: it is seen
	// waiting for the second (or a later one).
	before := time.Now()
	pi, _ := inspected(t, eng, 0, func(pi orderly.PartitionInspection) bool {
		return pi.Blocking != nil && pi.Blocking.State == orderly.RecordRetryWait && pi.Blocking.Attempts >= 2
	})
	b := pi.Blocking
	require.Equal(t, int64(0), b.Offset)
	require.Equal(t, "flaky", b.Key)
	require.EqualError(t, b.LastError, fmt.Sprintf("downstream said no (%d)", b.Attempts))
	require.False(t, b.FirstFailure.IsZero())
	require.False(t, b.FirstFailure.After(time.Now()))
	require.True(t, b.NextTry.After(before.Add(4*time.Second)), "next try %v", b.NextTry)
	require.Equal(t, 1, b.Behind, "flaky's second record waits behind it")
	require.Equal(t, 1, pi.Retrying)
	require.Equal(t, int64(0), pi.Watermark)
	require.NoError(t, stop())
}

// Records of a key wait behind its head. With ByKeys a record can head
// one of its keys while it waits on another: Inspect names the key and
// the record it waits behind.
func TestInspectNamesRecordsWaitingBehindAKey(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	// Keys "a" then "a,b" then "b": 1 heads b but waits on a behind 0,
	// and 2 waits behind 1 on b.
	produce(t, log, "t", 0, "a", "a,b", "b", "c")
	h := newGatedHandler("a")
	eng, err := orderly.New(log.Member("g", []string{"t"}), h,
		orderly.WithOrdering(orderly.ByKeys(func(r *orderly.Record) []string { return strings.Split(string(r.Key), ",") })),
		orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)

	pi, _ := inspected(t, eng, 0, func(pi orderly.PartitionInspection) bool {
		return h.handled.Load() == 1 && len(pi.TopKeys) == 2 && pi.Blocking != nil && pi.Blocking.State == orderly.RecordRunning
	})
	require.Equal(t, int64(0), pi.Blocking.Offset)
	require.Equal(t, 1, pi.Blocking.Behind)
	require.Equal(t, 2, pi.Keys)
	byKey := map[string]orderly.KeyInspection{}
	for _, k := range pi.TopKeys {
		byKey[k.Key] = k
	}
	a, b := byKey["a"], byKey["b"]
	require.Equal(t, 2, a.Records)
	require.Equal(t, int64(0), a.Head.Offset)
	require.Equal(t, orderly.RecordRunning, a.Head.State)
	require.Equal(t, 2, b.Records)
	require.Equal(t, int64(1), b.Head.Offset)
	require.Equal(t, orderly.RecordBehindKey, b.Head.State)
	require.Equal(t, &orderly.KeyHead{Key: "a", Offset: 0}, b.Head.WaitingOn)
	require.Equal(t, []string{"a", "b"}, b.Head.Keys)
	require.Zero(t, b.Head.Attempts)

	close(h.gate)
	inspected(t, eng, 0, func(pi orderly.PartitionInspection) bool {
		return pi.Blocking == nil && pi.Keys == 0 && pi.Watermark == 4
	})
	require.NoError(t, stop())
}

// A partition out of credit is paused for it; records beyond the
// concurrency limit wait for a slot.
func TestInspectNamesAPartitionPausedForCredits(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	var keys []string
	for i := range 50 {
		keys = append(keys, fmt.Sprint("k", i))
	}
	produce(t, log, "t", 0, keys...)
	h := newGatedHandler(keys...)
	m := log.Member("g", []string{"t"}, memory.WithFetchBuffer(4))
	eng, err := orderly.New(m, h, orderly.WithPartitionBuffer(10, 1<<20), orderly.WithMaxConcurrency(4), orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)
	for range 4 {
		receive(t, h.started) // 4 handlers are running: the concurrency limit
	}

	// Credits are taken before records reach their keys and the
	// scheduler: wait until all 10 have.
	pi, in := inspectedIn(t, eng, 0, func(pi orderly.PartitionInspection, in orderly.Inspection) bool {
		return pi.Paused && pi.HeldRecords == 10 && pi.Keys == 10 && in.ReadyActors == 6 && m.Paused("t", 0)
	})
	require.Contains(t, pi.Reasons, orderly.PausePartitionRecords)
	require.Equal(t, orderly.Limits{Records: 10, Bytes: 1 << 20}, pi.Limits)
	// The window holds the 10 records, and one more while the dispatcher
	// waits for the next record's partition credit.
	require.Contains(t, []int64{10, 11}, pi.Uncommitted)
	require.Equal(t, 10, pi.Keys)
	require.Equal(t, int64(0), pi.Blocking.Offset)
	require.Equal(t, orderly.RecordRunning, pi.Blocking.State)
	require.Equal(t, 4, in.MaxConcurrency)
	require.Equal(t, int64(4), in.InFlight)
	require.Equal(t, 6, in.ReadyActors)
	require.Len(t, pi.TopKeys, orderly.DefaultInspectTopKeys)
	states := map[orderly.RecordState]int{}
	for _, k := range eng.InspectWith(orderly.InspectOptions{TopKeys: 100}).Partitions[0].TopKeys {
		states[k.Head.State]++
	}
	require.Equal(t, map[orderly.RecordState]int{orderly.RecordRunning: 4, orderly.RecordReady: 6}, states)
	require.Empty(t, eng.InspectWith(orderly.InspectOptions{TopKeys: -1}).Partitions[0].TopKeys)

	close(h.gate)
	inspected(t, eng, 0, func(pi orderly.PartitionInspection) bool { return pi.Watermark == 50 && !pi.Paused })
	require.NoError(t, stop())
}

// The record holding a partition's watermark may be waiting for a
// concurrency slot that another partition's handler holds.
func TestInspectNamesARecordWaitingForASlot(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 2))
	h := newGatedHandler("hog")
	eng, err := orderly.New(log.Member("g", []string{"t"}), h, orderly.WithMaxConcurrency(1), orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)
	produce(t, log, "t", 1, "hog")
	require.Equal(t, int64(0), receive(t, h.started))
	produce(t, log, "t", 0, "waiting")

	pi, _ := inspected(t, eng, 0, func(pi orderly.PartitionInspection) bool { return pi.Blocking != nil })
	require.Equal(t, orderly.RecordReady, pi.Blocking.State)
	require.Equal(t, "waiting", pi.Blocking.Key)
	require.Zero(t, pi.Blocking.Attempts)
	close(h.gate)
	require.NoError(t, stop())
}

// With priority levels, a record waiting in its level's ready queue is
// named as waiting for a slot too.
func TestInspectNamesARecordWaitingForASlotAtItsLevel(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 2))
	h := newGatedHandler("hog")
	eng, err := orderly.New(log.Member("g", []string{"t"}), h, orderly.WithMaxConcurrency(1), orderly.WithLogger(quiet),
		orderly.WithPriorities(orderly.PriorityFunc(func(r *orderly.Record) (int, bool) { return int(r.Partition), true }),
			orderly.PriorityLevel{WIP: orderly.UnlimitedWIP}, orderly.PriorityLevel{WIP: orderly.UnlimitedWIP}))
	require.NoError(t, err)
	stop := running(t, eng)
	produce(t, log, "t", 1, "hog")
	require.Equal(t, int64(0), receive(t, h.started))
	produce(t, log, "t", 0, "waiting")

	pi, _ := inspected(t, eng, 0, func(pi orderly.PartitionInspection) bool { return pi.Blocking != nil })
	require.Equal(t, orderly.RecordReady, pi.Blocking.State)
	require.Equal(t, "waiting", pi.Blocking.Key)
	close(h.gate)
	require.NoError(t, stop())
}

// A failed record on its way to the dead-letter sink, and the later
// records of its key, parked after it, are named as such; the parked key
// is listed until it is released.
func TestInspectNamesDeadLettersAndParkedKeys(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	produce(t, log, "t", 0, "k", "k", "other")
	sinkGate := make(chan struct{})
	var sinkCalls atomic.Int64
	sink := orderly.DeadLetterFunc(func(ctx context.Context, r *orderly.Record, dl orderly.DeadLetter) error {
		switch sinkCalls.Add(1) {
		case 1: // offset 0, first engine: waits, then fails
			<-sinkGate
			return errors.New("sink unavailable")
		case 3: // offset 1, second engine: waits
			<-sinkGate
		}
		return nil
	})
	eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		if r.Offset == 0 {
			return orderly.Permanent(errors.New("poison"))
		}
		return nil
	}), orderly.WithDeadLetter(sink), orderly.WithKeyParking(orderly.ParkUntilReleased),
		orderly.WithRetry(orderly.RetryPolicy{InitialDelay: time.Hour, Jitter: orderly.NoJitter}), orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)

	// Offset 0 failed for good and is being written to the sink.
	pi, _ := inspected(t, eng, 0, func(pi orderly.PartitionInspection) bool {
		return pi.Blocking != nil && pi.Blocking.State == orderly.RecordDeadLettering
	})
	require.Equal(t, int64(0), pi.Blocking.Offset)
	require.Equal(t, 1, pi.Blocking.Attempts)
	require.EqualError(t, pi.Blocking.LastError, "poison")
	require.Equal(t, 1, pi.Parked, "the key is parked as its record goes to the sink")
	require.Equal(t, []orderly.ParkedKey{{Key: "k"}}, pi.ParkedKeys)

	// Its write fails once: it waits to retry it, an hour away.
	sinkGate <- struct{}{}
	pi, _ = inspected(t, eng, 0, func(pi orderly.PartitionInspection) bool {
		return pi.Blocking != nil && pi.Blocking.State == orderly.RecordDeadLetterRetry
	})
	require.EqualError(t, pi.Blocking.LastError, "sink unavailable")
	require.True(t, pi.Blocking.NextTry.After(time.Now().Add(30*time.Minute)))
	require.NoError(t, stop())

	// A fresh engine: offset 0 is written at once; offset 1, of the
	// parked key, goes to the sink without a handler call.
	eng, err = orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		if r.Offset == 0 {
			return orderly.Permanent(errors.New("poison"))
		}
		return nil
	}), orderly.WithDeadLetter(sink), orderly.WithKeyParking(orderly.ParkUntilReleased), orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop = running(t, eng)
	pi, _ = inspected(t, eng, 0, func(pi orderly.PartitionInspection) bool {
		return pi.Blocking != nil && pi.Blocking.State == orderly.RecordParked
	})
	require.Equal(t, int64(1), pi.Blocking.Offset)
	require.Zero(t, pi.Blocking.Attempts, "a parked record is never handled")
	require.ErrorIs(t, pi.Blocking.LastError, orderly.ErrKeyParked)
	require.Equal(t, []orderly.ParkedKey{{Key: "k"}}, pi.ParkedKeys)
	close(sinkGate)
	pi, _ = inspected(t, eng, 0, func(pi orderly.PartitionInspection) bool { return pi.Blocking == nil && pi.Watermark == 3 })
	require.Equal(t, 1, pi.Parked)
	require.True(t, eng.ReleaseKey("t", 0, "k"))
	inspected(t, eng, 0, func(pi orderly.PartitionInspection) bool { return pi.Parked == 0 && pi.ParkedKeys == nil })
	require.NoError(t, stop())
}

// Records waiting for a rate-limit token or for an open breaker say so,
// and when they will ask again.
func TestInspectNamesRateLimitAndBreakerWaits(t *testing.T) {
	t.Run("rate-limit", func(t *testing.T) {
		log := memory.NewLog()
		require.NoError(t, log.CreateTopic("t", 1))
		produce(t, log, "t", 0, "a", "a") // one key: offset 0 takes the only token
		eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(context.Context, *orderly.Record) error { return nil }),
			orderly.WithPartitionRateLimit(0.001, 1), orderly.WithLogger(quiet))
		require.NoError(t, err)
		stop := running(t, eng)
		pi, _ := inspected(t, eng, 0, func(pi orderly.PartitionInspection) bool {
			return pi.Blocking != nil && pi.Blocking.State == orderly.RecordRateLimited
		})
		require.Equal(t, int64(1), pi.Blocking.Offset)
		require.True(t, pi.Blocking.NextTry.After(time.Now().Add(10*time.Minute)))
		require.Zero(t, pi.Blocking.Attempts)
		require.NoError(t, stop())
	})
	t.Run("breaker", func(t *testing.T) {
		log := memory.NewLog()
		require.NoError(t, log.CreateTopic("t", 1))
		produce(t, log, "t", 0, "a")
		eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(context.Context, *orderly.Record) error {
			return errors.New("down")
		}), orderly.WithCircuitBreaker(orderly.BreakerPolicy{MinRequests: 1, FailureRatio: 1, CoolDown: time.Hour}),
			orderly.WithRetry(orderly.RetryPolicy{InitialDelay: time.Millisecond}), orderly.WithLogger(quiet))
		require.NoError(t, err)
		stop := running(t, eng)
		pi, in := inspected(t, eng, 0, func(pi orderly.PartitionInspection) bool {
			return pi.Blocking != nil && pi.Blocking.State == orderly.RecordBreakerOpen
		})
		require.Equal(t, orderly.BreakerOpen, in.Breaker)
		require.Equal(t, 1, pi.Blocking.Attempts)
		require.EqualError(t, pi.Blocking.LastError, "down")
		require.True(t, pi.Blocking.NextTry.After(time.Now().Add(10*time.Minute)))
		require.Contains(t, pi.Reasons, orderly.PauseBreaker)
		require.NoError(t, stop())
	})
}

// Inspect may be called at any time, from many goroutines at once, while
// records flow and partitions come and go: it never disturbs what the
// engine promises (every record handled once, in order per key).
func TestInspectWhileRecordsFlow(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 4))
	const n = 4000
	for i := range n {
		_, err := log.ProduceTo("t", int32(i%4), fmt.Appendf(nil, "k%d", i%37), nil)
		require.NoError(t, err)
	}
	var mu sync.Mutex
	last := map[string]int64{}
	failed := map[int64]bool{}
	var handled, outOfOrder atomic.Int64
	eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		k := fmt.Sprint(r.Partition, "/", string(r.Key))
		mu.Lock()
		defer mu.Unlock()
		if id := int64(r.Partition)<<32 | r.Offset; r.Offset%97 == 0 && !failed[id] {
			failed[id] = true // its first attempt fails: it is retried
			return errors.New("again")
		}
		if prev, ok := last[k]; ok && prev >= r.Offset {
			outOfOrder.Add(1)
		}
		last[k] = r.Offset
		handled.Add(1)
		return nil
	}), orderly.WithRetry(orderly.RetryPolicy{InitialDelay: time.Millisecond}), orderly.WithPartitionBuffer(64, 1<<20),
		orderly.WithMaxConcurrency(8), orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				in := eng.InspectWith(orderly.InspectOptions{TopKeys: 3})
				for _, pi := range in.Partitions {
					if pi.Blocking != nil && pi.Blocking.Offset != pi.Watermark && pi.Blocking.State != orderly.RecordAbandoned {
						t.Errorf("partition %d: blocking offset %d is not the watermark %d", pi.Partition, pi.Blocking.Offset, pi.Watermark)
					}
				}
			}
		})
	}
	require.True(t, eventually(func() bool { return handled.Load() == n }, 30*time.Second), "handled %d of %d", handled.Load(), n)
	close(done)
	wg.Wait()
	require.NoError(t, stop())
	require.Zero(t, outOfOrder.Load())
	require.Empty(t, eng.Inspect().Partitions)
}

// receive takes a value from c, failing the test if none comes in time.
func receive[T any](t *testing.T, c <-chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("nothing received in 10s")
		panic("unreachable")
	}
}
