package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
)

// backend is where the events live: Kafka (an embedded kfake cluster or a
// real one) or the in-memory log.
type backend interface {
	// source is the consumer-group member the engine consumes from.
	source() orderly.Source
	// send produces one event; events of one order must be sent in order
	// from one goroutine. It returns the record's partition and offset.
	send(ctx context.Context, ev event) (int32, int64, error)
	// committed returns the group's committed offset per partition (-1:
	// none), once the engine has stopped.
	committed(ctx context.Context) ([]int64, error)
	// describe says where the events are, for the first line of output.
	describe() string
	// partitionCount is the topic's partition count.
	partitionCount() int
	// deadLetterSink is where failed events go.
	deadLetterSink() orderly.DeadLetterSink
	close()
}

const (
	topic           = "orders"
	deadLetterTopic = topic + ".dlq" // the adapters' DefaultDeadLetterTopic name for it
)

// memoryBackend keeps the events in an adapters/memory log.
type memoryBackend struct {
	log        *memory.Log
	group      string
	partitions int
}

func newMemoryBackend(o options) (*memoryBackend, error) {
	log := memory.NewLog()
	if err := log.CreateTopic(topic, o.partitions); err != nil {
		return nil, err
	}
	return &memoryBackend{log: log, group: o.group, partitions: o.partitions}, nil
}

func (b *memoryBackend) source() orderly.Source {
	return b.log.Member(b.group, []string{topic})
}

func (b *memoryBackend) send(_ context.Context, ev event) (int32, int64, error) {
	return b.log.Produce(topic, ev.key(), ev.value(), ev.headers()...)
}

func (b *memoryBackend) committed(context.Context) ([]int64, error) {
	out := make([]int64, b.partitions)
	for p := range out {
		pos, ok := b.log.Committed(b.group, topic, int32(p))
		out[p] = -1
		if ok {
			out[p] = pos.Offset
		}
	}
	return out, nil
}

func (b *memoryBackend) describe() string                       { return "the in-memory log (adapters/memory)" }
func (b *memoryBackend) partitionCount() int                    { return b.partitions }
func (b *memoryBackend) close()                                 {}
func (b *memoryBackend) deadLetterSink() orderly.DeadLetterSink { return &memorySink{} }

// kafkaBackend produces and consumes through one of orderly's Kafka
// adapters (kafkaClient: adapters/orderlysarama or adapters/orderlykgo), on
// an embedded kfake cluster or on the brokers given.
type kafkaBackend struct {
	cluster    *kfake.Cluster // nil on a real cluster
	brokers    []string
	group      string
	partitions int
	client     kafkaClient
	tracer     trace.Tracer
}

// kafkaClient is what the demo needs of a Kafka client, written once per
// adapter (sarama.go, franz.go).
type kafkaClient interface {
	// adapter names the adapter, for the first line of output.
	adapter() string
	source() orderly.Source
	// produce sends one record and returns its partition and offset; ctx
	// carries the producer span whose context goes into the headers.
	produce(ctx context.Context, topic string, key, value []byte, headers ...orderly.Header) (int32, int64, error)
	deadLetterSink() orderly.DeadLetterSink
	// committed returns the group's committed offset per partition of
	// the topic (-1: none).
	committed(ctx context.Context, group string, partitions int) ([]int64, error)
	close()
}

// kafkaSettings is what a kafkaClient is made from.
type kafkaSettings struct {
	brokers  []string
	group    string
	embedded bool // an embedded cluster: fast group settings
	newest   bool // a new group starts at the end of each partition
	log      *slog.Logger
}

