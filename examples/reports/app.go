package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/orderlysarama"
	"github.com/orderly-go/orderly/tracing"
)

// config is everything the service is made of; main fills it from flags,
// tests by hand. defaultConfig gives the values main's flags default to.
type config struct {
	brokers     []string // Kafka brokers
	fastKafka   bool     // short fetch waits and heartbeats: for the embedded cluster
	dbPath      string   // the SQLite file of the status store
	groupPrefix string   // consumer groups are <prefix>-<step>

	// wipLimits is, per plan, how many reports the orchestrator lets be in
	// progress at once (from start until their outcome comes back).
	wipLimits map[plan]int

	workers        int           // generate step: reports generated at once
	genMedian      time.Duration // generate step: median simulated work
	genSpread      float64       // generate step: σ of the log-normal work time
	sendLatency    time.Duration // send step: simulated delivery time (uniform 0..2×)
	flaky          float64       // share of generate attempts that fail (retried)
	poison         float64       // share of reports whose generation always fails
	maxAttempts    int           // generate attempts before a report fails for good
	retryDelay     time.Duration // generate: the first retry's backoff (doubling)
	webhookSecret  []byte        // HMAC key of webhook signatures
	webhookTries   int           // webhook delivery attempts before giving up
	webhookDelay   time.Duration // webhook: the first retry's backoff (doubling, ≤ 1 min)
	webhookTimeout time.Duration // webhook: one attempt's deadline
	drainTimeout   time.Duration // shutdown: running handlers' grace period
	statsWindow    time.Duration // latency figures cover reports finished this recently

	// generateFault, if set, decides whether a generate attempt fails
	// (instead of flaky and poison): tests inject failures with it.
	generateFault func(ctx context.Context, r request, attempt int) error
	// tracerProvider, if set, replaces the global one (tests).
	tracerProvider trace.TracerProvider
	// webhookClient, if set, sends webhooks (tests); default a plain client.
	webhookClient *http.Client
	log           *slog.Logger
}

func defaultConfig() config {
	return config{
		groupPrefix:    "reports",
		wipLimits:      map[plan]int{planPaid: 8, planFree: 4, planCron: 2},
		workers:        16,
		genMedian:      time.Second,
		genSpread:      0.5,
		sendLatency:    100 * time.Millisecond,
		flaky:          0.05,
		poison:         0.01,
		maxAttempts:    4,
		retryDelay:     200 * time.Millisecond,
		webhookTries:   8,
		webhookDelay:   500 * time.Millisecond,
		webhookTimeout: 10 * time.Second,
		drainTimeout:   10 * time.Second,
		statsWindow:    5 * time.Minute,
	}
}

func (c *config) validate() error {
	var errs []error
	for _, p := range plans {
		if c.wipLimits[p] < 1 {
			errs = append(errs, fmt.Errorf("the WIP limit of %s must be ≥ 1", p))
		}
	}
	switch {
	case len(c.brokers) == 0:
		errs = append(errs, errors.New("no Kafka brokers"))
	case c.dbPath == "":
		errs = append(errs, errors.New("no database path"))
	}
	if c.workers < 1 || c.maxAttempts < 1 || c.webhookTries < 1 {
		errs = append(errs, errors.New("workers, generate attempts and webhook attempts must be ≥ 1"))
	}
	if c.genMedian < 0 || c.sendLatency < 0 || !(c.genSpread >= 0 && c.genSpread <= 3) {
		errs = append(errs, errors.New("latencies must be ≥ 0 and the spread in [0, 3]"))
	}
	if !(c.flaky >= 0 && c.flaky <= 1) || !(c.poison >= 0 && c.poison <= 1) {
		errs = append(errs, errors.New("-flaky and -poison are shares in [0, 1]"))
	}
	if c.retryDelay <= 0 || c.webhookDelay <= 0 || c.webhookTimeout <= 0 || c.drainTimeout <= 0 || c.statsWindow <= 0 {
		errs = append(errs, errors.New("retry delays, the webhook timeout, the drain timeout and the stats window must be > 0"))
	}
	if len(c.webhookSecret) == 0 {
		errs = append(errs, errors.New("no webhook secret"))
	}
	return errors.Join(errs...)
}

// app is the service: the HTTP API, the status store and the pipeline's
// steps, each an orderly engine over its own consumer group.
type app struct {
	cfg      config
	store    *store
	wip      *wip
	producer *orderlysarama.Producer
	tracer   trace.Tracer
	log      *slog.Logger
	steps    []*step
	webhooks *http.Client

	startedAt time.Time

	stopping chan struct{} // closed by beginStop: SSE streams end, WIP waits give up
	stopOnce sync.Once
}

