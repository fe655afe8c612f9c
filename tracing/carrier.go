package tracing

import (
	"context"

	"github.com/orderly-go/orderly"
	"go.opentelemetry.io/otel/propagation"
)

// Propagator is the default propagator of this package: W3C Trace Context
// ("traceparent", "tracestate") and W3C Baggage ("baggage"). Inject and
// Extract use it; so does New unless WithPropagator says otherwise.
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(
	propagation.TraceContext{}, propagation.Baggage{})

// Inject writes the trace context (and baggage) of ctx into c with
// Propagator. A handler calls it on the records it produces, so that their
// consumers' spans join its trace:
//
//	msg := orderlysarama.NewProducerMessage("shipments", key, value)
//	tracing.Inject(ctx, orderlysarama.ProducerHeaders{Msg: msg})
//
// Any TextMapCarrier works: each Kafka adapter provides one for the
// messages its client produces (adapters/orderlysarama.ProducerHeaders).
//
// A context without a valid span context writes nothing.
func Inject(ctx context.Context, c propagation.TextMapCarrier) { Propagator.Inject(ctx, c) }

// Extract returns ctx with the remote span context (and baggage) read from c
// with Propagator, or ctx itself when c carries none.
func Extract(ctx context.Context, c propagation.TextMapCarrier) context.Context {
	return Propagator.Extract(ctx, c)
}

// RecordCarrier adapts an orderly record's headers to a TextMapCarrier.
// Get returns the last header of that name; Set replaces every header of
// that name by one (Kafka allows repeats, a propagator wants one). Set
// modifies the record, so use it only on records you are building: a record
// the engine handed to a handler must not be modified. Not safe for
// concurrent use with anything else touching the record.
func RecordCarrier(r *orderly.Record) propagation.TextMapCarrier { return recordCarrier{r} }

type recordCarrier struct{ r *orderly.Record }

func (c recordCarrier) Get(key string) string {
	v, _ := c.r.Header(key)
	return string(v)
}

func (c recordCarrier) Set(key, value string) {
	hs := c.r.Headers[:0:0]
	found := false
	for _, h := range c.r.Headers {
		if h.Key != key {
			hs = append(hs, h)
		} else if !found {
			hs, found = append(hs, orderly.Header{Key: key, Value: []byte(value)}), true
		}
	}
	if !found {
		hs = append(hs, orderly.Header{Key: key, Value: []byte(value)})
	}
	c.r.Headers = hs
}

func (c recordCarrier) Keys() []string {
	keys := make([]string, 0, len(c.r.Headers))
	for _, h := range c.r.Headers {
		keys = append(keys, h.Key)
	}
	return keys
}
