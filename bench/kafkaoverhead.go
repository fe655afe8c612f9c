package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"time"

	"github.com/IBM/sarama"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/orderlysarama"
)

const (
	kafkaOverheadPartitions = 4
	kafkaOverheadKeys       = 10000
	kafkaOverheadValueBytes = 100
	kafkaOverheadTopic      = "overhead"
)

// runKafkaOverhead compares, on one kfake cluster and the same records,
// per client: a raw consumer group whose handler only marks offsets
// (sarama's ConsumerGroupHandler; franz-go's goroutine per partition) with
// orderly (ByKey, no-op handler) over that client's adapter. Each reads
// the topic from the start with a consumer group of its own; each orderly
// row's ratio is its records/s over its client's raw group's.
func runKafkaOverhead(o *options, out *printer) error {
	clients, err := kafkaClients(o)
	if err != nil {
		return err
	}
	n := o.recordsOr(1_000_000)
	c, err := newKafkaCluster(kafkaOverheadPartitions, kafkaOverheadTopic)
	if err != nil {
		return err
	}
	defer c.Close()
	keys := make([][]byte, kafkaOverheadKeys)
	for k := range keys {
		keys[k] = []byte("k" + strconv.Itoa(k))
	}
	values := randomValues(n, kafkaOverheadValueBytes, o.seed)
	produceStart := time.Now()
	err = kafkaProduce(c.ListenAddrs(), n, 4, func(i int) *sarama.ProducerMessage {
		return &sarama.ProducerMessage{Topic: kafkaOverheadTopic, Partition: int32(i % kafkaOverheadPartitions),
			Key: sarama.ByteEncoder(keys[i%kafkaOverheadKeys]), Value: sarama.ByteEncoder(values[i])}
	})
	if err != nil {
		return err
	}
	produced := time.Since(produceStart)
	values = nil
	runtime.GC()

	for i, client := range clients {
		rawRun, orderlyRun := kafkaRawGroup, kafkaOrderlyNoop
		if client == clientFranz {
			rawRun, orderlyRun = kafkaRawFranz, kafkaOrderlyNoopFranz
		}
		raw, err := rawRun(o, c.ListenAddrs(), n)
		if err != nil {
			return fmt.Errorf("kafka-overhead raw %s: %w", client, err)
		}
		if i == 0 {
			raw.Note = fmt.Sprintf("produced in %.1fs", produced.Seconds())
		}
		out.add(raw)
		runtime.GC()
		eng, err := orderlyRun(o, c.ListenAddrs(), n)
		if err != nil {
			return fmt.Errorf("kafka-overhead orderly over %s: %w", client, err)
		}
		eng.Ratio = eng.RecordsPerSec / raw.RecordsPerSec
		out.add(eng)
		runtime.GC()
	}
	out.flush(fmt.Sprintf("kafka-overhead: kfake in process (1 broker), %d records × %d-byte random values, no compression, %d partitions, %d keys; "+
		"ratio = orderly records/s ÷ the same client's raw group records/s (targets: sarama ≥ 0.85, franz-go ≥ 0.6); startup_s = Consume/Run called → first record",
		n, kafkaOverheadValueBytes, kafkaOverheadPartitions, kafkaOverheadKeys))
	return nil
}

// kafkaRawGroup consumes the topic with a plain sarama consumer group whose
// ConsumeClaim marks each message's offset and does nothing else (sarama
// auto-commits the marks).
func kafkaRawGroup(o *options, brokers []string, n int) (Result, error) {
	cfg := kafkaConsumerConfig()
	group, err := sarama.NewConsumerGroup(brokers, "raw-sarama", cfg)
	if err != nil {
		return Result{}, err
	}
	defer group.Close()
	go func() {
		for range group.Errors() {
		}
	}()
	tr := newTracker(n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := &markingHandler{tr: tr}
	consumed := make(chan error, 1)
	tr.t0 = time.Now()
	go func() {
		for ctx.Err() == nil {
			if err := group.Consume(ctx, []string{kafkaOverheadTopic}, h); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
				consumed <- err
				return
			}
		}
		consumed <- nil
	}()
	timer := time.NewTimer(o.timeout)
	defer timer.Stop()
	select {
	case <-tr.done:
	case err := <-consumed:
		return Result{}, fmt.Errorf("consumer group stopped after %d of %d records: %v", tr.count.Load(), n, err)
	case <-timer.C:
		return Result{}, fmt.Errorf("%w: %d of %d records after %v", errStalled, tr.count.Load(), n, o.timeout)
	}
	cancel()
	<-consumed
	secs := tr.seconds()
	return Result{
		Scenario: "kafka-overhead", Client: clientSarama, Mode: "sarama-raw", Partitions: kafkaOverheadPartitions, Records: n,
		Seconds: secs, RecordsPerSec: float64(n) / secs, StartupSeconds: tr.startup(),
	}, nil
}

// markingHandler is the raw group's handler: mark and count.
type markingHandler struct{ tr *tracker }

func (h *markingHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *markingHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *markingHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		h.tr.begin()
		sess.MarkMessage(m, "")
		h.tr.end()
	}
	return nil
}

// kafkaOrderlyNoop consumes the topic with orderly (ByKey) over
// adapters/orderlysarama with a handler that only counts.
func kafkaOrderlyNoop(o *options, brokers []string, n int) (Result, error) {
	src, err := orderlysarama.NewSource(brokers, "orderly-noop", []string{kafkaOverheadTopic}, kafkaConsumerConfig(),
		orderlysarama.WithLogger(quietLogger))
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
		Scenario: "kafka-overhead", Client: clientSarama, Mode: "orderly-key", Keys: kafkaOverheadKeys, Partitions: kafkaOverheadPartitions, Records: n,
		Concurrency: o.concurrency, Seconds: secs, RecordsPerSec: float64(n) / secs, StartupSeconds: tr.startup(),
	}, nil
}