// step is one stage of the pipeline: an engine reading one topic.
type step struct {
	name   string
	group  string // its consumer group
	topic  string
	engine *orderly.Engine
}

// newApp opens the store, connects the producer, builds every step's
// engine and counts the reports in progress (a restart's WIP). Nothing
// consumes until run.
func newApp(cfg config) (_ *app, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.NewTextHandler(discard{}, nil))
	}
	a := &app{cfg: cfg, log: cfg.log, wip: newWIP(cfg.wipLimits), stopping: make(chan struct{}),
		webhooks: cfg.webhookClient, startedAt: time.Now()}
	if a.webhooks == nil {
		a.webhooks = &http.Client{}
	}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	if a.store, err = openStore(cfg.dbPath); err != nil {
		return nil, err
	}
	tp := cfg.tracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	a.tracer = tp.Tracer("github.com/orderly-go/orderly/examples/reports")
	a.producer, err = orderlysarama.NewProducer(cfg.brokers, saramaConfig(cfg.fastKafka),
		orderlysarama.WithInject(func(ctx context.Context, h orderlysarama.ProducerHeaders) { tracing.Inject(ctx, h) }))
	if err != nil {
		return nil, err
	}
	held, err := a.store.holders(context.Background())
	if err != nil {
		return nil, fmt.Errorf("reading the reports in progress: %w", err)
	}
	for p, ids := range held {
		for _, id := range ids {
			a.wip.hold(p, id)
		}
	}
	if err := a.buildSteps(tp); err != nil {
		return nil, err
	}
	return a, nil
}

// unlimited retries for steps whose failures are the infrastructure's
// (the store, the producer): they wait for it to come back.
var infraRetry = orderly.RetryPolicy{MaxAttempts: orderly.UnlimitedAttempts, InitialDelay: 50 * time.Millisecond, MaxDelay: 5 * time.Second}

func (a *app) buildSteps(tp trace.TracerProvider) error {
	add := func(name, topic string, concurrency int, h orderly.Handler, opts ...orderly.Option) error {
		group := a.cfg.groupPrefix + "-" + name
		src, err := orderlysarama.NewSource(a.cfg.brokers, group, []string{topic},
			saramaConfig(a.cfg.fastKafka), orderlysarama.WithLogger(a.log))
		if err != nil {
			return err
		}
		dlq, err := orderlysarama.NewDeadLetterSink(a.producer)
		if err != nil {
			return err
		}
		base := []orderly.Option{
			orderly.WithOrdering(orderly.ByKey()), // the key is the report id
			orderly.WithMaxConcurrency(concurrency),
			orderly.WithLogger(a.log),
			orderly.WithHooks(tracing.New(tracing.WithTracerProvider(tp)), transactionHook{}),
			orderly.WithDrainTimeout(a.cfg.drainTimeout),
			orderly.WithRetry(infraRetry),
			orderly.WithDeadLetter(dlq),
		}
		eng, err := orderly.New(src, h, append(base, opts...)...)
		if err != nil {
			return fmt.Errorf("step %s: %w", name, err)
		}
		a.steps = append(a.steps, &step{name: name, group: group, topic: topic, engine: eng})
		return nil
	}
	errs := []error{add("triage", topicRequests, 32, a.triageHandler())}
	for _, p := range plans {
		// At most limit calls can hold a slot; as many more wait for one,
		// in order. A higher plan never waits for a lower one's calls.
		limit := a.cfg.wipLimits[p]
		errs = append(errs, add("orchestrator-p"+fmt.Sprint(p.priority()), p.topic(), 2*limit, a.startHandler(p)))
	}
	errs = append(errs, add("orchestrator-outcomes", topicOutcomes, 32, a.outcomeHandler()))
	genDLQ, err := orderlysarama.NewDeadLetterSink(a.producer)
	if err != nil {
		return err
	}
	errs = append(errs,
		add("generate", topicGenerate, a.cfg.workers, a.generateHandler(),
			orderly.WithRetry(orderly.RetryPolicy{MaxAttempts: a.cfg.maxAttempts, InitialDelay: a.cfg.retryDelay, MaxDelay: 30 * a.cfg.retryDelay}),
			orderly.WithDeadLetter(generateFailures{dlq: genDLQ, a: a})),
		add("send", topicSend, 32, a.sendHandler()),
		add("webhooks", topicWebhooks, 32, a.webhookHandler(),
			orderly.WithRetry(orderly.RetryPolicy{MaxAttempts: a.cfg.webhookTries, InitialDelay: a.cfg.webhookDelay, MaxDelay: time.Minute}),
			orderly.WithAttemptTimeout(a.cfg.webhookTimeout)),
	)
	return errors.Join(errs...)
}

