package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/orderly-go/orderly/tracing/otlpsetup"
)

// options are the command line: the service's config plus where it runs.
type options struct {
	addr       string
	brokers    string // comma list; empty: an embedded cluster
	partitions int
	db         string // empty: reports.db in a new temporary directory
	load       string
	secret     string
	verbose    bool
	cfg        config
}

func main() {
	o := options{cfg: defaultConfig()}
	wipPaid, wipFree, wipCron := o.cfg.wipLimits[planPaid], o.cfg.wipLimits[planFree], o.cfg.wipLimits[planCron]
	flag.StringVar(&o.addr, "addr", "localhost:8080", "HTTP address of the API and the page")
	flag.StringVar(&o.brokers, "brokers", "", "comma-separated Kafka brokers of a real cluster; empty starts an embedded one")
	flag.IntVar(&o.partitions, "partitions", 4, "partitions of each topic created (embedded cluster, or missing topics)")
	flag.StringVar(&o.db, "db", "", "SQLite file of the status store (default: reports.db in a new temporary directory)")
	flag.StringVar(&o.cfg.groupPrefix, "group", o.cfg.groupPrefix, "consumer groups are <group>-<step>")
	flag.IntVar(&wipPaid, "wip-paid", wipPaid, "WIP limit of paid reports (priority 0, the highest)")
	flag.IntVar(&wipFree, "wip-free", wipFree, "WIP limit of free reports (priority 1)")
	flag.IntVar(&wipCron, "wip-cron", wipCron, "WIP limit of cron reports (priority 2)")
	flag.IntVar(&o.cfg.workers, "workers", o.cfg.workers, "reports generated at once (the generate step's concurrency)")
	flag.DurationVar(&o.cfg.genMedian, "latency", o.cfg.genMedian, "median time to generate a report (log-normal)")
	flag.Float64Var(&o.cfg.genSpread, "spread", o.cfg.genSpread, "σ of the log-normal generate time (0: always -latency)")
	flag.DurationVar(&o.cfg.sendLatency, "send-latency", o.cfg.sendLatency, "mean time to send a report (uniform 0..2×)")
	flag.Float64Var(&o.cfg.flaky, "flaky", o.cfg.flaky, "share of generate attempts that fail (retried with backoff)")
	flag.Float64Var(&o.cfg.poison, "poison", o.cfg.poison, "share of reports whose generation always fails (dead-lettered, failed)")
	flag.IntVar(&o.cfg.maxAttempts, "max-attempts", o.cfg.maxAttempts, "generate attempts before a report fails for good")
	flag.DurationVar(&o.cfg.retryDelay, "retry-delay", o.cfg.retryDelay, "backoff before the first generate retry (doubles)")
	flag.StringVar(&o.load, "load", "", "load generator: reports per minute per plan, e.g. cron=200,free=50,paid=10")
	flag.StringVar(&o.secret, "webhook-secret", "", "HMAC key of webhook signatures (default $REPORTS_WEBHOOK_SECRET, else a random one, printed)")
	flag.IntVar(&o.cfg.webhookTries, "webhook-attempts", o.cfg.webhookTries, "webhook delivery attempts before giving up")
	flag.DurationVar(&o.cfg.statsWindow, "stats-window", o.cfg.statsWindow, "latency figures cover reports finished this recently")
	flag.BoolVar(&o.verbose, "v", false, "log at info level (default: warnings and errors)")
	flag.Parse()
	o.cfg.wipLimits = map[plan]int{planPaid: wipPaid, planFree: wipFree, planCron: wipCron}

	// SIGINT (Ctrl-C) or SIGTERM ends ctx: the service stops in order
	// (see run). Signals then get their default behaviour back, so a
	// second one ends the program at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	if err := run(ctx, o, os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "reports:", err)
		os.Exit(1)
	}
}

