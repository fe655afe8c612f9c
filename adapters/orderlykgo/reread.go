package orderlykgo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

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

// rereadOpts are the options of a re-read's client: the caller's (brokers,
// TLS, SASL, hooks), without the group and its topics, consuming the one
// partition directly from offset. If the log no longer has offset, the
// client starts at the partition's first record (the engine skips the
// records it finds gone).
func (s *Source) rereadOpts(topic string, partition int32, offset int64) []kgo.Opt {
	kopts := append(slices.Clone(s.kopts),
		kgo.ConsumerGroup(""),
		kgo.ConsumeTopics(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(offset)}}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if !s.gc.ownLogger {
		kopts = append(kopts, kgo.WithLogger(newKgoLogger(s.opts.logger)))
	}
	return kopts
}

// ReadFrom opens a stream of the claim's partition from offset (see
// orderly.Rereader): a kgo client of its own, with the Source's options
// but no group, consuming the partition directly from offset. It is not
// paused with the claim. It does not block (the client connects when the
// stream is first read); a claim that ended fails with
// orderly.ErrStreamClosed.
//
// While it is open the stream holds what its client fetched and Next has
// not returned yet: at most one fetch of the partition
// (kgo.FetchMaxPartitionBytes, 1 MiB by default).
func (c *claim) ReadFrom(ctx context.Context, offset int64) (orderly.RecordStream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.rereads.mu.Lock()
	defer c.rereads.mu.Unlock()
	if c.rereads.done || c.isRevoked() {
		return nil, fmt.Errorf("read %s/%d from %d: %w", c.topic, c.partition, offset, orderly.ErrStreamClosed)
	}
	cl, err := kgo.NewClient(c.src.rereadOpts(c.topic, c.partition, offset)...)
	if err != nil {
		return nil, fmt.Errorf("orderlykgo: read %s/%d from %d: %w", c.topic, c.partition, offset, err)
	}
	s := &stream{c: c, cl: cl, next: offset}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if c.rereads.open == nil {
		c.rereads.open = make(map[*stream]struct{})
	}
	c.rereads.open[s] = struct{}{}
	c.src.rereading.Add(1) // until the client is closed
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

// stream is one re-read: a direct-consuming client and the records it
// polled that Next has not returned yet.
type stream struct {
	c      *claim
	cl     *kgo.Client
	ctx    context.Context // done once the stream is closed
	cancel context.CancelFunc
	once   sync.Once

	// Owned by Next.
	queue []*kgo.Record
	next  int64 // offsets below were returned or are queued
}

// Next returns up to 512 records of the partition, polling the client
// when it holds none. It returns orderly.ErrStreamClosed after Close or
// the claim's revoke, ctx's error when ctx is done, and the client's fetch
// errors (the engine then opens a new stream later).
func (s *stream) Next(ctx context.Context) ([]*orderly.Record, error) {
	for len(s.queue) == 0 {
		if err := s.closedErr(); err != nil {
			return nil, err
		}
		// The poll ends with ctx, with Close and with the claim's revoke.
		pctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(s.ctx, cancel)
		// Owned by this call: ends when pctx is done, at the latest by
		// the cancel below.
		go func() {
			select {
			case <-s.c.revoked:
				cancel()
			case <-pctx.Done():
			}
		}()
		fetches := s.cl.PollRecords(pctx, maxBatch)
		stop()
		cancel()
		if err := s.closedErr(); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) {
			if ferr == nil && !errors.Is(err, context.Canceled) {
				ferr = err
			}
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if p.Topic != s.c.topic || p.Partition != s.c.partition {
				return
			}
			for _, r := range p.Records {
				if r.Offset >= s.next {
					s.queue = append(s.queue, r)
					s.next = r.Offset + 1
				}
			}
		})
		if len(s.queue) == 0 && ferr != nil {
			return nil, fmt.Errorf("orderlykgo: re-read of %s/%d: %w", s.c.topic, s.c.partition, ferr)
		}
	}
	n := min(len(s.queue), maxBatch)
	batch := toBatch(s.queue[:n])
	clear(s.queue[:n])
	s.queue = s.queue[n:]
	return batch, nil
}

// closedErr is ErrStreamClosed once the stream is closed or its claim
// revoked.
func (s *stream) closedErr() error {
	if s.ctx.Err() != nil || s.c.isRevoked() {
		return orderly.ErrStreamClosed
	}
	return nil
}

// Close ends the stream: a Next blocked in another goroutine returns at
// once, and the client is closed in the background. It never blocks and
// is idempotent.
func (s *stream) Close() error {
	s.once.Do(func() {
		s.cancel()
		s.c.rereads.mu.Lock()
		delete(s.c.rereads.open, s)
		s.c.rereads.mu.Unlock()
		// Owned by the Source: Consume waits for it (rereading).
		go func() {
			defer s.c.src.rereading.Done()
			s.cl.Close()
		}()
	})
	return nil
}
