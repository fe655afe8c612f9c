package memory

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderly-go/orderly"
)

// TopicPartition names one partition of one topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s/%d", tp.Topic, tp.Partition) }

func compareTopicPartitions(a, b TopicPartition) int {
	if c := strings.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return int(a.Partition) - int(b.Partition)
}

// Log is an in-memory partitioned log with consumer groups. The zero value
// is not usable; make one with NewLog.
//
// Every method is safe for concurrent use. None of them blocks beyond
// taking the Log's locks for a short time.
type Log struct {
	// mu guards topics and groups, and every field of group, slot, Member
	// and claim marked "guarded by Log.mu". Produce and the fetchers only
	// take it for reading, to look a topic up.
	//
	// Lock order: none is needed, as no code path holds two of Log.mu,
	// claim.pauseMu and partition.mu at once. Keep it so: serve calls and
	// fetchers run without any of them held.
	mu     sync.RWMutex
	topics map[string]*topic
	groups map[string]*group

	memberSeq atomic.Int64 // numbers default member IDs
}

// topic is one topic: its partitions never change after CreateTopic.
type topic struct {
	name       string
	partitions []*partition
	roundRobin atomic.Uint32 // next partition for a record with a nil key
}

// partition is one append-only partition.
type partition struct {
	// mu guards records and wake. Records are appended, never changed or
	// removed, so a slice of records taken under mu may be read after mu
	// is released.
	mu      sync.Mutex
	records []*orderly.Record
	// wake is closed, and set to nil, by the next append. It is made on
	// demand by a fetcher that reached the end of the partition, so an
	// append nobody waits for makes no channel.
	wake chan struct{}
}

// NewLog returns an empty Log: no topics, no groups.
func NewLog() *Log {
	return &Log{
		topics: make(map[string]*topic),
		groups: make(map[string]*group),
	}
}

