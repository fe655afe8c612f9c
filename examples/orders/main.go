// Command orders is orderly's main demo: the order-management pattern of
// decode → handle → interpret (orderly.Pipeline), with order events keyed
// by order id.
//
// By default it starts an embedded Kafka cluster in the process (kfake,
// which speaks the Kafka protocol over loopback TCP), produces order events
// (Created, Paid, Shipped, Delivered or Cancelled, with an event-type
// header) over several partitions with a Kafka adapter's producer, consumes
// them with orderly through the same adapter while showing live progress,
// and ends with a summary that checks every order's events were applied in
// order and every offset was committed. The adapter is
// adapters/orderlysarama (IBM/sarama) unless -client franz picks
// adapters/orderlykgo (franz-go's kgo): the engine, its options and the
// summary are the same.
//
//	go run ./examples/orders
//	go run ./examples/orders -client franz            # through franz-go
//	go run ./examples/orders -records 200000 -keys 5000 -latency 2ms -concurrency 200
//	go run ./examples/orders -brokers localhost:9092   # a real cluster
//	go run ./examples/orders -source memory           # the in-memory log instead of Kafka
//	go run ./examples/orders -http 127.0.0.1:8080 -hold 1m -poison 0.02 -flaky 0.1
//
// With -http the demo serves the engine's inspection (package inspect):
// the live page at /orderly/, which names for every partition the record
// holding its watermark and why, and the snapshot at /orderly/state.json;
// -release adds the buttons that release parked keys. -hold keeps the
// engine running for that long after the last record, so that there is
// something to look at.
//
// On a real cluster the topic "orders" is created if missing, and each run
// consumes with a new group (orders-demo-<time>, unless -group says
// otherwise) that starts at the end of every partition: events are produced
// once the group holds them all.
//
// Ctrl-C (SIGINT) or SIGTERM stops the demo cleanly: producing stops, the
// engine drains the events in flight and commits, and the demo prints the
// group's committed offset per partition, read back from the cluster (or
// the log), checks that no commit passed an event that was not finished,
// and exits with status 0. A second signal ends it at once.
//
// With OTEL_EXPORTER_OTLP_ENDPOINT set (e.g. http://localhost:4318 for
// Jaeger), traces and metrics are exported over OTLP/HTTP: each event is
// sent in a producer span whose context travels in the record's headers, so
// one trace runs from the producer to the engine's span and the handler.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/tracing"
	"github.com/orderly-go/orderly/tracing/otlpsetup"
)

type options struct {
	source      string // kafka or memory
	client      string // kafka's client: sarama (also when empty) or franz
	brokers     string // comma list; empty: embedded kfake cluster
	group       string
	records     int
	partitions  int
	keys        int
	latency     time.Duration
	mode        string
	concurrency int
	producers   int
	quiet       bool
	flaky       float64       // share of events whose first handle fails transiently
	poison      float64       // share of events that fail for good (dead-lettered)
	httpAddr    string        // where to serve the inspection; empty: nowhere
	release     bool          // the inspection may release parked keys
	hold        time.Duration // keep the engine running this long after the last record
}

func main() {
	var o options
	flag.StringVar(&o.source, "source", "kafka", "kafka (embedded cluster, or -brokers) or memory (adapters/memory)")
	flag.StringVar(&o.client, "client", "sarama", "Kafka client: sarama (adapters/orderlysarama) or franz (adapters/orderlykgo, franz-go)")
	flag.StringVar(&o.brokers, "brokers", "", "comma-separated Kafka brokers of a real cluster; empty starts an embedded one")
	flag.StringVar(&o.group, "group", "", "consumer group (default order-service; orders-demo-<time> with -brokers)")
	flag.IntVar(&o.records, "records", 20000, "order events to produce")
	flag.IntVar(&o.partitions, "partitions", 8, "partitions of the orders topic")
	flag.IntVar(&o.keys, "keys", 1000, "orders in progress at once (distinct keys at a time)")
	flag.DurationVar(&o.latency, "latency", time.Millisecond, "simulated I/O latency of handle (uniform 0..2×latency)")
	flag.StringVar(&o.mode, "mode", "key", "ordering: key, serial or unordered")
	flag.IntVar(&o.concurrency, "concurrency", 256, "handler calls in flight at most")
	flag.IntVar(&o.producers, "producers", 32, "producing goroutines (each owns a share of the orders)")
	flag.BoolVar(&o.quiet, "quiet", false, "no live progress")
	flag.Float64Var(&o.flaky, "flaky", 0, "share of events whose first handle attempt fails (retried with backoff)")
	flag.Float64Var(&o.poison, "poison", 0, "share of events that fail for good: dead-lettered, with their order's later events parked after them")
	flag.StringVar(&o.httpAddr, "http", "", "serve the engine's inspection at this address: the page at /orderly/, the snapshot at /orderly/state.json")
	flag.BoolVar(&o.release, "release", false, "with -http: the page may release parked keys (POST /orderly/partitions/…/release)")
	flag.DurationVar(&o.hold, "hold", 0, "keep the engine running this long after the last record (to look at -http's page)")
	flag.Parse()
	// SIGINT (Ctrl-C) or SIGTERM ends ctx: the engine drains, commits and
	// the demo says what was committed. Signals then get their default
	// behaviour back, so a second one ends the program at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(1)
	}
}

