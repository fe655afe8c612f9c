package tracing

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/semconv/v1.43.0/messagingconv"
)

// durationBuckets are the bucket boundaries, in seconds, that the
// messaging semantic conventions advise for duration histograms.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// instruments are the synchronous instruments the hooks record into. Their
// names are listed in the package documentation.
type instruments struct {
	consumed     metric.Int64Counter     // messaging.client.consumed.messages, at dispatch
	duration     metric.Float64Histogram // messaging.process.duration, per attempt
	handled      metric.Int64Counter
	failed       metric.Int64Counter
	retried      metric.Int64Counter
	deadLettered metric.Int64Counter
	wait         metric.Float64Histogram
	inFlight     metric.Int64UpDownCounter
	paused       metric.Int64UpDownCounter
	pauses       metric.Int64Counter
	commits      metric.Int64Counter
	commitRecs   metric.Int64Counter
	commitTook   metric.Float64Histogram
	committed    metric.Int64Gauge
}

// newInstruments creates the instruments. An instrument that cannot be
// created is reported to otel.Handle and replaced by a no-op one (the API
// returns a usable no-op alongside its error), so metrics never stop the
// engine.
func newInstruments(m metric.Meter) instruments {
	var ins instruments
	check := func(err error) {
		if err != nil {
			otel.Handle(err)
		}
	}
	consumed, err := messagingconv.NewClientConsumedMessages(m)
	check(err)
	ins.consumed = consumed.Inst()
	duration, err := messagingconv.NewProcessDuration(m, metric.WithExplicitBucketBoundaries(durationBuckets...))
	check(err)
	ins.duration = duration.Inst()

	ins.handled, err = m.Int64Counter("orderly.records.handled", metric.WithUnit("{record}"),
		metric.WithDescription("Records whose handler returned nil (the record is done)."))
	check(err)
	ins.failed, err = m.Int64Counter("orderly.records.failed", metric.WithUnit("{attempt}"),
		metric.WithDescription("Handler calls that returned an error or panicked, by error.type; a record retried twice counts up to three."))
	check(err)
	ins.retried, err = m.Int64Counter("orderly.records.retried", metric.WithUnit("{retry}"),
		metric.WithDescription("Retries scheduled after a failed handler call."))
	check(err)
	ins.deadLettered, err = m.Int64Counter("orderly.records.dead_lettered", metric.WithUnit("{record}"),
		metric.WithDescription("Dead-letter writes; error.type is set when the write failed."))
	check(err)
	ins.wait, err = m.Float64Histogram("orderly.mailbox.wait", metric.WithUnit("s"),
		metric.WithDescription("Time from dispatch to the first handler call: the wait for the key's earlier records and a concurrency slot."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	check(err)
	ins.inFlight, err = m.Int64UpDownCounter("orderly.handler.in_flight", metric.WithUnit("{call}"),
		metric.WithDescription("Handler calls running now, per partition; their sum is the engine's."))
	check(err)
	ins.paused, err = m.Int64UpDownCounter("orderly.partitions.paused", metric.WithUnit("{partition}"),
		metric.WithDescription("Partitions whose fetching is paused by backpressure now."))
	check(err)
	ins.pauses, err = m.Int64Counter("orderly.partition.pauses", metric.WithUnit("{pause}"),
		metric.WithDescription("Times a partition's fetching was paused, by the first reason in force."))
	check(err)
	ins.commits, err = m.Int64Counter("orderly.commits", metric.WithUnit("{commit}"),
		metric.WithDescription("Commit attempts; error.type is set when one failed."))
	check(err)
	ins.commitRecs, err = m.Int64Counter("orderly.commit.records", metric.WithUnit("{record}"),
		metric.WithDescription("Records the committed watermark passed."))
	check(err)
	ins.commitTook, err = m.Float64Histogram("orderly.commit.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of commit attempts."), metric.WithExplicitBucketBoundaries(durationBuckets...))
	check(err)
	ins.committed, err = m.Int64Gauge("orderly.partition.committed", metric.WithUnit("{offset}"),
		metric.WithDescription("Last committed next offset (the watermark) per partition."))
	check(err)
	return ins
}
