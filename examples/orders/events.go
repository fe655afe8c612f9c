package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderly-go/orderly"
)

// The life of an order. Cancelled ends it early.
var lifecycle = []string{"Created", "Paid", "Shipped", "Delivered"}

// eventTypeHeader carries an event's kind, so that consumers can route on
// it without decoding the value.
const eventTypeHeader = "event-type"

// event is one order event: the record's key is the order id, its value
// "order,seq" and its event-type header the kind.
type event struct {
	order string
	seq   int // 0 for Created, then 1, 2, …
	kind  string
}

func (ev event) key() []byte   { return []byte(ev.order) }
func (ev event) value() []byte { return []byte(ev.order + "," + strconv.Itoa(ev.seq)) }
func (ev event) headers() []orderly.Header {
	return []orderly.Header{{Key: eventTypeHeader, Value: []byte(ev.kind)}}
}

// generate makes n events of orders drawn from keys order slots, seeded:
// each slot runs an order through its lifecycle (or cancels it), then
// starts a new order under a new id. It returns the events in production
// order and, per order, how many events it has.
func generate(n, keys int, seed uint64) ([]event, map[string]int) {
	rng := rand.New(rand.NewPCG(seed, 2))
	seq := make([]int, keys)
	done := make([]bool, keys)
	gen := make([]int, keys)
	events := make([]event, 0, n)
	perOrder := make(map[string]int)
	for range n {
		k := rng.IntN(keys)
		if done[k] { // a finished order: start a new one under a new id
			seq[k], done[k] = 0, false
			gen[k]++
		}
		ev := event{order: fmt.Sprintf("order-%d-%d", k, gen[k]), seq: seq[k], kind: lifecycle[seq[k]]}
		if seq[k] > 0 && rng.IntN(10) == 0 {
			ev.kind = "Cancelled"
		}
		events = append(events, ev)
		perOrder[ev.order]++
		seq[k]++
		if ev.kind == "Cancelled" || seq[k] == len(lifecycle) {
			done[k] = true
		}
	}
	return events, perOrder
}

// decode is the pipeline's first stage: record → event. It is pure; its
// errors are permanent.
func decode(r *orderly.Record) (event, error) {
	order, seqText, ok := strings.Cut(string(r.Value), ",")
	if !ok || order != string(r.Key) {
		return event{}, fmt.Errorf("malformed event %q (key %q)", r.Value, r.Key)
	}
	seq, err := strconv.Atoi(seqText)
	if err != nil {
		return event{}, fmt.Errorf("malformed sequence in %q", r.Value)
	}
	kind, ok := r.Header(eventTypeHeader)
	if !ok {
		return event{}, fmt.Errorf("event %q has no %s header", r.Value, eventTypeHeader)
	}
	return event{order: order, seq: seq, kind: string(kind)}, nil
}

// simulateIO is the pipeline's second stage: the call to a downstream
// service, which takes a uniform random 0..2×latency.
func simulateIO(latency time.Duration) func(context.Context, event) (event, error) {
	return func(ctx context.Context, ev event) (event, error) {
		if latency <= 0 {
			return ev, nil
		}
		t := time.NewTimer(rand.N(2 * latency))
		defer t.Stop()
		select {
		case <-t.C:
			return ev, nil
		case <-ctx.Done():
			return ev, ctx.Err()
		}
	}
}

// ledger is the "database" the pipeline's last stage (interpret) writes
// to: each order's next expected event, and what arrived out of order.
type ledger struct {
	mu         sync.Mutex
	next       map[string]int // order → next expected sequence
	kinds      map[string]int // event kind → events applied
	applied    atomic.Int64
	outOfOrder atomic.Int64
}

func newLedger() *ledger {
	return &ledger{next: make(map[string]int), kinds: make(map[string]int)}
}

func (l *ledger) interpret(_ context.Context, ev event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.next[ev.order] != ev.seq {
		l.outOfOrder.Add(1)
	}
	l.next[ev.order] = max(l.next[ev.order], ev.seq+1)
	l.kinds[ev.kind]++
	l.applied.Add(1)
	return nil
}

// incomplete counts the orders whose events were not all applied.
func (l *ledger) incomplete(perOrder map[string]int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for order, events := range perOrder {
		if l.next[order] != events {
			n++
		}
	}
	return n
}

func (l *ledger) kindCounts() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for i, k := range append(lifecycle[:len(lifecycle):len(lifecycle)], "Cancelled") {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, l.kinds[k])
	}
	return b.String()
}