// CreateTopic creates topic with the given number of partitions, which
// must be at least 1. It fails with ErrTopicExists if the topic exists and
// with ErrInvalidTopic for an empty name or a partition count below 1.
//
// Members of every group that subscribed to topic before it existed are
// assigned its partitions at once (a rebalance), as Kafka does on its next
// metadata refresh.
func (l *Log) CreateTopic(name string, partitions int) error {
	if name == "" {
		return fmt.Errorf("%w: empty name", ErrInvalidTopic)
	}
	if partitions < 1 || partitions > math.MaxInt32 {
		return fmt.Errorf("%w: %q with %d partitions", ErrInvalidTopic, name, partitions)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.topics[name]; ok {
		return fmt.Errorf("%w: %q", ErrTopicExists, name)
	}
	t := &topic{name: name, partitions: make([]*partition, partitions)}
	for i := range t.partitions {
		t.partitions[i] = &partition{}
	}
	l.topics[name] = t
	for _, g := range l.groups {
		if g.subscribes(name) {
			l.rebalance(g)
		}
	}
	return nil
}

// Partitions returns the number of partitions of topic, or ErrUnknownTopic.
func (l *Log) Partitions(topic string) (int, error) {
	t, err := l.topic(topic)
	if err != nil {
		return 0, err
	}
	return len(t.partitions), nil
}

// Produce appends a record with key, value and headers to topic and returns
// the partition and offset it was written at. The timestamp is time.Now().
//
// The partition is the FNV-1a (32-bit) hash of the key modulo the number of
// partitions, so records with the same key land in the same partition. A
// nil key goes round-robin over the partitions; an empty but non-nil key is
// a key like any other (as in Kafka, only a null key is "no key").
//
// Key, value and headers are copied: the caller may reuse its slices.
func (l *Log) Produce(topic string, key, value []byte, headers ...orderly.Header) (partition int32, offset int64, err error) {
	r, err := l.ProduceRecord(orderly.Record{Topic: topic, Partition: -1, Key: key, Value: value, Headers: headers})
	if err != nil {
		return 0, 0, err
	}
	return r.Partition, r.Offset, nil
}

// ProduceTo appends a record to the given partition of topic, whatever the
// key, and returns its offset. See Produce.
func (l *Log) ProduceTo(topic string, partition int32, key, value []byte, headers ...orderly.Header) (offset int64, err error) {
	if partition < 0 {
		return 0, fmt.Errorf("%w: %s/%d", ErrUnknownPartition, topic, partition)
	}
	r, err := l.ProduceRecord(orderly.Record{Topic: topic, Partition: partition, Key: key, Value: value, Headers: headers})
	if err != nil {
		return 0, err
	}
	return r.Offset, nil
}

// ProduceRecord appends a copy of r to r.Topic and returns the stored
// record, which is the very pointer consumers will receive. A negative
// r.Partition means "chosen from the key" as in Produce; r.Offset is
// ignored (the log sets it); a zero r.Timestamp becomes time.Now(). Key,
// value and headers are copied.
func (l *Log) ProduceRecord(r orderly.Record) (*orderly.Record, error) {
	t, err := l.topic(r.Topic)
	if err != nil {
		return nil, err
	}
	n := int32(len(t.partitions))
	switch {
	case r.Partition >= n:
		return nil, fmt.Errorf("%w: %s/%d (topic has %d)", ErrUnknownPartition, r.Topic, r.Partition, n)
	case r.Partition < 0 && r.Key == nil:
		r.Partition = int32((t.roundRobin.Add(1) - 1) % uint32(n))
	case r.Partition < 0:
		r.Partition = int32(fnv1a32(r.Key) % uint32(n))
	}
	if r.Timestamp.IsZero() {
		r.Timestamp = time.Now()
	}
	r.Key = bytes.Clone(r.Key)
	r.Value = bytes.Clone(r.Value)
	if r.Headers != nil {
		hs := make([]orderly.Header, len(r.Headers))
		for i, h := range r.Headers {
			hs[i] = orderly.Header{Key: h.Key, Value: bytes.Clone(h.Value)}
		}
		r.Headers = hs
	}
	stored := &r
	p := t.partitions[r.Partition]
	p.mu.Lock()
	stored.Offset = int64(len(p.records))
	p.records = append(p.records, stored)
	if p.wake != nil {
		close(p.wake)
		p.wake = nil
	}
	p.mu.Unlock()
	return stored, nil
}

// EndOffset returns the offset the next record of the partition will get
// (Kafka's high watermark): 0 for an empty partition.
func (l *Log) EndOffset(topic string, partition int32) (int64, error) {
	p, err := l.partition(topic, partition)
	if err != nil {
		return 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return int64(len(p.records)), nil
}

// Committed returns the group's committed position for the partition, and
// false if the group never committed one (nor had one planted with
// SetCommitted).
func (l *Log) Committed(group, topic string, partition int32) (orderly.Position, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	g := l.groups[group]
	if g == nil {
		return orderly.Position{}, false
	}
	pos, ok := g.committed[TopicPartition{topic, partition}]
	return pos, ok
}

// SetCommitted sets the group's committed position for the partition, as
// an administrator resetting offsets would. It is a test hook: plant
// foreign or corrupt metadata, or move a group backwards or forwards.
// Claims granted afterwards see pos as their Start; claims already granted
// are not affected. It is not recorded in CommitHistory. The topic need not
// exist.
func (l *Log) SetCommitted(group, topic string, partition int32, pos orderly.Position) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.group(group).committed[TopicPartition{topic, partition}] = pos
}

// CommitHistory returns every position stored by a successful Claim.Commit
// for the partition, oldest first (SetCommitted is not included). The
// slice is a copy.
func (l *Log) CommitHistory(group, topic string, partition int32) []orderly.Position {
	l.mu.RLock()
	defer l.mu.RUnlock()
	g := l.groups[group]
	if g == nil {
		return nil
	}
	return slices.Clone(g.history[TopicPartition{topic, partition}])
}

func (l *Log) topic(name string) (*topic, error) {
	l.mu.RLock()
	t := l.topics[name]
	l.mu.RUnlock()
	if t == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	return t, nil
}

func (l *Log) partition(topic string, partition int32) (*partition, error) {
	t, err := l.topic(topic)
	if err != nil {
		return nil, err
	}
	if partition < 0 || int(partition) >= len(t.partitions) {
		return nil, fmt.Errorf("%w: %s/%d (topic has %d)", ErrUnknownPartition, topic, partition, len(t.partitions))
	}
	return t.partitions[partition], nil
}

// read returns the records of p from offset on, or, when there are none
// yet, a channel that is closed by the next append.
func (p *partition) read(offset int64) ([]*orderly.Record, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if offset < int64(len(p.records)) {
		// Cap the slice so nothing the caller does can reach the
		// elements appends write.
		return p.records[offset:len(p.records):len(p.records)], nil
	}
	if p.wake == nil {
		p.wake = make(chan struct{})
	}
	return nil, p.wake
}

// fnv1a32 is the 32-bit FNV-1a hash (as hash/fnv's New32a), inlined to
// spare an allocation per record.
func fnv1a32(b []byte) uint32 {
	const (
		offset32 = 2166136261
		prime32  = 16777619
	)
	h := uint32(offset32)
	for _, c := range b {
		h ^= uint32(c)
		h *= prime32
	}
	return h
}
