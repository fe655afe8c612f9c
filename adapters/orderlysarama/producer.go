package orderlysarama

import (
	"context"
	"slices"

	"github.com/IBM/sarama"

	"github.com/orderly-go/orderly"
)

// NewProducerMessage returns a message for topic with key, value and
// headers, in order. A nil key produces a record without a key (orderly's
// ByKey treats it as unordered) and a nil value a tombstone. Key, value and
// header values are referenced, not copied: do not modify them until the
// message is sent.
func NewProducerMessage(topic string, key, value []byte, headers ...orderly.Header) *sarama.ProducerMessage {
	m := &sarama.ProducerMessage{Topic: topic}
	if key != nil {
		m.Key = sarama.ByteEncoder(key)
	}
	if value != nil {
		m.Value = sarama.ByteEncoder(value)
	}
	if len(headers) > 0 {
		m.Headers = make([]sarama.RecordHeader, len(headers))
		for i, h := range headers {
			m.Headers[i] = sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value}
		}
	}
	return m
}

// ProducerHeaders reads and writes the headers of a message about to be
// produced. Its Get, Set and Keys methods match OpenTelemetry's
// propagation.TextMapCarrier, so a propagator can inject trace context
// into a message: propagator.Inject(ctx, ProducerHeaders{Msg: m}).
// It is not safe for concurrent use with anything else touching Msg.
type ProducerHeaders struct {
	Msg *sarama.ProducerMessage
}

// Get returns the value of the last header named key, or "" if none.
func (h ProducerHeaders) Get(key string) string {
	hs := h.Msg.Headers
	for i := len(hs) - 1; i >= 0; i-- {
		if string(hs[i].Key) == key {
			return string(hs[i].Value)
		}
	}
	return ""
}

// Set makes value the only value of header key: the first header named
// key is replaced in place and later ones are removed; with none, the
// header is appended.
func (h ProducerHeaders) Set(key, value string) {
	hs := h.Msg.Headers
	i := slices.IndexFunc(hs, func(r sarama.RecordHeader) bool { return string(r.Key) == key })
	if i < 0 {
		h.Msg.Headers = append(hs, sarama.RecordHeader{Key: []byte(key), Value: []byte(value)})
		return
	}
	hs[i].Value = []byte(value)
	rest := slices.DeleteFunc(hs[i+1:], func(r sarama.RecordHeader) bool { return string(r.Key) == key })
	h.Msg.Headers = hs[:i+1+len(rest)]
}

// Keys returns the distinct header keys, in first-seen order.
func (h ProducerHeaders) Keys() []string {
	keys := make([]string, 0, len(h.Msg.Headers))
	for _, r := range h.Msg.Headers {
		if k := string(r.Key); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// ProducerOption configures a Producer.
type ProducerOption func(*Producer)

// WithInject sets a function that Produce calls with its context and the
// message's headers just before sending: the hook for trace-context
// propagation, e.g. func(ctx context.Context, h ProducerHeaders) {
// otel.GetTextMapPropagator().Inject(ctx, h) }. It must not block.
func WithInject(inject func(ctx context.Context, h ProducerHeaders)) ProducerOption {
	return func(p *Producer) { p.inject = inject }
}

// Producer sends messages with headers through a sarama SyncProducer.
// Its methods are safe for concurrent use.
type Producer struct {
	sp     sarama.SyncProducer
	inject func(context.Context, ProducerHeaders)
}

// NewProducer returns a Producer over a new sarama SyncProducer for
// brokers. cfg is copied, not modified; nil means DefaultConfig(). The copy
// gets Producer.Return.Successes and Producer.Return.Errors (a
// SyncProducer needs both). It returns an error wrapping ErrInvalidConfig
// if sarama rejects the config or cannot connect, and wrapping
// ErrUnsafeConfig if Version is older than MinVersion (headers would be
// dropped).
func NewProducer(brokers []string, cfg *sarama.Config, opts ...ProducerOption) (*Producer, error) {
	if cfg == nil {
		cfg = DefaultConfig()
	}
	c := *cfg
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	if err := checkVersion(&c); err != nil {
		return nil, err
	}
	sp, err := sarama.NewSyncProducer(brokers, &c)
	if err != nil {
		return nil, invalid("%w", err)
	}
	return NewProducerFrom(sp, opts...), nil
}

// NewProducerFrom returns a Producer over sp, which it owns from now on:
// Close closes it.
func NewProducerFrom(sp sarama.SyncProducer, opts ...ProducerOption) *Producer {
	p := &Producer{sp: sp}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Produce sends one record and returns its partition and offset once the
// broker acknowledged it (Producer.RequiredAcks). The partition comes from
// the key through the configured Producer.Partitioner.
//
// ctx is checked before sending and handed to the inject function; the
// send itself cannot be cancelled and is bounded by sarama's
// Producer.Timeout, Producer.Retry and Net timeouts.
func (p *Producer) Produce(ctx context.Context, topic string, key, value []byte, headers ...orderly.Header) (partition int32, offset int64, err error) {
	return p.Send(ctx, NewProducerMessage(topic, key, value, headers...))
}

// Send is Produce for a message built by the caller.
func (p *Producer) Send(ctx context.Context, m *sarama.ProducerMessage) (partition int32, offset int64, err error) {
	if err := ctx.Err(); err != nil {
		return -1, -1, err
	}
	if p.inject != nil {
		p.inject(ctx, ProducerHeaders{Msg: m})
	}
	return p.sp.SendMessage(m)
}

// Close flushes and closes the SyncProducer.
func (p *Producer) Close() error { return p.sp.Close() }
