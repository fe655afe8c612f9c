package main

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/orderly-go/orderly/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// discardExporter is a span exporter that drops everything: the cost
// measured is orderly's and the SDK's, not an exporter's.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// runTracingOverhead is the overhead workload (no-op handler, ByKey) run
// with tracing off; with hooks that do nothing (the engine's own cost of
// calling the record hooks, the floor under any tracing); with the tracing hooks over the API's no-op
// TracerProvider (the hooks' own cost: a span start that costs next to
// nothing and never records); with the hooks and an SDK provider whose
// sampler never samples (the hooks plus the SDK's start of an unsampled
// span, which is how the sampler is asked); with the hooks deciding
// themselves (tracing.WithRecordSampling) to trace no record, and 1 % of
// the records into an always-sampling provider; and with always-sample
// into a batch span processor whose exporter discards spans. The difference in
// ns per record is the cost of tracing.
func runTracingOverhead(o *options, out *printer) error {
	n := o.recordsOr(500_000)
	log, err := overheadLog(n)
	if err != nil {
		return err
	}
	runtime.GC()

	modes := []string{"tracing-off", "empty-hooks", "noop-provider", "never-sample", "record-sampling-0", "record-sampling-1%", "always-sample"}
	// Every mode runs tracingRounds times, each round in another order
	// (rotated), and a mode's row is its median run: a row run right after
	// one that left garbage (never-sample allocates two objects a record)
	// pays for its collection, which is not its own cost.
	runs := make(map[string][]Result)
	for round := range tracingRounds {
		for i := range modes {
			mode := modes[(i+round)%len(modes)]
			r, err := tracingRun(o, log, n, mode)
			if err != nil {
				return err
			}
			runs[mode] = append(runs[mode], r)
		}
	}
	var base float64
	for _, mode := range modes {
		rs := runs[mode]
		slices.SortFunc(rs, func(a, b Result) int { return cmp.Compare(a.NsPerRecord, b.NsPerRecord) })
		r := rs[len(rs)/2]
		if base == 0 {
			base = r.NsPerRecord
		}
		r.Ratio = base / r.NsPerRecord
		r.Note = fmt.Sprintf("median of %d runs", len(rs))
		out.add(r)
	}
	out.flush(fmt.Sprintf("tracing-overhead: no-op handler, ByKey, %d records, %d partitions, %d keys, concurrency %d; ratio = tracing-off ns/record ÷ this row's",
		n, overheadPartitions, overheadKeys, o.concurrency))
	return nil
}

// emptyHooks implements the record hooks tracing.Hooks implements, and
// does nothing: what calling them costs the engine.
type emptyHooks struct{}

func (emptyHooks) OnRecordDispatched(*orderly.Record, orderly.RecordInfo) {}

func (emptyHooks) OnAttemptStarted(ctx context.Context, _ *orderly.Record, _ orderly.RecordInfo) context.Context {
	return ctx
}

func (emptyHooks) OnAttemptFinished(context.Context, *orderly.Record, orderly.RecordInfo, error) {}

func (emptyHooks) OnRecordDone(*orderly.Record, orderly.RecordInfo, orderly.Outcome, error) {}

func (emptyHooks) WantsStartTime(*orderly.Record) bool { return false }

// tracingRounds is how many times tracing-overhead runs each mode.
const tracingRounds = 3

// tracingRun runs the overhead workload once with mode's hooks.
func tracingRun(o *options, log *memory.Log, n int, mode string) (Result, error) {
	var (
		opts  []orderly.Option
		tp    *sdktrace.TracerProvider
		topts []tracing.Option
	)
	switch mode {
	case "empty-hooks":
		opts = append(opts, orderly.WithHooks(emptyHooks{}))
	case "noop-provider":
		opts = append(opts, orderly.WithHooks(tracing.New(tracing.WithTracerProvider(tracenoop.NewTracerProvider()))))
	case "never-sample":
		tp = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	case "always-sample":
		tp = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
			sdktrace.WithBatcher(discardExporter{}))
	case "record-sampling-0":
		tp = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
		topts = append(topts, tracing.WithRecordSampling(0))
	case "record-sampling-1%":
		tp = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
			sdktrace.WithBatcher(discardExporter{}))
		topts = append(topts, tracing.WithRecordSampling(0.01))
	}
	if tp != nil {
		opts = append(opts, orderly.WithHooks(tracing.New(append(topts, tracing.WithTracerProvider(tp))...)))
	}
	tr := newTracker(n)
	h := orderly.HandlerFunc(func(context.Context, *orderly.Record) error {
		tr.begin()
		tr.end()
		return nil
	})
	runtime.GC()
	var ac allocCounter
	err := runEngine(log.Member(fmt.Sprintf("tracing-%s-%d", mode, time.Now().UnixNano()), []string{"t"}), h, tr, o.timeout, ac.sample,
		append(opts, orderly.WithOrdering(orderly.ByKey()), orderly.WithMaxConcurrency(o.concurrency))...)
	if tp != nil {
		_ = tp.Shutdown(context.Background())
	}
	if err != nil {
		return Result{}, fmt.Errorf("tracing overhead %s: %w", mode, err)
	}
	r := overheadResult(mode, overheadKeys, n, o.concurrency, tr, &ac)
	r.Scenario = "tracing-overhead"
	return r, nil
}
