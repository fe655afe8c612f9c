package orderlysarama

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/IBM/sarama"

	"github.com/orderly-go/orderly"
)

// Headers the DeadLetterSink adds to every dead-letter record, after the
// original record's headers. A header of the same name already on the
// record (one dead-lettered before, consumed from a dead-letter topic and
// dead-lettered again) is replaced, so each appears once.
const (
	// HeaderDeadLetterError is the error of the record's last attempt
	// (orderly.DeadLetter.Err), or orderly.ErrKeyParked's text for a
	// parked key's later record.
	HeaderDeadLetterError = "orderly-dlq-error"
	// HeaderDeadLetterAttempts is the number of handler calls made for the
	// record, in decimal; "0" for a parked key's later record, which was
	// never handled.
	HeaderDeadLetterAttempts = "orderly-dlq-attempts"
	// HeaderDeadLetterTopic, HeaderDeadLetterPartition and
	// HeaderDeadLetterOffset name the original record; partition and
	// offset are decimal.
	HeaderDeadLetterTopic     = "orderly-dlq-topic"
	HeaderDeadLetterPartition = "orderly-dlq-partition"
	HeaderDeadLetterOffset    = "orderly-dlq-offset"
	// HeaderDeadLetterFirstFailure is when the record's first attempt
	// failed, in RFC 3339 with nanoseconds (time.RFC3339Nano), UTC. It is
	// left out for a parked key's later record, which never failed.
	HeaderDeadLetterFirstFailure = "orderly-dlq-first-failure"
	// HeaderDeadLetterGroup is the consumer group that dead-lettered the
	// record (orderly.DeadLetter.Group), left out when the engine's source
	// does not name its group (orderly.GroupNamer).
	HeaderDeadLetterGroup = "orderly-dlq-group"
)

// DefaultDeadLetterTopic is the dead-letter topic of records read from
// topic when WithDeadLetterTopic is not given: topic + ".dlq".
func DefaultDeadLetterTopic(topic string) string { return topic + ".dlq" }

// DeadLetterOption configures a DeadLetterSink.
type DeadLetterOption func(*DeadLetterSink)

// WithDeadLetterTopic sets the function that names the dead-letter topic
// of records read from topic. Default: DefaultDeadLetterTopic
// ("<topic>.dlq"). For one fixed topic:
//
//	orderlysarama.WithDeadLetterTopic(func(string) string { return "orders-dlq" })
//
// The topic must exist (or the brokers must create topics on demand): a
// write to a missing topic fails and is retried by the engine until the
// topic appears or the claim ends. nil is invalid.
func WithDeadLetterTopic(name func(topic string) string) DeadLetterOption {
	return func(s *DeadLetterSink) {
		if name == nil {
			s.errs = append(s.errs, invalid("WithDeadLetterTopic(nil)"))
		}
		s.topic = name
	}
}

// WithHeaderInjector sets a function called with the sink's context and
// the dead-letter message just before it is sent, after the sink's
// headers were added: the hook for trace-context propagation. The context
// is the one the engine passes to DeadLetterSink.DeadLetter, which carries
// what the engine's HookDeadLetter hooks put there (package
// tracing's dead-letter producer span), e.g.
//
//	orderlysarama.WithHeaderInjector(func(ctx context.Context, m *sarama.ProducerMessage) {
//		tracing.Inject(ctx, orderlysarama.ProducerHeaders{Msg: m})
//	})
//
// It may modify the message's headers; it must not block. A Producer made
// with WithInject calls its own inject function too, after this one.
// nil is invalid.
func WithHeaderInjector(inject func(ctx context.Context, m *sarama.ProducerMessage)) DeadLetterOption {
	return func(s *DeadLetterSink) {
		if inject == nil {
			s.errs = append(s.errs, invalid("WithHeaderInjector(nil)"))
		}
		s.inject = inject
	}
}

// DeadLetterSink is an orderly.DeadLetterSink that writes each record to
// a dead-letter topic with its original key, value and headers, plus the
// Header* headers above. Give it to orderly.WithDeadLetter.
//
// The partition of the dead-letter record comes from its key through the
// Producer's Partitioner: with the default hash partitioner a key's dead
// letters land in one partition, in the order they were written (the
// engine writes a key's dead letters one at a time, in offset order, so a
// parked key's records keep their order there). Records without a key are
// spread by the partitioner.
//
// DeadLetter is safe for concurrent use. It blocks until the broker
// acknowledged the write (Producer.Send) and returns its error otherwise;
// the engine then retries the write with backoff, so a record is never
// dropped silently. The sink does not own the Producer: closing it is the
// caller's job, after the engine's Run returned.
type DeadLetterSink struct {
	producer *Producer
	topic    func(string) string
	inject   func(context.Context, *sarama.ProducerMessage)
	errs     []error
}

var _ orderly.DeadLetterSink = (*DeadLetterSink)(nil)

// NewDeadLetterSink returns a sink that writes through p. It returns an
// error wrapping ErrInvalidConfig for a nil p or a nil option.
func NewDeadLetterSink(p *Producer, opts ...DeadLetterOption) (*DeadLetterSink, error) {
	s := &DeadLetterSink{producer: p, topic: DefaultDeadLetterTopic}
	if p == nil {
		s.errs = append(s.errs, invalid("NewDeadLetterSink: nil Producer"))
	}
	for _, o := range opts {
		if o == nil {
			s.errs = append(s.errs, invalid("NewDeadLetterSink: nil DeadLetterOption"))
			continue
		}
		o(s)
	}
	if len(s.errs) > 0 {
		return nil, errors.Join(s.errs...)
	}
	return s, nil
}

// DeadLetter writes r to its dead-letter topic; see DeadLetterSink. ctx
// goes to the header injector and to Producer.Send, which returns its
// error without sending if it is already done.
func (s *DeadLetterSink) DeadLetter(ctx context.Context, r *orderly.Record, dl orderly.DeadLetter) error {
	m := s.Message(r, dl)
	if s.inject != nil {
		s.inject(ctx, m)
	}
	_, _, err := s.producer.Send(ctx, m)
	return err
}

// Message returns the dead-letter message DeadLetter sends for r, before
// the header injector runs. Key, value and header values reference r's.
func (s *DeadLetterSink) Message(r *orderly.Record, dl orderly.DeadLetter) *sarama.ProducerMessage {
	m := NewProducerMessage(s.topic(r.Topic), r.Key, r.Value, r.Headers...)
	h := ProducerHeaders{Msg: m}
	errText := "unknown error"
	if dl.Err != nil {
		errText = dl.Err.Error()
	}
	h.Set(HeaderDeadLetterError, errText)
	h.Set(HeaderDeadLetterAttempts, strconv.Itoa(dl.Attempts))
	h.Set(HeaderDeadLetterTopic, r.Topic)
	h.Set(HeaderDeadLetterPartition, strconv.FormatInt(int64(r.Partition), 10))
	h.Set(HeaderDeadLetterOffset, strconv.FormatInt(r.Offset, 10))
	if !dl.FirstFailure.IsZero() {
		h.Set(HeaderDeadLetterFirstFailure, dl.FirstFailure.UTC().Format(time.RFC3339Nano))
	}
	if dl.Group != "" {
		h.Set(HeaderDeadLetterGroup, dl.Group)
	}
	return m
}

// DeadLetterTopic is the topic r is dead-lettered to; it makes the sink an
// orderly.DeadLetterTopicNamer, so hooks (tracing) name the write after it.
func (s *DeadLetterSink) DeadLetterTopic(r *orderly.Record) string { return s.topic(r.Topic) }
