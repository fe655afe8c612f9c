package tracing

import (
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