func newKafkaBackend(o options, log *slog.Logger) (_ *kafkaBackend, err error) {
	b := &kafkaBackend{group: o.group, partitions: o.partitions, tracer: otel.Tracer("orderly/examples/orders")}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	set := kafkaSettings{group: o.group, log: log}
	if o.brokers == "" {
		// An in-process cluster that speaks the Kafka protocol over
		// loopback TCP, with the topic created.
		b.cluster, err = kfake.NewCluster(
			kfake.NumBrokers(3),
			kfake.SeedTopics(int32(o.partitions), topic, deadLetterTopic),
			kfake.GroupMinSessionTimeout(100*time.Millisecond),
		)
		if err != nil {
			return nil, fmt.Errorf("embedded cluster: %w", err)
		}
		b.brokers = b.cluster.ListenAddrs()
		set.embedded = true
	} else {
		b.brokers = strings.Split(o.brokers, ",")
		// A real topic holds earlier runs' events: this run's group
		// starts at the end of each partition, and the events are
		// produced once it holds every partition (see run).
		set.newest = true
	}
	set.brokers = b.brokers
	ensure, newClient := ensureTopicSarama, newSaramaClient
	if o.client == "franz" {
		ensure, newClient = ensureTopicFranz, newFranzClient
	}
	if o.brokers != "" {
		if b.partitions, err = ensure(b.brokers, o.partitions, log); err != nil {
			return nil, err
		}
	}
	b.client, err = newClient(set)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// warnPartitions logs that the topic exists with another partition count
// than asked for.
func warnPartitions(log *slog.Logger, partitions int) {
	log.Warn("the topic exists with another partition count; using it as it is",
		slog.String("topic", topic), slog.Int("partitions", partitions))
}

func (b *kafkaBackend) source() orderly.Source { return b.client.source() }

// send produces one event in a PRODUCER span whose context goes into the
// record's headers (W3C traceparent), so its trace runs on into the
// engine's "process orders" span and the handler.
func (b *kafkaBackend) send(ctx context.Context, ev event) (int32, int64, error) {
	ctx, span := b.tracer.Start(ctx, "send "+topic, trace.WithSpanKind(trace.SpanKindProducer))
	defer span.End()
	return b.client.produce(ctx, topic, ev.key(), ev.value(), ev.headers()...)
}

func (b *kafkaBackend) committed(ctx context.Context) ([]int64, error) {
	return b.client.committed(ctx, b.group, b.partitions)
}

func (b *kafkaBackend) describe() string {
	if b.cluster != nil {
		return fmt.Sprintf("an embedded Kafka cluster (kfake, 3 brokers at %s) through %s", strings.Join(b.brokers, ","), b.client.adapter())
	}
	return "Kafka at " + strings.Join(b.brokers, ",") + " through " + b.client.adapter()
}

func (b *kafkaBackend) partitionCount() int { return b.partitions }

// deadLetterSink writes failed events to orders.dlq.
func (b *kafkaBackend) deadLetterSink() orderly.DeadLetterSink { return b.client.deadLetterSink() }

func (b *kafkaBackend) close() {
	if b.client != nil {
		b.client.close()
	}
	if b.cluster != nil {
		b.cluster.Close()
	}
}

// produce sends the events from workers goroutines, each owning the
// orders whose slot hashes to it, so that one order's events are sent in
// order. It records each partition's first and end offset of this run.
func produce(ctx context.Context, b backend, events []event, workers int, offsets *partitionOffsets) error {
	queues := make([][]event, workers)
	for _, ev := range events {
		w := int(fnv32(ev.order) % uint32(workers))
		queues[w] = append(queues[w], ev)
	}
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w, q := range queues {
		wg.Go(func() {
			for _, ev := range q {
				if err := ctx.Err(); err != nil {
					errs[w] = err // stopped
					return
				}
				p, off, err := b.send(ctx, ev)
				if err != nil {
					errs[w] = fmt.Errorf("produce %s: %w", ev.order, err)
					return
				}
				offsets.note(p, off)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := range len(s) {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// partitionOffsets are, per partition, the first offset produced in this
// run and the end (last produced + 1). Safe for concurrent use.
type partitionOffsets struct {
	mu    sync.Mutex
	first []int64
	end   []int64
	sent  int
}

func newPartitionOffsets(partitions int) *partitionOffsets {
	o := &partitionOffsets{first: make([]int64, partitions), end: make([]int64, partitions)}
	for i := range o.first {
		o.first[i] = -1
	}
	return o
}

func (o *partitionOffsets) note(p int32, off int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.first[p] < 0 || off < o.first[p] {
		o.first[p] = off
	}
	o.end[p] = max(o.end[p], off+1)
	o.sent++
}

func (o *partitionOffsets) snapshot() (first, end []int64, sent int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]int64(nil), o.first...), append([]int64(nil), o.end...), o.sent
}
