package orderlysarama

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/IBM/sarama"

	"github.com/orderly-go/orderly"
)

// maxBatch is the most records one batch on Records carries. The
// forwarder takes what sarama has at hand, up to this many, so the engine's
// dispatcher gets records in runs rather than one goroutine switch per
// record; Records holds one batch, small next to sarama's own
// Consumer.ChannelBufferSize.
const maxBatch = 64

// claim is the orderly.Claim for one sarama ConsumerGroupClaim.
//
// Goroutines: ConsumeClaim's goroutine runs serve (the engine) and then
// end. run starts two more, both waited for by end: forward converts
// sarama messages into records, and watch closes revoked when the session
// ends or the partition consumer shuts down.
type claim struct {
	h         *handler
	sess      sarama.ConsumerGroupSession
	sc        sarama.ConsumerGroupClaim
	topic     string
	partition int32
	start     orderly.Position
	log       *slog.Logger
	tp        map[string][]int32 // {topic: {partition}} for Pause and Resume; read-only

	records chan []*orderly.Record // sent on and closed by forward only
	revoked chan struct{}          // closed by revoke, once
	revoke  func()
	ended   atomic.Bool // serve returned: Commit fails with ErrClaimEnded
	workers sync.WaitGroup
	// sending holds one token while an OffsetCommit of the claim is in
	// flight, abandoned ones included: see send.
	sending chan struct{}

	// pauseMu guards paused and keeps each group Pause/Resume call
	// ordered with the flag it sets. Held only around those calls, which
	// take the sarama consumer's lock briefly; it is taken before that lock
	// and never while holding another of ours.
	pauseMu sync.Mutex
	paused  bool

	rereads rereads // re-read streams (ReadFrom)
}

var _ orderly.Claim = (*claim)(nil)

func newClaim(h *handler, sess sarama.ConsumerGroupSession, sc sarama.ConsumerGroupClaim) *claim {
	c := &claim{
		h: h, sess: sess, sc: sc,
		topic: sc.Topic(), partition: sc.Partition(),
		log:     h.src.log.With(slog.String("topic", sc.Topic()), slog.Int("partition", int(sc.Partition()))),
		tp:      map[string][]int32{sc.Topic(): {sc.Partition()}},
		records: make(chan []*orderly.Record, 1),
		revoked: make(chan struct{}),
		sending: make(chan struct{}, 1),
	}
	c.revoke = sync.OnceFunc(func() { close(c.revoked) })
	return c
}

func (c *claim) isRevoked() bool {
	select {
	case <-c.revoked:
		return true
	default:
		return false
	}
}

// Topic, Partition, Start, Records and Revoked are documented on
// orderly.Claim; none of them blocks.

func (c *claim) Topic() string                     { return c.topic }
func (c *claim) Partition() int32                  { return c.partition }
func (c *claim) Start() orderly.Position           { return c.start }
func (c *claim) Records() <-chan []*orderly.Record { return c.records }
func (c *claim) Revoked() <-chan struct{}          { return c.revoked }

// Pause stops sarama from fetching the partition (ConsumerGroup.Pause):
// the fetch in flight and what sarama already buffered (up to
// Consumer.ChannelBufferSize messages, plus this claim's Records batch)
// may still arrive. Resume undoes it. Both are idempotent and only take
// the sarama consumer's lock briefly.
func (c *claim) Pause() { c.setPaused(true) }

// Resume lets sarama fetch the partition again after Pause.
func (c *claim) Resume() { c.setPaused(false) }

func (c *claim) setPaused(paused bool) {
	c.pauseMu.Lock()
	defer c.pauseMu.Unlock()
	if c.paused == paused || c.ended.Load() {
		return
	}
	c.paused = paused
	if paused {
		c.h.group.Pause(c.tp)
	} else {
		c.h.group.Resume(c.tp)
	}
}

// Commit stores next and metadata as the group's committed position for
// the partition before it returns, with one OffsetCommit request to the
// group coordinator (see commit). A nil error means the coordinator
// acknowledged the commit for this partition. An error means it may not be
// stored: ctx's error (Commit returns by ctx's deadline whatever the
// coordinator does; a request abandoned then may still be stored, before
// any later Commit of the claim), ErrClaimEnded once serve returned, an
// error wrapping ErrFenced when the coordinator rejects this member's
// generation and its session is over, or the last retriable error
// (wrapping sarama's) after the retries. Commit may be called after
// Revoked is closed, until serve returns.
func (c *claim) Commit(ctx context.Context, next int64, metadata string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.ended.Load() {
		return ErrClaimEnded
	}
	return c.commit(ctx, next, metadata)
}

