package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderly-go/orderly"
)

// faults makes the downstream of the handle stage misbehave on purpose, so
// that the demo shows orderly's failure handling:
//
//   - a flaky share of events fails once with a transient error: the engine
//     retries it with backoff inside the order's key actor, and it succeeds;
//   - a poison share fails permanently (orderly.Permanent): the event goes
//     to the dead-letter sink (the orders.dlq topic on Kafka), and with key
//     parking every later event of that order follows it there, in order,
//     so no order is ever applied on top of a failed event.
//
// Which events misbehave is a pure function of the event, so the summary
// can say exactly what should have happened.
type faults struct {
	flaky, poison float64
	failed        sync.Map // events that already failed once (flaky)
	deadLettered  atomic.Int64
}

func share(ev event, salt string) float64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%s/%d", salt, ev.order, ev.seq)
	return float64(h.Sum64()>>11) / (1 << 53)
}

func (f *faults) isPoison(ev event) bool { return share(ev, "poison") < f.poison }
func (f *faults) isFlaky(ev event) bool  { return share(ev, "flaky") < f.flaky }

func (f *faults) enabled() bool { return f.flaky > 0 || f.poison > 0 }

// wrap puts the faults in front of the handle stage.
func (f *faults) wrap(handle func(context.Context, event) (event, error)) func(context.Context, event) (event, error) {
	if !f.enabled() {
		return handle
	}
	return func(ctx context.Context, ev event) (event, error) {
		if f.isPoison(ev) {
			return ev, orderly.Permanent(fmt.Errorf("order %s event %d rejected by the payment service", ev.order, ev.seq))
		}
		if f.isFlaky(ev) {
			if _, again := f.failed.LoadOrStore(ev, true); !again {
				return ev, errors.New("payment service unavailable")
			}
		}
		return handle(ctx, ev)
	}
}

// options returns the engine options that handle the faults; an event
// written to the dead-letter sink is finished (fin).
func (f *faults) options(sink orderly.DeadLetterSink, fin *finished) []orderly.Option {
	if !f.enabled() {
		return nil
	}
	counted := orderly.DeadLetterFunc(func(ctx context.Context, r *orderly.Record, dl orderly.DeadLetter) error {
		if err := sink.DeadLetter(ctx, r, dl); err != nil {
			return err
		}
		f.deadLettered.Add(1)
		fin.add(r.Partition, r.Offset)
		return nil
	})
	return []orderly.Option{
		orderly.WithRetry(orderly.RetryPolicy{MaxAttempts: 4, InitialDelay: 5 * time.Millisecond, MaxDelay: 100 * time.Millisecond}),
		orderly.WithDeadLetter(namedSink{counted, sink}),
		orderly.WithKeyParking(orderly.ParkUntilReleased),
	}
}

// namedSink keeps the inner sink's topic name visible to hooks (tracing
// names the dead-letter span after it).
type namedSink struct {
	orderly.DeadLetterSink
	inner orderly.DeadLetterSink
}

func (s namedSink) DeadLetterTopic(r *orderly.Record) string {
	if n, ok := s.inner.(orderly.DeadLetterTopicNamer); ok {
		return n.DeadLetterTopic(r)
	}
	return ""
}

// expected returns how many events should end in the dead-letter sink
// (each poisoned order's first poison event and every event after it) and
// how many orders that leaves incomplete.
func (f *faults) expected(events []event) (deadLettered int64, orders int) {
	parked := map[string]bool{}
	for _, ev := range events {
		if parked[ev.order] || f.isPoison(ev) {
			if !parked[ev.order] {
				parked[ev.order] = true
				orders++
			}
			deadLettered++
		}
	}
	return deadLettered, orders
}

// memorySink is the dead-letter sink of the in-memory backend.
type memorySink struct {
	mu      sync.Mutex
	records []*orderly.Record
}

func (s *memorySink) DeadLetter(_ context.Context, r *orderly.Record, _ orderly.DeadLetter) error {
	s.mu.Lock()
	s.records = append(s.records, r)
	s.mu.Unlock()
	return nil
}
