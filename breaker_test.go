package orderly_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/stretchr/testify/require"
)

// breakerTimeline is one ordered sequence of the breaker's state changes
// and the handler's call starts. The engine logs a state change from
// gobreaker's OnStateChange, under the breaker's lock; an attempt is
// admitted under that lock too, before its handler starts. So with one
// handler call at a time (WithMaxConcurrency(1): the attempt that trips the
// breaker has returned before the next is admitted), a call that starts
// after an "open" entry and before the next "half-open" entry was admitted
// while the breaker was open: exactly what must never happen.
type breakerTimeline struct {
	mu     sync.Mutex
	events []string // "open", "half-open", "closed", or "call <partition>/<offset>"
}

func (l *breakerTimeline) add(e string) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *breakerTimeline) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

func (l *breakerTimeline) count(e string) int {
	n := 0
	for _, x := range l.snapshot() {
		if x == e {
			n++
		}
	}
	return n
}

// The timeline is also the engine's slog handler: it keeps the breaker's
// state changes ("orderly: circuit breaker <state>").
func (l *breakerTimeline) Enabled(context.Context, slog.Level) bool { return true }
func (l *breakerTimeline) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *breakerTimeline) WithGroup(string) slog.Handler            { return l }
func (l *breakerTimeline) Handle(_ context.Context, r slog.Record) error {
	if state, ok := strings.CutPrefix(r.Message, "orderly: circuit breaker "); ok {
		l.add(state)
	}
	return nil
}

// During a downstream outage the breaker opens; while it is open no
// handler call starts and every partition is paused for "breaker"; after
// the cool-down a half-open probe fails and it opens again; once the
// downstream is back, consumption resumes and every record is handled once,
// in key order, with nothing dead-lettered. It runs in a synctest bubble:
// the cool-down and the stats polling are on fake time, so the poller sees
// every open period whatever the machine's load.
func TestBreakerStopsDeliveryDuringAnOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const partitions, records, keys = 2, 200, 10
		log := memory.NewLog()
		require.NoError(t, log.CreateTopic("t", partitions))
		for i := range records {
			_, err := log.ProduceTo("t", int32(i%partitions), fmt.Appendf(nil, "k%d", i%keys), fmt.Append(nil, i))
			require.NoError(t, err)
		}

		var down atomic.Bool
		down.Store(true)
		timeline := &breakerTimeline{}
		var mu sync.Mutex
		succeeded := map[string]int{}      // partition/offset -> successful calls
		callsByKey := map[string][]int64{} // partition/key -> offsets of every call, in order
		h := orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
			timeline.add(fmt.Sprintf("call %d/%d", r.Partition, r.Offset))
			mu.Lock()
			defer mu.Unlock()
			slot := fmt.Sprintf("%d/%s", r.Partition, r.Key)
			callsByKey[slot] = append(callsByKey[slot], r.Offset)
			if down.Load() {
				return errors.New("downstream unavailable")
			}
			succeeded[fmt.Sprintf("%d/%d", r.Partition, r.Offset)]++
			return nil
		})
		eng, err := orderly.New(log.Member("g", []string{"t"}), h,
			orderly.WithMaxConcurrency(1),
			orderly.WithRetry(orderly.RetryPolicy{InitialDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond, MaxAttempts: orderly.UnlimitedAttempts}),
			orderly.WithCircuitBreaker(orderly.BreakerPolicy{
				Window: time.Second, MinRequests: 4, FailureRatio: 0.5, CoolDown: 100 * time.Millisecond, HalfOpenRequests: 1,
			}),
			orderly.WithCommitInterval(5*time.Millisecond),
			orderly.WithLogger(slog.New(timeline)))
		require.NoError(t, err)

		// Poll the stats while the outage lasts: an open breaker shows up as
		// every partition paused with reason "breaker".
		var sawPaused atomic.Bool
		pollDone := make(chan struct{})
		stopPoll := make(chan struct{})
		go func() {
			defer close(pollDone)
			for {
				select {
				case <-stopPoll:
					return
				case <-time.After(time.Millisecond):
				}
				s := eng.Stats()
				if !s.BreakerOpen || len(s.Partitions) != partitions {
					continue
				}
				all := true
				for _, p := range s.Partitions {
					all = all && p.Paused && slices.Contains(p.Reasons, orderly.PauseBreaker)
				}
				if all {
					sawPaused.Store(true)
				}
			}
		}()

		stop := running(t, eng)
		// The outage lasts until the breaker has opened twice: tripped by the
		// failures, then again after a failed half-open probe.
		require.Eventually(t, func() bool { return timeline.count("open") >= 2 }, 20*time.Second, time.Millisecond)
		down.Store(false)
		require.Eventually(t, func() bool {
			for p := range int32(partitions) {
				end, _ := log.EndOffset("t", p)
				if pos, _ := log.Committed("g", "t", p); pos.Offset != end {
					return false
				}
			}
			return true
		}, 20*time.Second, time.Millisecond)
		close(stopPoll)
		<-pollDone
		s := eng.Stats()
		require.NoError(t, stop())

		events := timeline.snapshot()
		open := false
		var opens, callsWhileOpen int
		for i, e := range events {
			switch {
			case e == "open":
				open = true
				opens++
			case e == "half-open" || e == "closed":
				open = false
			case open:
				callsWhileOpen++
				t.Errorf("handler call %q started while the breaker was open (event %d of %d)", e, i, len(events))
			}
		}
		require.Zero(t, callsWhileOpen)
		require.GreaterOrEqual(t, opens, 2)
		last := ""
		for _, e := range events {
			if !strings.HasPrefix(e, "call ") {
				last = e
			}
		}
		require.Equal(t, "closed", last, "the breaker ends closed")
		require.True(t, sawPaused.Load(), "while open, every partition was seen paused for \"breaker\"")
		require.False(t, s.BreakerOpen)
		require.Zero(t, s.RecordsDeadLettered)

		mu.Lock()
		defer mu.Unlock()
		require.Len(t, succeeded, records, "every record is handled after the outage")
		for pos, n := range succeeded {
			require.Equal(t, 1, n, "record %s succeeded more than once", pos)
		}
		for slot, offs := range callsByKey {
			require.True(t, slices.IsSorted(offs), "%s: calls out of key order: %v", slot, offs)
		}
	})
}
