package orderlysarama

import (
	"context"
	"fmt"
	"sync"

	"github.com/IBM/sarama"

	"github.com/orderly-go/orderly"
)

var _ orderly.Rereader = (*claim)(nil)

// rereads are a claim's open re-read streams, so that end can close any the
// engine left open. Guarded by mu.
type rereads struct {
	mu   sync.Mutex
	open map[*stream]struct{}
	done bool // the claim ended: no new stream
}

// ReadFrom opens a stream of the claim's partition from offset (see
// orderly.Rereader): a sarama partition consumer outside the group, made by
// a consumer of its own from the Source's client, so it is not paused with
// the claim and shares the client's connections. It blocks while sarama
// asks the partition's leader for its offsets, or until ctx is done. An
// offset the log no longer has fails with sarama.ErrOffsetOutOfRange; a
// claim that ended fails with orderly.ErrStreamClosed.
//
// While it is open the stream holds up to Consumer.ChannelBufferSize
// messages and one fetch response (Consumer.Fetch.Default bytes), like a
// claim.
func (c *claim) ReadFrom(ctx context.Context, offset int64) (orderly.RecordStream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h := c.h
	c.rereads.mu.Lock()
	if c.rereads.done || c.isRevoked() {
		c.rereads.mu.Unlock()
		return nil, fmt.Errorf("read %s/%d from %d: %w", c.topic, c.partition, offset, orderly.ErrStreamClosed)
	}
	h.rereads.Add(1) // until the stream's consumer is closed
	c.rereads.mu.Unlock()

	type opened struct {
		consumer sarama.Consumer
		pc       sarama.PartitionConsumer
		err      error
	}
	ch := make(chan opened, 1)
	// Owned by ReadFrom, or, once ReadFrom gave up on it (ctx done), by
	// itself: it closes what it opened. Consume waits for it (h.rereads).
	go func() {
		consumer, err := sarama.NewConsumerFromClient(h.client)
		if err != nil {
			ch <- opened{err: err}
			return
		}
		pc, err := consumer.ConsumePartition(c.topic, c.partition, offset)
		if err != nil {
			_ = consumer.Close()
			ch <- opened{err: err}
			return
		}
		ch <- opened{consumer: consumer, pc: pc}
	}()
	var o opened
	select {
	case o = <-ch:
	case <-ctx.Done():
		// Owned by the handler (h.rereads): closes the consumer opened
		// too late.
		go func() {
			if o := <-ch; o.err == nil {
				(&stream{h: h, consumer: o.consumer, pc: o.pc}).release()
			} else {
				h.rereads.Done()
			}
		}()
		return nil, ctx.Err()
	}
	if o.err != nil {
		h.rereads.Done()
		return nil, fmt.Errorf("orderlysarama: read %s/%d from %d: %w", c.topic, c.partition, offset, o.err)
	}
	s := &stream{c: c, h: h, consumer: o.consumer, pc: o.pc, closed: make(chan struct{})}
	c.rereads.mu.Lock()
	if c.rereads.done { // the claim ended meanwhile
		c.rereads.mu.Unlock()
		s.release()
		return nil, fmt.Errorf("read %s/%d from %d: %w", c.topic, c.partition, offset, orderly.ErrStreamClosed)
	}
	if c.rereads.open == nil {
		c.rereads.open = make(map[*stream]struct{})
	}
	c.rereads.open[s] = struct{}{}
	c.rereads.mu.Unlock()
	return s, nil
}

// closeRereads closes the streams the engine left open and refuses new
// ones; the claim's end calls it.
func (c *claim) closeRereads() {
	c.rereads.mu.Lock()
	c.rereads.done = true
	open := c.rereads.open
	c.rereads.open = nil
	c.rereads.mu.Unlock()
	for s := range open {
		_ = s.Close()
	}
}

// stream is one re-read: a partition consumer and the consumer it belongs
// to.
type stream struct {
	c        *claim
	h        *handler
	consumer sarama.Consumer
	pc       sarama.PartitionConsumer
	closed   chan struct{}
	once     sync.Once
}

// Next returns the next messages as records: one it waits for and what
// sarama has buffered behind it, up to 64. It returns
// orderly.ErrStreamClosed after Close or the claim's revoke, ctx's error
// when ctx is done, and the partition consumer's errors (the engine then
// opens a new stream later).
func (s *stream) Next(ctx context.Context) ([]*orderly.Record, error) {
	select {
	case <-s.closed:
		return nil, orderly.ErrStreamClosed
	default:
	}
	msgs := s.pc.Messages()
	select {
	case <-s.closed:
		return nil, orderly.ErrStreamClosed
	case <-s.c.revoked:
		return nil, orderly.ErrStreamClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	case m, ok := <-msgs:
		if !ok {
			return nil, fmt.Errorf("orderlysarama: re-read of %s/%d ended: %w", s.c.topic, s.c.partition, orderly.ErrStreamClosed)
		}
		batch, _ := s.c.gather(m, msgs) // a closed channel shows at the next call
		return batch, nil
	case err, ok := <-s.pc.Errors():
		if !ok {
			return nil, fmt.Errorf("orderlysarama: re-read of %s/%d ended: %w", s.c.topic, s.c.partition, orderly.ErrStreamClosed)
		}
		return nil, fmt.Errorf("orderlysarama: re-read of %s/%d: %w", s.c.topic, s.c.partition, err.Err)
	}
}

// Close ends the stream: a Next blocked in another goroutine returns at
// once, and the partition consumer and its consumer are closed in the
// background. It never blocks and is idempotent.
func (s *stream) Close() error {
	s.once.Do(func() {
		close(s.closed)
		s.c.rereads.mu.Lock()
		delete(s.c.rereads.open, s)
		s.c.rereads.mu.Unlock()
		s.release()
	})
	return nil
}

// release closes the partition consumer and its consumer on a goroutine of
// their own, owned by the handler: Consume waits for it (h.rereads) before
// it closes the client.
func (s *stream) release() {
	s.pc.AsyncClose()
	go func() {
		defer s.h.rereads.Done()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range s.pc.Errors() { // drained until sarama closes it
			}
		}()
		for range s.pc.Messages() { // drained until sarama closes it
		}
		wg.Wait()
		_ = s.consumer.Close()
	}()
}