// run starts the service and serves until ctx is done, then shuts down in
// order: HTTP and streams, then the steps (which drain and commit), then
// it prints what each step's group committed, read back from the cluster,
// and the reports in the store by state; then the cluster stops. ready,
// if set, is called with the page's URL once every step has joined its
// group.
func run(ctx context.Context, o options, out io.Writer, ready func(url string)) error {
	spec, err := parseLoad(o.load)
	if err != nil {
		return err
	}
	if o.partitions < 1 {
		return errors.New("-partitions must be ≥ 1")
	}
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelInfo
	}
	cfg := o.cfg
	if cfg.log == nil {
		cfg.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	secretNote := ""
	switch {
	case o.secret != "":
		cfg.webhookSecret = []byte(o.secret)
	case os.Getenv("REPORTS_WEBHOOK_SECRET") != "":
		cfg.webhookSecret = []byte(os.Getenv("REPORTS_WEBHOOK_SECRET"))
	default:
		s := rand.Text()
		cfg.webhookSecret = []byte(s)
		secretNote = fmt.Sprintf("webhook secret (random, -webhook-secret to choose one): %s\n", s)
	}
	cfg.dbPath = o.db
	if cfg.dbPath == "" {
		dir, err := os.MkdirTemp("", "orderly-reports-")
		if err != nil {
			return err
		}
		cfg.dbPath = filepath.Join(dir, "reports.db")
	}
	// With OTEL_EXPORTER_OTLP_ENDPOINT set, traces (one per report, each
	// span with its transaction.id) and metrics are exported over OTLP.
	shutdownTracing, err := otlpsetup.FromEnv(ctx, "reports")
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer func() { _ = shutdownTracing(context.Background()) }()

	where := ""
	if o.brokers == "" {
		cluster, err := startEmbeddedCluster(o.partitions)
		if err != nil {
			return err
		}
		defer cluster.Close()
		cfg.brokers, cfg.fastKafka = cluster.ListenAddrs(), true
		where = "an embedded Kafka cluster (kfake) at " + strings.Join(cfg.brokers, ",")
	} else {
		cfg.brokers = strings.Split(o.brokers, ",")
		if err := ensureTopics(cfg.brokers, o.partitions, cfg.log); err != nil {
			return err
		}
		where = "Kafka at " + o.brokers
	}
	a, err := newApp(cfg)
	if err != nil {
		return err
	}
	defer a.close()
	if o.brokers == "" {
		// The embedded cluster starts empty: reports a previous run left
		// unfinished in the store go on from where they were.
		n, err := a.resumeUnfinished(ctx)
		if err != nil {
			return fmt.Errorf("resuming unfinished reports: %w", err)
		}
		if n > 0 {
			fmt.Fprintf(out, "resumed %d unfinished reports of a previous run from %s\n", n, cfg.dbPath)
		}
	}

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("%w (choose another address with -addr)", err)
	}
	srv := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	srv.RegisterOnShutdown(a.beginStop)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	// The steps run until shutdown below, not until ctx is done: they
	// must outlive the HTTP server, which produces to them.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var runErr error
	ran := make(chan struct{})
	go func() { runErr = a.run(runCtx); close(ran) }()

	url := "http://" + ln.Addr().String() + "/"
	fmt.Fprintf(out, "reports: steps on %s; status store %s\n%s", where, cfg.dbPath, secretNote)
	fmt.Fprintf(out, "WIP limits: paid %d, free %d, cron %d; load: %s\n",
		cfg.wipLimits[planPaid], cfg.wipLimits[planFree], cfg.wipLimits[planCron], spec)
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	loadDone := make(chan struct{})
	err = waitReady(ctx, a, ran)
	if err == nil {
		fmt.Fprintf(out, "open %s (Ctrl-C stops)\n", url)
		if ready != nil {
			ready(url)
		}
		go func() { a.generateLoad(loadCtx, spec); close(loadDone) }()
		select {
		case <-ctx.Done():
		case <-ran:
			err = errors.New("a step stopped")
		case serr := <-served:
			err = fmt.Errorf("http: %w", serr)
		}
	} else {
		close(loadDone)
	}
	fmt.Fprintln(out, "stopping: the API closes, then every step drains what is in flight and commits (interrupt again to exit at once)")
	stopping := time.Now()
	stopLoad()
	<-loadDone
	a.beginStop()
	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShutdown()
	_ = srv.Shutdown(shutdownCtx)
	cancel()
	<-ran
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = nil // stopped while starting: not a failure
	}
	if runErr == nil {
		fmt.Fprintf(out, "every step drained and committed in %.2fs\n", time.Since(stopping).Seconds())
	}
	return errors.Join(err, runErr, a.reportStop(out))
}

// waitReady waits until every step has joined its group.
func waitReady(ctx context.Context, a *app, ran <-chan struct{}) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	for !a.ready() {
		select {
		case <-ran:
			return errors.New("a step stopped before it joined its group")
		case <-timeout.C:
			return errors.New("the steps did not all join their groups within a minute")
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}