func (o *options) validate() (orderly.Ordering, error) {
	switch {
	case o.records < 1, o.partitions < 1, o.keys < 1, o.concurrency < 1, o.producers < 1:
		return orderly.Ordering{}, errors.New("-records, -partitions, -keys, -concurrency and -producers must be ≥ 1")
	case !(o.flaky >= 0 && o.flaky <= 1) || !(o.poison >= 0 && o.poison <= 1):
		return orderly.Ordering{}, errors.New("-flaky and -poison are shares in [0, 1]")
	case o.poison > 0 && o.mode != "key":
		return orderly.Ordering{}, errors.New("-poison parks orders after a failed event: it needs -mode key")
	case o.source != "kafka" && o.source != "memory":
		return orderly.Ordering{}, fmt.Errorf("unknown -source %q (kafka or memory)", o.source)
	case o.source == "memory" && o.brokers != "":
		return orderly.Ordering{}, errors.New("-brokers needs -source kafka")
	case o.client != "" && o.client != "sarama" && o.client != "franz":
		return orderly.Ordering{}, fmt.Errorf("unknown -client %q (sarama or franz)", o.client)
	case o.source == "memory" && o.client == "franz":
		return orderly.Ordering{}, errors.New("-client franz needs -source kafka")
	case o.hold < 0:
		return orderly.Ordering{}, errors.New("-hold must not be negative")
	case o.release && o.httpAddr == "":
		return orderly.Ordering{}, errors.New("-release needs -http")
	}
	if o.client == "" {
		o.client = "sarama"
	}
	if o.group == "" {
		o.group = "order-service"
		if o.brokers != "" {
			o.group = "orders-demo-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		}
	}
	switch o.mode {
	case "key":
		return orderly.ByKey(), nil
	case "serial":
		return orderly.Serial(), nil
	case "unordered":
		return orderly.Unordered(), nil
	}
	return orderly.Ordering{}, fmt.Errorf("unknown -mode %q (key, serial or unordered)", o.mode)
}

func run(ctx context.Context, o options, out io.Writer) error {
	ordering, err := o.validate()
	if err != nil {
		return err
	}
	// OTLP export when OTEL_EXPORTER_OTLP_ENDPOINT (or the per-signal
	// variables) say where to; otherwise nothing is exported.
	shutdownTracing, err := otlpsetup.FromEnv(ctx, "orders")
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer func() { _ = shutdownTracing(context.Background()) }()

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var b backend
	if o.source == "memory" {
		b, err = newMemoryBackend(o)
	} else {
		b, err = newKafkaBackend(o, log)
	}
	if err != nil {
		return err
	}
	defer b.close()
	partitions := b.partitionCount()

	events, perOrder := generate(o.records, o.keys, 1)
	led := newLedger()
	f := &faults{flaky: o.flaky, poison: o.poison}
	var decodeErrors atomic.Int64
	pipeline := orderly.Pipeline[event, event]{
		Decode: func(r *orderly.Record) (event, error) { // record → event
			ev, err := decode(r)
			if err != nil {
				decodeErrors.Add(1)
			}
			return ev, err
		},
		Handle:    f.wrap(simulateIO(o.latency)), // the call to a downstream service
		Interpret: led.interpret,                 // apply the event to the order
	}
	fin := newFinished(partitions)
	handler := pipeline.Handler()
	opts := append([]orderly.Option{
		orderly.WithOrdering(ordering),
		orderly.WithMaxConcurrency(o.concurrency),
		orderly.WithLogger(log),
		orderly.WithHooks(tracing.New()), // spans and metrics; exported only when otlpsetup.FromEnv found somewhere to
	}, f.options(b.deadLetterSink(), fin)...)
	eng, err := orderly.New(b.source(), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		err := handler.Handle(ctx, r)
		if err == nil {
			fin.add(r.Partition, r.Offset)
		}
		return err
	}), opts...)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "orders: %d events of %d orders over %d partitions of %q, on %s; mode %s, concurrency %d, latency 0..%v\n",
		o.records, len(perOrder), partitions, topic, b.describe(), o.mode, o.concurrency, 2*o.latency)
	if o.httpAddr != "" {
		stopServing, err := serveInspection(eng, o, out)
		if err != nil {
			return err
		}
		defer stopServing()
	}

	// The engine runs until ctx is done (an interrupt: main's ctx ends on
	// SIGINT or SIGTERM) or every event is through; then Run drains what
	// is in flight, commits and returns.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var runErr error
	ran := make(chan struct{}) // closed once Run returned runErr
	t0 := time.Now()
	// Owned by run, which waits for it (ran) before it returns.
	go func() { runErr = eng.Run(runCtx); close(ran) }()
	defer func() { cancel(); <-ran }()
	offsets := newPartitionOffsets(partitions)
	var produceErr error
	produced := make(chan struct{}) // closed once the producers returned produceErr
	stopped := func() error {
		<-produced // the producers stop with ctx
		return interrupted(ctx, out, b, o, t0, ran, &runErr, led, offsets, fin)
	}

	// Produce once the group holds every partition: on a real cluster it
	// starts at each partition's end, and the timing below starts here.
	if err := waitForPartitions(ctx, eng, partitions, ran, &runErr); err != nil {
		if ctx.Err() != nil {
			close(produced) // nothing was produced
			return stopped()
		}
		return err
	}
	start := time.Now()
	fmt.Fprintf(out, "joined the group %q and got all %d partitions in %.2fs\n", o.group, partitions, start.Sub(t0).Seconds())
	// Owned by run, which waits for it (produced) before it returns.
	go func() {
		defer close(produced)
		produceErr = produce(ctx, b, events, o.producers, offsets)
	}()
	defer func() { <-produced }()

	p := progress{out: out, eng: eng, offsets: offsets, led: led, start: start, quiet: o.quiet}
	if err := p.follow(ctx, int64(o.records), produced, &produceErr, ran, &runErr, func() int64 { return decodeErrors.Load() + f.deadLettered.Load() }); err != nil {
		if ctx.Err() != nil {
			return stopped()
		}
		return err
	}
	elapsed := time.Since(start)
	if err := hold(ctx, o.hold, out, ran, &runErr); err != nil {
		return err
	}
	cancel()
	<-ran
	if runErr != nil {
		return fmt.Errorf("engine: %w", runErr)
	}
	committed, err := b.committed(context.WithoutCancel(ctx))
	if err != nil {
		return fmt.Errorf("reading the committed offsets: %w", err)
	}
	first, end, _ := offsets.snapshot()
	commits := commitReport{group: o.group, committed: committed, first: first, end: end, fin: fin}
	wantDead, wantIncomplete := f.expected(events)
	return summarize(out, o, summary{
		elapsed: elapsed, led: led, perOrder: perOrder, offsets: offsets,
		commits: commits, decodeErrors: decodeErrors.Load(),
		stats: eng.Stats(), deadLettered: f.deadLettered.Load(), wantDead: wantDead, wantIncomplete: wantIncomplete,
	})
}

