package tracing

import (
	"context"

	"github.com/IBM/sarama"
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
//	msg := &sarama.ProducerMessage{Topic: "shipments", Value: v}
//	tracing.Inject(ctx, tracing.ProducerCarrier(msg))
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

// ProducerCarrier adapts a sarama producer message's headers to a
// TextMapCarrier, with the same rules as RecordCarrier. Not safe for
// concurrent use; inject before handing the message to the producer.
func ProducerCarrier(m *sarama.ProducerMessage) propagation.TextMapCarrier {
	return producerCarrier{m}
}

type producerCarrier struct{ m *sarama.ProducerMessage }

func (c producerCarrier) Get(key string) string {
	for i := len(c.m.Headers) - 1; i >= 0; i-- {
		if string(c.m.Headers[i].Key) == key {
			return string(c.m.Headers[i].Value)
		}
	}
	return ""
}

func (c producerCarrier) Set(key, value string) {
	hs := c.m.Headers[:0:0]
	found := false
	for _, h := range c.m.Headers {
		if string(h.Key) != key {
			hs = append(hs, h)
		} else if !found {
			hs, found = append(hs, sarama.RecordHeader{Key: []byte(key), Value: []byte(value)}), true
		}
	}
	if !found {
		hs = append(hs, sarama.RecordHeader{Key: []byte(key), Value: []byte(value)})
	}
	c.m.Headers = hs
}

func (c producerCarrier) Keys() []string {
	keys := make([]string, 0, len(c.m.Headers))
	for _, h := range c.m.Headers {
		keys = append(keys, string(h.Key))
	}
	return keys
}