// run starts the claim's forward and watch goroutines.
func (c *claim) run() {
	// errs is the partition consumer's error channel: sarama closes it
	// right after Messages, once the claim is released, so its closing
	// tells a revoke even when forward is stuck on a full Records channel
	// and cannot see Messages close. sarama reads it too (and forwards to
	// the group's Errors channel); each error reaches one of the two
	// readers and is logged either way.
	var errs <-chan *sarama.ConsumerError
	if pc, ok := c.sc.(interface {
		Errors() <-chan *sarama.ConsumerError
	}); ok {
		errs = pc.Errors()
	}
	c.workers.Add(2)
	go func() {
		defer c.workers.Done()
		c.watch(c.sess.Context().Done(), errs)
	}()
	go func() {
		defer c.workers.Done()
		c.forward()
	}()
}

// watch revokes the claim when the session ends (an eager rebalance,
// shutdown, a lost session) or the partition consumer closes (a
// cooperative revoke), logging the partition consumer's errors meanwhile.
func (c *claim) watch(sessionDone <-chan struct{}, errs <-chan *sarama.ConsumerError) {
	for {
		select {
		case <-sessionDone:
			c.log.Debug("orderlysarama: claim revoked: session ended")
			c.revoke()
			return
		case err, ok := <-errs:
			if !ok {
				c.log.Debug("orderlysarama: claim revoked: partition consumer closed")
				c.revoke()
				return
			}
			c.log.Warn("orderlysarama: partition consumer error", slog.Any("error", err.Err))
		case <-c.revoked:
			return
		}
	}
}

// forward converts sarama messages into batches of records until Messages
// closes (then it revokes the claim) or the claim is revoked, then closes
// Records. A batch is one message it waited for plus what sarama has
// already buffered behind it, up to maxBatch.
func (c *claim) forward() {
	defer close(c.records)
	msgs := c.sc.Messages()
	for {
		var (
			m  *sarama.ConsumerMessage
			ok bool
		)
		select {
		case m, ok = <-msgs:
		case <-c.revoked:
			return
		}
		if !ok {
			c.log.Debug("orderlysarama: claim revoked: messages closed")
			c.revoke()
			return
		}
		batch, closed := c.gather(m, msgs)
		select {
		case c.records <- batch:
		case <-c.revoked:
			return
		}
		if closed {
			c.log.Debug("orderlysarama: claim revoked: messages closed")
			c.revoke()
			return
		}
	}
}

// gather makes a batch of first and the messages msgs holds now, up to
// maxBatch, without waiting. The records of a batch share one allocation.
// closed reports that msgs was found closed.
func (c *claim) gather(first *sarama.ConsumerMessage, msgs <-chan *sarama.ConsumerMessage) (batch []*orderly.Record, closed bool) {
	ms := make([]*sarama.ConsumerMessage, 1, maxBatch)
	ms[0] = first
more:
	for len(ms) < maxBatch {
		select {
		case m, ok := <-msgs:
			if !ok {
				closed = true
				break more
			}
			ms = append(ms, m)
		default:
			break more
		}
	}
	recs := make([]orderly.Record, len(ms))
	batch = make([]*orderly.Record, len(ms))
	for i, m := range ms {
		toRecord(&recs[i], m)
		batch[i] = &recs[i]
	}
	return batch, closed
}

// end runs after serve returned: commits fail from now on, the claim's
// goroutines stop, re-read streams left open are closed, and a pause is lifted so that it does not outlive the
// claim (sarama remembers paused partitions and would start the
// partition's next claim paused).
func (c *claim) end() {
	c.ended.Store(true)
	c.revoke()
	c.closeRereads()
	c.workers.Wait()
	c.pauseMu.Lock()
	defer c.pauseMu.Unlock()
	if c.paused {
		c.paused = false
		c.h.group.Resume(c.tp)
	}
}

// toRecord fills r from m without copying its key, value or header values:
// sarama decodes each message into slices of its own and never touches
// them again. For a message with headers it makes the headers slice and
// one string holding every header key.
func toRecord(r *orderly.Record, m *sarama.ConsumerMessage) {
	*r = orderly.Record{
		Topic:     m.Topic,
		Partition: m.Partition,
		Offset:    m.Offset,
		Key:       m.Key,
		Value:     m.Value,
		Timestamp: m.Timestamp,
	}
	if len(m.Headers) > 0 {
		r.Headers = toHeaders(m.Headers)
	}
}

func toHeaders(hs []*sarama.RecordHeader) []orderly.Header {
	n := 0
	for _, h := range hs {
		if h != nil {
			n += len(h.Key)
		}
	}
	var b strings.Builder
	b.Grow(n)
	for _, h := range hs {
		if h != nil {
			b.Write(h.Key)
		}
	}
	keys := b.String()
	out := make([]orderly.Header, 0, len(hs))
	off := 0
	for _, h := range hs {
		if h == nil {
			continue
		}
		out = append(out, orderly.Header{Key: keys[off : off+len(h.Key)], Value: h.Value})
		off += len(h.Key)
	}
	return out
}

// hold keeps the partition, unserved, until sarama releases it (Messages
// closes: a revoke or the session's end), discarding what was fetched:
// the source is stopping, and nothing of the claim is handled or
// committed any more. The partition is paused first so that sarama stops
// fetching it.
func (c *claim) hold() {
	c.h.group.Pause(c.tp)
	for range c.sc.Messages() {
	}
}