// interrupted ends a run stopped by ctx (an interrupt) before every event
// was through: the engine drains what is in flight and commits (Run
// returns, closing ran), then it prints what the group committed per
// partition, read back from where the events live, and checks that no
// commit passed an event that was not finished.
func interrupted(ctx context.Context, out io.Writer, b backend, o options, t0 time.Time, ran <-chan struct{}, runErr *error,
	led *ledger, offsets *partitionOffsets, fin *finished) error {
	fmt.Fprintln(out, "\ninterrupted: draining the events in flight and committing (interrupt again to exit at once)")
	stopping := time.Now()
	<-ran
	if *runErr != nil {
		return fmt.Errorf("engine: %w", *runErr)
	}
	fmt.Fprintf(out, "drained and committed in %.2fs\n", time.Since(stopping).Seconds())
	committed, err := b.committed(context.WithoutCancel(ctx))
	if err != nil {
		return fmt.Errorf("reading the committed offsets: %w", err)
	}
	first, end, sent := offsets.snapshot()
	commits := commitReport{group: o.group, committed: committed, first: first, end: end, fin: fin}
	commits.print(out)
	if err := commits.check(); err != nil {
		return err
	}
	fmt.Fprintf(out, "stopped after %.2fs: %d of %d events produced, %d handled, %d committed; every committed offset covers finished events only\n",
		time.Since(t0).Seconds(), sent, o.records, led.applied.Load(), commits.events())
	return nil
}

