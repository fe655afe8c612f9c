package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/orderlykgo"
)

// kafkaRawFranz consumes the overhead topic with a plain franz-go consumer
// group in the goroutine-per-partition pattern of franz-go's examples
// (goroutine_per_partition_consuming, autocommit_marks), as bench/peers
// runs it: a PollRecords loop hands each partition's records to that
// partition's goroutine, which marks each record (MarkCommitRecords) and
// does nothing else; AutoCommitMarks commits the marks every second, as
// sarama's auto-commit does for the raw sarama group.
func kafkaRawFranz(o *options, brokers []string, n int) (Result, error) {
	tr := newTracker(n)
	s := &franzSplit{tr: tr, consumers: make(map[franzTP]*franzPartition)}
	cl, err := kgo.NewClient(append(kafkaFranzOpts(brokers, "raw-franz", kafkaOverheadTopic),
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.lost),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(time.Second),
		kgo.BlockRebalanceOnPoll(),
	)...)
	if err != nil {
		return Result{}, err
	}
	defer cl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	polled := make(chan error, 1)
	tr.t0 = time.Now()
	go func() { polled <- s.poll(ctx, cl) }()
	timer := time.NewTimer(o.timeout)
	defer timer.Stop()
	select {
	case <-tr.done:
	case err := <-polled:
		return Result{}, fmt.Errorf("poll loop stopped after %d of %d records: %v", tr.count.Load(), n, err)
	case <-timer.C:
		return Result{}, fmt.Errorf("%w: %d of %d records after %v", errStalled, tr.count.Load(), n, o.timeout)
	}
	cancel()
	if err := <-polled; err != nil {
		return Result{}, err
	}
	secs := tr.seconds()
	return Result{
		Scenario: "kafka-overhead", Client: clientFranz, Mode: "franz-raw", Partitions: kafkaOverheadPartitions, Records: n,
		Seconds: secs, RecordsPerSec: float64(n) / secs, StartupSeconds: tr.startup(),
	}, nil
}

type franzTP struct {
	topic     string
	partition int32
}

// franzSplit is the raw group's state: one goroutine per assigned
// partition. With BlockRebalanceOnPoll the callbacks never run while the
// poll loop hands records over; mu is for the race detector's sake.
type franzSplit struct {
	tr        *tracker
	mu        sync.Mutex
	consumers map[franzTP]*franzPartition
}

// franzPartition is one partition's goroutine: it marks each record it is
// handed, until quit is closed.
type franzPartition struct {
	cl   *kgo.Client
	recs chan []*kgo.Record
	quit chan struct{}
	done chan struct{}
}

func (pc *franzPartition) consume(tr *tracker) {
	defer close(pc.done)
	for {
		select {
		case <-pc.quit:
			return
		case rs := <-pc.recs:
			for _, r := range rs {
				tr.begin()
				pc.cl.MarkCommitRecords(r)
				tr.end()
			}
		}
	}
}

func (s *franzSplit) assigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for topic, partitions := range assigned {
		for _, p := range partitions {
			pc := &franzPartition{cl: cl, recs: make(chan []*kgo.Record, 5), quit: make(chan struct{}), done: make(chan struct{})}
			s.consumers[franzTP{topic, p}] = pc
			go pc.consume(s.tr)
		}
	}
}

func (s *franzSplit) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	s.stop(revoked)
	_ = cl.CommitMarkedOffsets(ctx)
}

func (s *franzSplit) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) { s.stop(lost) }

// stop ends the partitions' goroutines and waits for them.
func (s *franzSplit) stop(parts map[string][]int32) {
	s.mu.Lock()
	var stopped []*franzPartition
	for topic, ps := range parts {
		for _, p := range ps {
			if pc := s.consumers[franzTP{topic, p}]; pc != nil {
				delete(s.consumers, franzTP{topic, p})
				close(pc.quit)
				stopped = append(stopped, pc)
			}
		}
	}
	s.mu.Unlock()
	for _, pc := range stopped {
		<-pc.done
	}
}

func (s *franzSplit) poll(ctx context.Context, cl *kgo.Client) error {
	for {
		fetches := cl.PollRecords(ctx, 10000)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			cl.AllowRebalance()
			return nil
		}
		var err error
		fetches.EachError(func(t string, p int32, e error) { err = fmt.Errorf("fetching %s/%d: %w", t, p, e) })
		if err != nil {
			cl.AllowRebalance()
			return err
		}
		s.mu.Lock()
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			s.consumers[franzTP{p.Topic, p.Partition}].recs <- p.Records
		})
		s.mu.Unlock()
		cl.AllowRebalance()
	}
}

// kafkaOrderlyNoopFranz consumes the overhead topic with orderly (ByKey)
// over adapters/orderlykgo with a handler that only counts.
func kafkaOrderlyNoopFranz(o *options, brokers []string, n int) (Result, error) {
	src, err := orderlykgo.NewSource(kafkaFranzOpts(brokers, "orderly-noop-franz", kafkaOverheadTopic), orderlykgo.WithLogger(quietLogger))
	if err != nil {
		return Result{}, err
	}
	tr := newTracker(n)
	h := orderly.HandlerFunc(func(context.Context, *orderly.Record) error {
		tr.begin()
		tr.end()
		return nil
	})
	if err := runEngine(src, h, tr, o.timeout, nil, orderly.WithMaxConcurrency(o.concurrency)); err != nil {
		return Result{}, err
	}
	secs := tr.seconds()
	return Result{
		Scenario: "kafka-overhead", Client: clientFranz, Mode: "orderly-key", Keys: kafkaOverheadKeys, Partitions: kafkaOverheadPartitions, Records: n,
		Concurrency: o.concurrency, Seconds: secs, RecordsPerSec: float64(n) / secs, StartupSeconds: tr.startup(),
	}, nil
}
