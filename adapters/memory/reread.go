package memory

import (
	"context"
	"fmt"
	"sync"

	"github.com/orderly-go/orderly"
)

var _ orderly.Rereader = (*claim)(nil)

// ReadFrom opens a stream of the claim's partition from offset on (see
// orderly.Rereader): a reader of the log itself, independent of Records
// and of Pause, with no goroutine of its own. Each batch Next returns is a
// zero-copy slice of the log of at most the member's fetch buffer. A
// negative offset reads from 0. ReadFrom never blocks; it fails with
// orderly.ErrStreamClosed once the claim is revoked, and with ctx's error
// when ctx is done.
func (c *claim) ReadFrom(ctx context.Context, offset int64) (orderly.RecordStream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case <-c.revoked:
		return nil, fmt.Errorf("read %s from %d: %w", c.tp, offset, orderly.ErrStreamClosed)
	default:
	}
	return &stream{c: c, next: max(offset, 0), closed: make(chan struct{})}, nil
}

// stream is a re-read of a claim's partition.
type stream struct {
	c      *claim
	next   int64 // only Next reads and writes it; Next is not called concurrently with itself
	closed chan struct{}
	close  sync.Once
}

// Next returns the records at the stream's position, up to the fetch
// buffer, waiting for an append at the end of the partition. It returns
// orderly.ErrStreamClosed after Close or the claim's revoke, and ctx's
// error when ctx is done.
func (s *stream) Next(ctx context.Context) ([]*orderly.Record, error) {
	for {
		select {
		case <-s.closed:
			return nil, orderly.ErrStreamClosed
		case <-s.c.revoked:
			return nil, orderly.ErrStreamClosed
		default:
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		batch, wake := s.c.partition.read(s.next)
		if n := min(len(batch), s.c.batch); n > 0 {
			s.next += int64(n)
			return batch[:n:n], nil
		}
		select {
		case <-wake:
		case <-s.closed:
		case <-s.c.revoked:
		case <-ctx.Done():
		}
	}
}

// Close ends the stream; a Next blocked in another goroutine returns. It
// never blocks and is idempotent.
func (s *stream) Close() error {
	s.close.Do(func() { close(s.closed) })
	return nil
}