// waitForPartitions waits until the engine holds every partition, or ctx
// is done.
func waitForPartitions(ctx context.Context, eng *orderly.Engine, partitions int, ran <-chan struct{}, runErr *error) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	for len(eng.Stats().Partitions) < partitions {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ran:
			return fmt.Errorf("engine stopped before it got its partitions: %v", *runErr)
		case <-timeout.C:
			return fmt.Errorf("the group got %d of %d partitions within a minute", len(eng.Stats().Partitions), partitions)
		case <-tick.C:
		}
	}
	return nil
}

type summary struct {
	elapsed      time.Duration
	led          *ledger
	perOrder     map[string]int
	offsets      *partitionOffsets
	commits      commitReport
	decodeErrors int64
	stats        orderly.Stats
	deadLettered int64 // events written to the dead-letter sink
	wantDead     int64 // events that should have been
	// wantIncomplete is the orders that should not be applied completely:
	// those with a poison event.
	wantIncomplete int
}

// summarize prints the summary and returns an error when the run did not
// do what it promises: every event applied (in order, unless unordered)
// and every produced offset committed.
func summarize(out io.Writer, o options, s summary) error {
	first, end, _ := s.offsets.snapshot()
	var produced int64
	short := 0
	for p := range end {
		if first[p] < 0 {
			continue // no event went to this partition
		}
		produced += end[p] - first[p]
		if p >= len(s.commits.committed) || s.commits.committed[p] != end[p] {
			short++
		}
	}
	committedEvents := s.commits.events()
	applied := s.led.applied.Load()
	fmt.Fprintf(out, "\nhandled %d events in %.2fs (%.0f events/s), committed %d of %d\n",
		applied, s.elapsed.Seconds(), float64(applied)/s.elapsed.Seconds(), committedEvents, produced)
	fmt.Fprintf(out, "events: %s\n", s.led.kindCounts())
	incomplete := s.led.incomplete(s.perOrder)
	fmt.Fprintf(out, "orders: %d, with every event applied: %d; events applied out of order: %d; decode errors: %d\n",
		len(s.perOrder), len(s.perOrder)-incomplete, s.led.outOfOrder.Load(), s.decodeErrors)
	if o.flaky > 0 || o.poison > 0 {
		fmt.Fprintf(out, "failures: %d attempts retried; %d events dead-lettered (expected %d), %d orders parked after a poison event\n",
			s.stats.AttemptsRetried, s.deadLettered, s.wantDead, s.wantIncomplete)
	}
	s.commits.print(out)
	if err := s.commits.check(); err != nil {
		return err
	}
	switch {
	case short > 0:
		return fmt.Errorf("%d partitions not committed to their end: committed %d of %d events", short, committedEvents, produced)
	case s.decodeErrors > 0:
		return fmt.Errorf("%d events could not be decoded", s.decodeErrors)
	case o.mode != "unordered" && s.led.outOfOrder.Load() > 0:
		return errors.New("events applied out of order")
	case s.deadLettered != s.wantDead:
		return fmt.Errorf("%d events dead-lettered, expected %d", s.deadLettered, s.wantDead)
	case o.mode != "unordered" && incomplete != s.wantIncomplete:
		return fmt.Errorf("%d orders were not applied completely, expected %d (those with a poison event)", incomplete, s.wantIncomplete)
	}
	if o.mode != "unordered" {
		fmt.Fprintln(out, "every order's events were applied in order")
	}
	return nil
}
