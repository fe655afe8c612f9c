// Command orders is orderly's main demo: the order-management pattern of
// decode → handle → interpret, with order events keyed by order id.
//
// It produces a stream of order events (Created, Paid, Shipped, Delivered,
// or Cancelled) over several partitions, consumes them with orderly while
// showing live progress, and ends with a summary that checks every order's
// events were applied in order.
//
//	go run ./examples/orders
//	go run ./examples/orders -records 200000 -keys 5000 -latency 2ms -concurrency 200
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
)

type options struct {
	records     int
	partitions  int
	keys        int
	latency     time.Duration
	mode        string
	concurrency int
	quiet       bool
}

func main() {
	var o options
	flag.IntVar(&o.records, "records", 50000, "order events to produce")
	flag.IntVar(&o.partitions, "partitions", 8, "partitions of the orders topic")
	flag.IntVar(&o.keys, "keys", 2000, "distinct orders (keys)")
	flag.DurationVar(&o.latency, "latency", 2*time.Millisecond, "simulated I/O latency of handle (uniform 0..2×latency)")
	flag.StringVar(&o.mode, "mode", "key", "ordering: key, serial or unordered")
	flag.IntVar(&o.concurrency, "concurrency", 256, "handler calls in flight at most")
	flag.BoolVar(&o.quiet, "quiet", false, "no live progress")
	flag.Parse()
	if err := run(context.Background(), o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(1)
	}
}

// The life of an order. Cancelled ends it early.
var lifecycle = []string{"Created", "Paid", "Shipped", "Delivered"}

// event is the decoded form of a record: "order,seq,kind".
type event struct {
	order string
	seq   int
	kind  string
}

func decode(r *orderly.Record) (event, error) {
	parts := strings.Split(string(r.Value), ",")
	if len(parts) != 3 {
		return event{}, fmt.Errorf("malformed event %q", r.Value)
	}
	seq, err := strconv.Atoi(parts[1])
	if err != nil {
		return event{}, fmt.Errorf("malformed sequence in %q", r.Value)
	}
	return event{order: parts[0], seq: seq, kind: parts[2]}, nil
}

// ledger is the "database" that interpret writes to: each order's applied
// events, and how many arrived out of order.
type ledger struct {
	mu         sync.Mutex
	next       map[string]int // order -> next expected sequence
	applied    atomic.Int64
	outOfOrder atomic.Int64
}

func (l *ledger) interpret(ev event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.next[ev.order] != ev.seq {
		l.outOfOrder.Add(1)
	}
	l.next[ev.order] = ev.seq + 1
	l.applied.Add(1)
}

func produce(log *memory.Log, o options) (orders int, err error) {
	rng := rand.New(rand.NewPCG(1, 2))
	seq := make([]int, o.keys)
	done := make([]bool, o.keys)
	gen := make([]int, o.keys)
	for i := 0; i < o.records; i++ {
		k := rng.IntN(o.keys)
		if done[k] { // a finished order: start a new one under a new id
			seq[k], done[k] = 0, false
			gen[k]++
		}
		order := fmt.Sprintf("order-%d-%d", k, gen[k])
		kind := lifecycle[seq[k]]
		if seq[k] > 0 && rng.IntN(10) == 0 {
			kind = "Cancelled"
		}
		if seq[k] == 0 {
			orders++
		}
		if _, _, err := log.Produce("orders", []byte(order), []byte(fmt.Sprintf("%s,%d,%s", order, seq[k], kind))); err != nil {
			return 0, err
		}
		seq[k]++
		if kind == "Cancelled" || seq[k] == len(lifecycle) {
			done[k] = true
		}
	}
	return orders, nil
}

func run(ctx context.Context, o options, out io.Writer) error {
	var ordering orderly.Ordering
	switch o.mode {
	case "key":
		ordering = orderly.ByKey()
	case "serial":
		ordering = orderly.Serial()
	case "unordered":
		ordering = orderly.Unordered()
	default:
		return fmt.Errorf("unknown -mode %q (key, serial or unordered)", o.mode)
	}
	log := memory.NewLog()
	if err := log.CreateTopic("orders", o.partitions); err != nil {
		return err
	}
	orders, err := produce(log, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "produced %d events of %d orders over %d partitions\n", o.records, orders, o.partitions)

	led := &ledger{next: map[string]int{}}
	var decodeErrors atomic.Int64
	handle := func(ctx context.Context, r *orderly.Record) error {
		ev, err := decode(r) // decode
		if err != nil {
			decodeErrors.Add(1)
			return err
		}
		if o.latency > 0 { // handle: the simulated call to a downstream service
			select {
			case <-time.After(rand.N(2 * o.latency)):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		led.interpret(ev) // interpret
		return nil
	}
	eng, err := orderly.New(log.Member("order-service", []string{"orders"}), orderly.HandlerFunc(handle),
		orderly.WithOrdering(ordering),
		orderly.WithMaxConcurrency(o.concurrency),
		orderly.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	start := time.Now()
	go func() { runErr <- eng.Run(ctx) }()

	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	last, lastAt := int64(0), start
	for led.applied.Load()+decodeErrors.Load() < int64(o.records) {
		select {
		case err := <-runErr:
			return fmt.Errorf("engine stopped early: %w", err)
		case now := <-tick.C:
			if o.quiet || now.Sub(lastAt) < 250*time.Millisecond {
				continue
			}
			n := led.applied.Load()
			s := eng.Stats()
			var lag int64
			for _, p := range s.Partitions {
				end, _ := log.EndOffset(p.Topic, p.Partition)
				lag += end - max(p.Committed, 0)
			}
			fmt.Fprintf(out, "%7.2fs  handled %7d  %8.0f rec/s  in flight %4d  committed lag %7d  paused %d/%d\n",
				now.Sub(start).Seconds(), n, float64(n-last)/now.Sub(lastAt).Seconds(), s.InFlight, lag, s.PausedTotal, len(s.Partitions))
			last, lastAt = n, now
		}
	}
	elapsed := time.Since(start)
	cancel()
	if err := <-runErr; err != nil {
		return err
	}

	var committed int64
	for p := range int32(o.partitions) {
		pos, _ := log.Committed("order-service", "orders", p)
		committed += max(pos.Offset, 0)
	}
	fmt.Fprintf(out, "\nhandled %d events in %.2fs (%.0f events/s), committed %d of %d\n",
		led.applied.Load(), elapsed.Seconds(), float64(led.applied.Load())/elapsed.Seconds(), committed, o.records)
	fmt.Fprintf(out, "orders: %d, events applied out of order: %d, decode errors: %d\n", orders, led.outOfOrder.Load(), decodeErrors.Load())
	switch {
	case committed != int64(o.records):
		return fmt.Errorf("committed %d of %d events", committed, o.records)
	case o.mode != "unordered" && led.outOfOrder.Load() > 0:
		return errors.New("events applied out of order")
	}
	if o.mode != "unordered" {
		fmt.Fprintln(out, "every order's events were applied in order")
	}
	return nil
}
