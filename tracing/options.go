package tracing

import (
	"math"

	"github.com/orderly-go/orderly"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Option configures New.
type Option func(*config)

type config struct {
	tp          trace.TracerProvider
	mp          metric.MeterProvider
	prop        propagation.TextMapPropagator
	deadLetter  func(*orderly.Record) string
	commitSpans bool
	// sampling: WithRecordSampling was given; traced is the share of
	// records without a producer's decision that are traced, as a
	// threshold on a 64-bit hash (math.MaxUint64: all).
	sampling bool
	traced   uint64
}

// WithTracerProvider sets the TracerProvider the spans are started with,
// and so the sampler and processors that decide their fate. The default is
// the global provider (otel.GetTracerProvider) at the time New is called;
// the global one delegates, so setting it later still takes effect. Nil
// means the default.
func WithTracerProvider(tp trace.TracerProvider) Option { return func(c *config) { c.tp = tp } }

// WithMeterProvider sets the MeterProvider the instruments are created with.
// The default is the global provider (otel.GetMeterProvider). Nil means the
// default.
func WithMeterProvider(mp metric.MeterProvider) Option { return func(c *config) { c.mp = mp } }

// WithPropagator sets how a record's trace context is read from its headers
// and how the dead-letter span's context is meant to be written. The
// default is W3C Trace Context plus W3C Baggage (the Propagator of this
// package), whatever the global propagator is; pass
// otel.GetTextMapPropagator() to follow the global one instead. Nil means
// the default.
func WithPropagator(p propagation.TextMapPropagator) Option { return func(c *config) { c.prop = p } }

// WithDeadLetterTopic names the topic a record is dead-lettered to, for the
// producer span's name ("send <topic>") and its messaging.destination.name.
// The hook does not tell the destination, so this must agree with the
// dead-letter sink's configuration. The default is "<topic>.dlq", the
// default of adapters/orderlysarama's sink. Nil means the default.
func WithDeadLetterTopic(topic func(*orderly.Record) string) Option {
	return func(c *config) { c.deadLetter = topic }
}

// WithCommitSpans turns the span per commit ("commit <topic>") on or off.
// It is on by default: one span per partition per commit interval, each the
// root of its own trace. Commit metrics are recorded either way.
func WithCommitSpans(on bool) Option { return func(c *config) { c.commitSpans = on } }

// WithRecordSampling decides which records are traced before any span is
// started, so that the records left out cost next to nothing: no span
// start (which the provider's sampler would need), no context, no
// allocation. A record whose headers carry a trace context follows the
// producer's decision: traced if it was sampled, left out if not. Of the
// other records, ratio (0 to 1; values outside are clamped) are traced,
// chosen by a hash of topic, partition and offset, so every attempt of a
// record, and its dead-letter write, gets the same answer. A traced record
// is then traced as without this option: the provider's sampler still has
// the last word.
//
// The handler of a record left out gets the producer's span context from
// its headers when it has one (unsampled: spans the handler starts, and
// records it produces, carry the decision on), and otherwise no span
// context at all: spans the handler starts are roots, decided by the
// provider's sampler alone. Metrics are recorded for every record either
// way.
//
// Without this option every record's first attempt starts a span and the
// provider's sampler decides; an unsampled one still costs that Start.
func WithRecordSampling(ratio float64) Option {
	return func(c *config) {
		c.sampling = true
		switch {
		case !(ratio > 0): // NaN too
			c.traced = 0
		case ratio >= 1:
			c.traced = math.MaxUint64
		default:
			f := ratio * (1 << 64)
			c.traced = math.MaxUint64
			if f < math.MaxUint64 {
				c.traced = uint64(f)
			}
		}
	}
}