// run consumes with every step until ctx is done, then lets each drain and
// commit, and returns their errors.
func (a *app) run(ctx context.Context) error {
	errs := make([]error, len(a.steps))
	var wg sync.WaitGroup
	for i, s := range a.steps {
		wg.Go(func() {
			if err := s.engine.Run(ctx); err != nil {
				errs[i] = fmt.Errorf("step %s: %w", s.name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ready reports whether every step's engine holds partitions of its topic:
// each group has been joined.
func (a *app) ready() bool {
	for _, s := range a.steps {
		if len(s.engine.Stats().Partitions) == 0 {
			return false
		}
	}
	return true
}

// beginStop ends the SSE streams and the orchestrator's waits for a slot
// (their records are read again after a restart). Call it before
// cancelling run's context so that shutdown does not wait for them.
func (a *app) beginStop() { a.stopOnce.Do(func() { close(a.stopping) }) }

// close releases the producer and the store; call it after run returned.
func (a *app) close() {
	a.beginStop()
	if a.producer != nil {
		_ = a.producer.Close()
	}
	if a.store != nil {
		_ = a.store.close()
	}
}

var errStopping = errors.New("the service is stopping")

// produce sends m to topic and returns once the broker has it (acks from
// every in-sync replica). ctx's span context goes into the headers.
func (a *app) produce(ctx context.Context, topic string, m message) error {
	key, value, headers := m.encode()
	_, _, err := a.producer.Produce(ctx, topic, key, value, headers...)
	if err != nil {
		return fmt.Errorf("produce %s to %s: %w", m.Type, topic, err)
	}
	return nil
}

// transactionHook puts each record's transaction id (the report id) on its
// span and the attempt number into its handler's context.
type transactionHook struct{}

type attemptKey struct{}

// attributeTransactionID is the span attribute of the report id.
const attributeTransactionID = "transaction.id"

func (transactionHook) OnAttemptStarted(ctx context.Context, r *orderly.Record, info orderly.RecordInfo) context.Context {
	if id, ok := r.Header(headerTransactionID); ok {
		trace.SpanFromContext(ctx).SetAttributes(attribute.String(attributeTransactionID, string(id)))
	}
	return context.WithValue(ctx, attemptKey{}, info.Attempt)
}

// attemptOf is the handler call's attempt number (from 1).
func attemptOf(ctx context.Context) int {
	if n, ok := ctx.Value(attemptKey{}).(int); ok && n > 0 {
		return n
	}
	return 1
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// logNormal draws a work time with median m and log-spread sigma, capped at
// 10 × m so that no draw is absurd.
func logNormal(m time.Duration, sigma float64) time.Duration {
	if m <= 0 {
		return 0
	}
	d := float64(m) * math.Exp(sigma*rand.NormFloat64())
	return time.Duration(min(d, 10*float64(m)))
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// reportStop prints, once the steps have stopped, what each step's group
// committed per partition of its topic, read back from the cluster, and
// the reports in the store by state.
func (a *app) reportStop(out io.Writer) error {
	commits, err := a.committed()
	if err != nil {
		return fmt.Errorf("reading the committed offsets: %w", err)
	}
	fmt.Fprintln(out, "committed offsets per partition (partition=offset; -1: nothing committed), read back from the cluster:")
	topicWidth, groupWidth := 0, 0
	for _, c := range commits {
		topicWidth, groupWidth = max(topicWidth, len(c.step.topic)), max(groupWidth, len(c.step.group))
	}
	for _, c := range commits {
		var b strings.Builder
		for p, o := range c.committed {
			fmt.Fprintf(&b, " %d=%d", p, o)
		}
		fmt.Fprintf(out, "  %-*s  group %-*s %s\n", topicWidth, c.step.topic, groupWidth, c.step.group, b.String())
	}
	counts, err := a.store.countByState(context.Background())
	if err != nil {
		return fmt.Errorf("counting the reports: %w", err)
	}
	byState := map[state]int{}
	total := 0
	for _, m := range counts {
		for st, n := range m {
			byState[st] += n
			total += n
		}
	}
	unfinished := total - byState[stateSent] - byState[stateFailed]
	fmt.Fprintf(out, "stopped: %d reports in the store: %d sent, %d failed, %d unfinished (they go on at the next start on the same -db)\n",
		total, byState[stateSent], byState[stateFailed], unfinished)
	return nil
}
