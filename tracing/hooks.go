package tracing

import (
	"hash/fnv"
	"maps"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/orderly-go/orderly"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the tracer and meter.
const ScopeName = "github.com/orderly-go/orderly/tracing"

// Hooks implements every orderly hook interface with OpenTelemetry spans
// and metrics. Make one with New and give it to orderly.WithHooks. Its
// methods are called by the engine, are safe for concurrent use and do not
// block. One Hooks may serve several engines.
type Hooks struct {
	tracer  trace.Tracer
	meter   metric.Meter
	cfg     config
	ins     instruments
	parts   partTable // names and attributes, built once per partition
	pending pendingRecords

	pausedMu sync.Mutex // guards paused
	paused   map[partKey]bool
}

var (
	_ orderly.HookRecordDispatched = (*Hooks)(nil)
	_ orderly.HookAttemptStarted   = (*Hooks)(nil)
	_ orderly.HookAttemptFinished  = (*Hooks)(nil)
	_ orderly.HookRetryScheduled   = (*Hooks)(nil)
	_ orderly.HookDeadLetter       = (*Hooks)(nil)
	_ orderly.HookPartitionPaused  = (*Hooks)(nil)
	_ orderly.HookCommit           = (*Hooks)(nil)
	_ orderly.HookStartTime        = (*Hooks)(nil)
)

// New returns hooks that trace and measure an engine:
//
//	eng, err := orderly.New(src, h, orderly.WithHooks(tracing.New(
//		tracing.WithTracerProvider(tp), tracing.WithMeterProvider(mp))))
//
// Without options it uses the global providers and W3C propagation.
func New(opts ...Option) *Hooks {
	cfg := config{commitSpans: true}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.tp == nil {
		cfg.tp = otel.GetTracerProvider()
	}
	if cfg.mp == nil {
		cfg.mp = otel.GetMeterProvider()
	}
	if cfg.prop == nil {
		cfg.prop = Propagator
	}
	if cfg.deadLetter == nil {
		cfg.deadLetter = func(r *orderly.Record) string { return r.Topic + ".dlq" }
	}
	h := &Hooks{
		tracer: cfg.tp.Tracer(ScopeName),
		meter:  cfg.mp.Meter(ScopeName),
		cfg:    cfg,
		paused: make(map[partKey]bool),
	}
	h.ins = newInstruments(h.meter)
	h.pending.m = make(map[recordKey]*recordState)
	return h
}

// partKey names a partition as seen by one consumer group.
type partKey struct {
	group, topic string
	partition    int32
}

// partInfo is what every record of a partition shares: span names and
// attributes, built once so that the hot path does not allocate them.
type partInfo struct {
	key         partKey
	processName string // "process <topic>"
	retryName   string // "retry <topic>"
	spanAttrs   []attribute.KeyValue
	set         metric.MeasurementOption // messaging.* attributes of the partition
	attrs       []attribute.KeyValue     // the same, to extend with error.type
	// add and rec hold set, built once: passing set alone to a variadic
	// parameter would allocate a slice on every measurement.
	add []metric.AddOption
	rec []metric.RecordOption

	starts [startSlots]atomic.Pointer[startOpts] // see startOptions
	seed   uint64                                // of topic and partition, for WithRecordSampling
}

// partTable finds a partition's partInfo without allocating and without
// hashing strings: a copy-on-write map by partition number, each entry the
// few (topic, group) pairs seen with that number.
type partTable struct {
	m  atomic.Pointer[map[int32][]*partInfo] // never modified once stored
	mu sync.Mutex                            // serialises additions
}

func (t *partTable) find(group, topic string, partition int32) *partInfo {
	if m := t.m.Load(); m != nil {
		for _, p := range (*m)[partition] {
			if p.key.topic == topic && p.key.group == group {
				return p
			}
		}
	}
	return nil
}

// add stores p unless an equal key got there first, and returns the one
// stored.
func (t *partTable) add(p *partInfo) *partInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	if q := t.find(p.key.group, p.key.topic, p.key.partition); q != nil {
		return q
	}
	m := make(map[int32][]*partInfo)
	if old := t.m.Load(); old != nil {
		maps.Copy(m, *old)
	}
	m[p.key.partition] = append(slices.Clip(m[p.key.partition]), p)
	t.m.Store(&m)
	return p
}

func (h *Hooks) part(group, topic string, partition int32) *partInfo {
	if p := h.parts.find(group, topic, partition); p != nil {
		return p
	}
	id := strconv.Itoa(int(partition))
	attrs := []attribute.KeyValue{
		semconv.MessagingSystemKafka,
		semconv.MessagingOperationName("process"),
		semconv.MessagingDestinationName(topic),
		semconv.MessagingDestinationPartitionID(id),
	}
	if group != "" {
		attrs = append(attrs, semconv.MessagingConsumerGroupName(group))
	}
	spanAttrs := append([]attribute.KeyValue{semconv.MessagingOperationTypeProcess}, attrs...)
	p := &partInfo{
		key:         partKey{group, topic, partition},
		processName: "process " + topic,
		retryName:   "retry " + topic,
		spanAttrs:   spanAttrs,
		set:         metric.WithAttributeSet(attribute.NewSet(attrs...)),
		attrs:       attrs,
		seed:        partitionSeed(topic, partition),
	}
	p.add, p.rec = []metric.AddOption{p.set}, []metric.RecordOption{p.set}
	return h.parts.add(p)
}

// partitionSeed hashes topic and partition (FNV-1a): records keep their
// sampling decision across attempts, processes and consumer groups.
func partitionSeed(topic string, partition int32) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(topic))
	_, _ = h.Write([]byte{byte(partition >> 24), byte(partition >> 16), byte(partition >> 8), byte(partition)})
	return h.Sum64()
}

// traced reports whether WithRecordSampling's ratio picks the record at
// offset of p (for a record without a producer's decision).
func (h *Hooks) traced(p *partInfo, offset int64) bool { return h.pick(p.seed, offset) }

// pick is traced for a partition's seed (partitionSeed).
func (h *Hooks) pick(seed uint64, offset int64) bool {
	if h.cfg.traced == math.MaxUint64 {
		return true
	}
	// splitmix64's finalizer: offsets in a row spread over the range.
	z := seed + uint64(offset)*0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	return z < h.cfg.traced
}

// withError is the partition's metric attributes plus error.type.
func (p *partInfo) withError(err error) metric.MeasurementOption {
	attrs := make([]attribute.KeyValue, 0, len(p.attrs)+1)
	attrs = append(attrs, p.attrs...)
	return metric.WithAttributes(append(attrs, semconv.ErrorType(err))...)
}
