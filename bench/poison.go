package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/orderly-go/orderly/bench/internal/report"
)

const (
	poisonPartitions = 4
	poisonKeys       = 100
	poisonLatency    = time.Millisecond
	poisonPercent    = 1 // records that fail permanently, in percent
)

// The poison table shows the healthy records in the other_* columns.
func init() {
	columns["poison"] = []column{colMode, colKeys, colParts, colRecs,
		{Head: "healthy_records", Cell: colOther.Cell}, {Head: "healthy_seconds", Cell: colOSecs.Cell},
		{Head: "healthy_records/s", Cell: colORate.Cell},
		colSecs, colLimit, colEff, colRatio, colNote}
}

// poisonConfig is how the failed records are disposed of.
type poisonConfig struct {
	name string
	opts func(failed *atomic.Int64) []orderly.Option
}

var poisonConfigs = []poisonConfig{
	{"dead-letter sink", func(failed *atomic.Int64) []orderly.Option {
		return []orderly.Option{
			// Permanent errors skip the retries this policy would make.
			orderly.WithRetry(orderly.RetryPolicy{InitialDelay: 10 * time.Millisecond, MaxAttempts: 5}),
			orderly.WithDeadLetter(orderly.DeadLetterFunc(func(context.Context, *orderly.Record, orderly.DeadLetter) error {
				failed.Add(1)
				return nil
			})),
		}
	}},
	{"recovery function", func(failed *atomic.Int64) []orderly.Option {
		return []orderly.Option{
			orderly.WithFallback(func(context.Context, *orderly.Record, error) error {
				failed.Add(1)
				return nil
			}),
		}
	}},
}

var errPoison = errors.New("poison record")

// poisonLogger keeps engine errors only: each dead letter is logged as a
// warning, 200 lines a run.
var poisonLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

// pickPoison chooses poisonPercent % of n records (rounded down), spread
// at random with the seed.
func pickPoison(n int, seed uint64) []bool {
	poison := make([]bool, n)
	rng := rand.New(rand.NewPCG(seed, 0x9015))
	for _, i := range rng.Perm(n)[:n*poisonPercent/100] {
		poison[i] = true
	}
	return poison
}

// runPoison compares the throughput of the healthy records when 1 % of
// the records fail permanently against the same run where they succeed
// (the same records, keys, partitions and handler latency).
func runPoison(o *options, out *printer) error {
	n := o.recordsOr(20000)
	poison := pickPoison(n, o.seed)
	for _, cfg := range poisonConfigs {
		clean, err := runPoisonRow(o, poison, false, cfg)
		if err != nil {
			return fmt.Errorf("poison without failures, %s: %w", cfg.name, err)
		}
		bad, err := runPoisonRow(o, poison, true, cfg)
		if err != nil {
			return fmt.Errorf("poison with failures, %s: %w", cfg.name, err)
		}
		bad.Ratio = bad.OtherRecordsPerSec / clean.OtherRecordsPerSec
		out.add(clean)
		out.add(bad)
	}
	out.flush(fmt.Sprintf("poison: %d keys, %d partitions, handler sleeps %v, %d%% of records fail permanently, concurrency %d; ratio = healthy records/s with failures ÷ without",
		poisonKeys, poisonPartitions, poisonLatency, poisonPercent, o.concurrency))
	return nil
}

func runPoisonRow(o *options, poison []bool, fail bool, cfg poisonConfig) (Result, error) {
	n := len(poison)
	log := memory.NewLog()
	if err := log.CreateTopic("t", poisonPartitions); err != nil {
		return Result{}, err
	}
	healthy, poisoned := 0, 0
	for i := range n {
		if poison[i] {
			poisoned++
		} else {
			healthy++
		}
		if _, _, err := log.Produce("t", []byte("k"+strconv.Itoa(i%poisonKeys)), indexValue(i)); err != nil {
			return Result{}, err
		}
	}
	measured := make([]time.Duration, n)
	tr := newTracker(n)
	var healthyDone, healthyLast, failed atomic.Int64
	h := orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		tr.begin()
		i := valueIndex(r)
		start := time.Now()
		time.Sleep(poisonLatency)
		measured[i] = time.Since(start)
		if !poison[i] && healthyDone.Add(1) == int64(healthy) {
			healthyLast.Store(int64(time.Since(tr.t0)))
		}
		tr.end()
		if fail && poison[i] {
			return orderly.Permanent(errPoison)
		}
		return nil
	})
	opts := append([]orderly.Option{orderly.WithOrdering(orderly.ByKey()), orderly.WithMaxConcurrency(o.concurrency)}, cfg.opts(&failed)...)
	opts = append(opts, orderly.WithLogger(poisonLogger))
	if err := runEngine(log.Member("bench", []string{"t"}), h, tr, o.timeout, nil, opts...); err != nil {
		return Result{}, err
	}
	// Run has returned: every failed record's disposal is done.
	want := 0
	if fail {
		want = poisoned
	}
	if got := failed.Load(); got != int64(want) {
		return Result{}, fmt.Errorf("%d records reached the %s, want %d", got, cfg.name, want)
	}
	keyOf := func(i int) int { return i % poisonKeys } // one key id, one partition
	lim, total := report.Limit(measured, keyOf, o.concurrency)
	nominal := make([]time.Duration, n)
	for i := range nominal {
		nominal[i] = poisonLatency
	}
	nom, _ := report.Limit(nominal, keyOf, o.concurrency)
	secs := tr.seconds()
	healthySecs := time.Duration(healthyLast.Load() - tr.first.Load()).Seconds()
	note := "no failures; " + cfg.name
	if fail {
		note = fmt.Sprintf("%d failed (%d%%); %s", poisoned, poisonPercent, cfg.name)
	}
	return Result{
		Scenario: "poison", Mode: "key", Keys: poisonKeys, Partitions: poisonPartitions, Records: n,
		Concurrency: o.concurrency, Seconds: secs, RecordsPerSec: float64(n) / secs, StartupSeconds: tr.startup(),
		LimitSeconds: lim.Seconds(), NominalLimitSeconds: nom.Seconds(), Efficiency: lim.Seconds() / secs, HandlerSeconds: total.Seconds(),
		OtherRecords: healthy, OtherSeconds: healthySecs, OtherRecordsPerSec: float64(healthy) / healthySecs,
		Note: note,
	}, nil
}
