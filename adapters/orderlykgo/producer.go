package orderlykgo

import (
	"context"
	"errors"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderly-go/orderly"
)

// NewRecord returns a record for topic with key, value and headers, in
// order. A nil key produces a record without a key (orderly's ByKey treats
// it as unordered) and a nil value a tombstone. Key, value and header
// values are referenced, not copied: do not modify them until the record
// is sent.
func NewRecord(topic string, key, value []byte, headers ...orderly.Header) *kgo.Record {
	r := &kgo.Record{Topic: topic, Key: key, Value: value}
	if len(headers) > 0 {
		r.Headers = make([]kgo.RecordHeader, len(headers))
		for i, h := range headers {
			r.Headers[i] = kgo.RecordHeader(h)
		}
	}
	return r
}

// RecordHeaders reads and writes the headers of a kgo record. Its Get, Set
// and Keys methods match OpenTelemetry's propagation.TextMapCarrier, so a
// propagator can inject trace context into a record about to be produced,
// propagator.Inject(ctx, RecordHeaders{Rec: r}), or extract it from a
// record kgo consumed. It is not safe for concurrent use with anything
// else touching Rec.
type RecordHeaders struct {
	Rec *kgo.Record
}

// Get returns the value of the last header named key, or "" if none.
func (h RecordHeaders) Get(key string) string {
	hs := h.Rec.Headers
	for i := len(hs) - 1; i >= 0; i-- {
		if hs[i].Key == key {
			return string(hs[i].Value)
		}
	}
	return ""
}

// Set makes value the only value of header key: the first header named
// key is replaced in place and later ones are removed; with none, the
// header is appended.
func (h RecordHeaders) Set(key, value string) {
	hs := h.Rec.Headers
	i := slices.IndexFunc(hs, func(r kgo.RecordHeader) bool { return r.Key == key })
	if i < 0 {
		h.Rec.Headers = append(hs, kgo.RecordHeader{Key: key, Value: []byte(value)})
		return
	}
	hs[i].Value = []byte(value)
	rest := slices.DeleteFunc(hs[i+1:], func(r kgo.RecordHeader) bool { return r.Key == key })
	h.Rec.Headers = hs[:i+1+len(rest)]
}

// Keys returns the distinct header keys, in first-seen order.
func (h RecordHeaders) Keys() []string {
	keys := make([]string, 0, len(h.Rec.Headers))
	for _, r := range h.Rec.Headers {
		if !slices.Contains(keys, r.Key) {
			keys = append(keys, r.Key)
		}
	}
	return keys
}

// ProducerOption configures a Producer.
type ProducerOption func(*Producer)

// WithInject sets a function that Send and Produce call with their context
// and the record's headers just before sending: the hook for trace-context
// propagation, e.g. func(ctx context.Context, h RecordHeaders) {
// tracing.Inject(ctx, h) }. It must not block. nil means none.
func WithInject(inject func(ctx context.Context, h RecordHeaders)) ProducerOption {
	return func(p *Producer) { p.inject = inject }
}

// Producer sends records with headers through a kgo client, one
// synchronous produce at a time per call. Its methods are safe for
// concurrent use.
type Producer struct {
	cl     *kgo.Client
	inject func(context.Context, RecordHeaders)
}

// NewProducer returns a Producer over a new kgo client made from kopts (kgo
// connects on the first produce, not here). kopts is copied, not modified.
// It returns an error wrapping ErrInvalidConfig for a nil option, options
// kgo rejects, and consumer options (a producer's client must not consume:
// nobody would poll what it fetches); and wrapping ErrUnsafeConfig for a
// kgo.TransactionalID (every produce would have to be inside a
// transaction) and a kgo.MaxVersions that caps Produce below v3 (record
// headers would be dropped).
func NewProducer(kopts []kgo.Opt, opts ...ProducerOption) (*Producer, error) {
	for _, o := range kopts {
		if o == nil {
			return nil, invalid("NewProducer: nil kgo.Opt")
		}
	}
	for _, o := range opts {
		if o == nil {
			return nil, invalid("NewProducer: nil ProducerOption")
		}
	}
	cl, err := kgo.NewClient(slices.Clone(kopts)...)
	if err != nil {
		return nil, invalid("kgo options: %w", err)
	}
	var errs []error
	if g, _ := cl.OptValue(kgo.ConsumerGroup).(string); g != "" {
		errs = append(errs, invalid("NewProducer: kgo.ConsumerGroup on a producer's client"))
	}
	if ts, _ := cl.OptValue(kgo.ConsumeTopics).([]string); len(ts) > 0 {
		errs = append(errs, invalid("NewProducer: kgo.ConsumeTopics on a producer's client"))
	}
	if ps, _ := cl.OptValue(kgo.ConsumePartitions).(map[string]map[int32]kgo.Offset); len(ps) > 0 {
		errs = append(errs, invalid("NewProducer: kgo.ConsumePartitions on a producer's client"))
	}
	if _, set := txnID(cl); set {
		errs = append(errs, unsafeConfig("NewProducer: kgo.TransactionalID: orderly produces outside transactions"))
	}
	if err := checkVersions(cl, produceKey, minProduceVersion, "Produce"); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		cl.Close()
		return nil, errors.Join(errs...)
	}
	return NewProducerFrom(cl, opts...), nil
}

// NewProducerFrom returns a Producer over cl, which it owns from now on:
// Close closes it. cl should not consume. It cannot fail: nil options are
// skipped.
func NewProducerFrom(cl *kgo.Client, opts ...ProducerOption) *Producer {
	p := &Producer{cl: cl}
	for _, o := range opts {
		if o != nil {
			o(p)
		}
	}
	return p
}

// Client returns the kgo client the Producer sends through.
func (p *Producer) Client() *kgo.Client { return p.cl }

// Produce sends one record and returns its partition and offset once the
// brokers acknowledged it (kgo.RequiredAcks; all in-sync replicas by
// default). The partition comes from the key through the client's
// partitioner (kgo's default hashes the key as Kafka's Java client does).
func (p *Producer) Produce(ctx context.Context, topic string, key, value []byte, headers ...orderly.Header) (partition int32, offset int64, err error) {
	return p.Send(ctx, NewRecord(topic, key, value, headers...))
}

// Send is Produce for a record built by the caller. ctx is checked before
// sending, handed to the inject function and to kgo's ProduceSync: kgo
// fails a record whose context ends before it is written, not one already
// in flight (that one is bounded by kgo.RecordDeliveryTimeout and
// kgo.RecordRetries).
func (p *Producer) Send(ctx context.Context, r *kgo.Record) (partition int32, offset int64, err error) {
	if err := ctx.Err(); err != nil {
		return -1, -1, err
	}
	if p.inject != nil {
		p.inject(ctx, RecordHeaders{Rec: r})
	}
	if err := p.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		return -1, -1, err
	}
	return r.Partition, r.Offset, nil
}

// Close closes the client. Every Send has waited for its record, so
// nothing of theirs is left to flush; a Send still running when Close is
// called fails.
func (p *Producer) Close() { p.cl.Close() }
