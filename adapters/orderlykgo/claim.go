package orderlykgo

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderly-go/orderly"
)

// maxBatch is the most records one batch on Records carries: the
// forwarder converts what the claim holds in runs of up to this many, so
// that the engine's dispatcher gets records in runs rather than one
// channel send per record, and one conversion's allocation stays small.
const maxBatch = 512

// claim is the orderly.Claim for one partition assigned to this member, from
// the moment kgo fetched its committed offset until the engine is done with
// it.
//
// Goroutines: the serve goroutine (started by Source.grant) runs the
// engine and then end. run starts forward, which converts the records the
// poll loop pushed into batches for Records; end waits for it.
type claim struct {
	src       *Source
	cl        *kgo.Client
	topic     string
	partition int32
	start     orderly.Position
	log       *slog.Logger
	tp        map[string][]int32 // {topic: {partition}} for pause and resume; read-only

	records   chan []*orderly.Record // sent on and closed by forward only
	revoked   chan struct{}          // closed by revoke, once
	revoke    func()
	done      chan struct{} // closed by end, after serve returned
	ended     atomic.Bool   // serve returned: commits fail with ErrClaimEnded
	fenced    atomic.Bool   // the partition was lost: commits fail with ErrFenced, unsent
	endOffset atomic.Int64  // high watermark (last stable offset under read_committed); -1 unknown
	workers   sync.WaitGroup

	// commitMu keeps this claim's commits in the order they were made,
	// retries included, so that a retried commit never lands after a
	// later one. It is held around kgo commit calls; CommitBatch takes
	// several in claimOrder.
	commitMu sync.Mutex

	// mu guards the fields below and keeps each kgo PauseFetchPartitions
	// or ResumeFetchPartitions call in order with the flag it sets. Held
	// only briefly; those kgo calls take kgo's pause lock and nothing
	// that waits for us.
	mu           sync.Mutex
	queue        [][]*kgo.Record // fetched, not yet converted: the record slices of kgo's fetches, in order
	queued       int             // records in queue
	last         int64           // offset of the last record queued; -1 before the first
	enginePaused bool            // Claim.Pause without Resume
	full         bool            // the queue reached the claim buffer
	fetchPaused  bool            // kgo has the partition paused (enginePaused || full)
	wake         chan struct{}   // cap 1: forward waits on it for records

	rereads rereads // re-read streams (ReadFrom)
}

var (
	_ orderly.Claim        = (*claim)(nil)
	_ orderly.EndOffsetter = (*claim)(nil)
)

func newClaim(s *Source, cl *kgo.Client, topic string, partition int32, start orderly.Position) *claim {
	c := &claim{
		src: s, cl: cl, topic: topic, partition: partition, start: start,
		log:     s.log.With(slog.String("topic", topic), slog.Int("partition", int(partition))),
		tp:      map[string][]int32{topic: {partition}},
		records: make(chan []*orderly.Record, 1),
		revoked: make(chan struct{}),
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		last:    -1,
	}
	c.revoke = sync.OnceFunc(func() { close(c.revoked) })
	c.endOffset.Store(-1)
	return c
}

// Topic, Partition, Start, Records and Revoked are documented on
// orderly.Claim; none of them blocks.

func (c *claim) Topic() string                     { return c.topic }
func (c *claim) Partition() int32                  { return c.partition }
func (c *claim) Start() orderly.Position           { return c.start }
func (c *claim) Records() <-chan []*orderly.Record { return c.records }
func (c *claim) Revoked() <-chan struct{}          { return c.revoked }

// EndOffset is the partition's high watermark as of the last fetch that
// returned records (its last stable offset under
// kgo.FetchIsolationLevel(kgo.ReadCommitted())), or -1 before that. It
// makes the claim an orderly.EndOffsetter, so engine stats report lag.
func (c *claim) EndOffset() int64 { return c.endOffset.Load() }

// Pause stops kgo from fetching the partition (PauseFetchPartitions):
// kgo drops what it had buffered for it and fetches it again after
// Resume; only the records this claim already holds (up to the claim
// buffer plus one fetch) may still arrive. Resume undoes it. Both are
// idempotent, never block and only take kgo's pause lock briefly.
func (c *claim) Pause() { c.setEnginePaused(true) }

// Resume lets kgo fetch the partition again after Pause, unless the claim
// holds a full claim buffer.
func (c *claim) Resume() { c.setEnginePaused(false) }

func (c *claim) setEnginePaused(paused bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.enginePaused = paused
	c.applyPauseLocked()
}

// applyPauseLocked pauses or resumes kgo's fetching of the partition so
// that it is paused exactly while the engine asked for it or the queue is
// full. c.mu is held.
func (c *claim) applyPauseLocked() {
	want := (c.enginePaused || c.full) && !c.ended.Load()
	if want == c.fetchPaused {
		return
	}
	c.fetchPaused = want
	if want {
		c.cl.PauseFetchPartitions(c.tp)
	} else {
		c.cl.ResumeFetchPartitions(c.tp)
	}
}

// Commit stores next and metadata as the group's committed position for
// the partition before it returns: one OffsetCommit through kgo (see
// Source.commit). A nil error means the coordinator acknowledged it. An
// error means it may not be stored: ctx's error, ErrClaimEnded once serve
// returned, an error wrapping ErrFenced once the partition was lost or the
// coordinator says this member is not in the current generation, or the
// last retriable error (wrapping kgo's) after the retries. Commit may be
// called after Revoked is closed, until serve returns. It blocks until the
// commit is answered, kgo's retries are spent or ctx is done, and is safe
// for concurrent use.
func (c *claim) Commit(ctx context.Context, next int64, metadata string) error {
	reqs := []*commitRequest{{c: c, next: next, metadata: metadata}}
	c.src.commit(ctx, reqs)
	return reqs[0].err
}

// run starts the forwarder.
func (c *claim) run() {
	c.workers.Add(1)
	go func() {
		defer c.workers.Done()
		c.forward()
	}()
}

// push queues records the poll loop fetched for the partition. Records
// at or below the last one queued are dropped (kgo never sends them; the
// check keeps the Records contract even if it did). When the queue
// reaches the claim buffer, fetching pauses until forward drained half.
func (c *claim) push(recs []*kgo.Record) {
	c.mu.Lock()
	if c.ended.Load() || c.isRevoked() {
		c.mu.Unlock()
		return
	}
	for len(recs) > 0 && recs[0].Offset <= c.last {
		c.log.Warn("orderlykgo: record at or below the last delivered dropped", slog.Int64("offset", recs[0].Offset), slog.Int64("last", c.last))
		recs = recs[1:]
	}
	if len(recs) == 0 {
		c.mu.Unlock()
		return
	}
	c.queue = append(c.queue, recs)
	c.queued += len(recs)
	c.last = recs[len(recs)-1].Offset
	if c.queued >= c.src.opts.claimBuffer && !c.full {
		c.full = true
		c.applyPauseLocked()
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *claim) isRevoked() bool {
	select {
	case <-c.revoked:
		return true
	default:
		return false
	}
}

// take waits for queued records and returns up to maxBatch of them, all
// from one fetch, or nil once the claim is revoked.
func (c *claim) take() []*kgo.Record {
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			first := c.queue[0]
			n := min(len(first), maxBatch)
			chunk := first[:n:n]
			if n == len(first) {
				c.queue[0] = nil
				c.queue = c.queue[1:]
			} else {
				c.queue[0] = first[n:]
			}
			c.queued -= n
			if c.full && c.queued <= c.src.opts.claimBuffer/2 {
				c.full = false
				c.applyPauseLocked()
			}
			c.mu.Unlock()
			return chunk
		}
		c.mu.Unlock()
		select {
		case <-c.wake:
		case <-c.revoked:
			return nil
		}
	}
}

// forward converts queued records into batches on Records until the claim
// is revoked, then closes Records.
func (c *claim) forward() {
	defer close(c.records)
	for {
		chunk := c.take()
		if chunk == nil {
			return
		}
		select {
		case c.records <- toBatch(chunk):
		case <-c.revoked:
			return
		}
	}
}

// end runs after serve returned: commits fail from now on, forward stops,
// re-read streams left open are closed, the queue is dropped and a pause is lifted so that it does not outlive
// the claim (kgo keeps paused partitions paused across assignments).
func (c *claim) end() {
	c.ended.Store(true)
	c.revoke()
	c.closeRereads()
	c.workers.Wait()
	c.mu.Lock()
	c.queue, c.queued = nil, 0
	if c.fetchPaused {
		c.fetchPaused = false
		c.cl.ResumeFetchPartitions(c.tp)
	}
	c.mu.Unlock()
	close(c.done)
	c.log.Debug("orderlykgo: claim ended")
}

// toBatch converts kgo records into orderly records without copying their
// keys, values or header values: kgo decodes each fetch into slices of its
// own and never touches them again. The batch's records share one
// allocation, and their headers another.
func toBatch(rs []*kgo.Record) []*orderly.Record {
	recs := make([]orderly.Record, len(rs))
	batch := make([]*orderly.Record, len(rs))
	nh := 0
	for _, r := range rs {
		nh += len(r.Headers)
	}
	var headers []orderly.Header
	if nh > 0 {
		headers = make([]orderly.Header, nh)
	}
	for i, r := range rs {
		recs[i] = orderly.Record{
			Topic:     r.Topic,
			Partition: r.Partition,
			Offset:    r.Offset,
			Key:       r.Key,
			Value:     r.Value,
			Timestamp: r.Timestamp,
		}
		if k := len(r.Headers); k > 0 {
			hs := headers[:k:k] // full slice expression: an append by the handler cannot reach the next record's
			headers = headers[k:]
			for j, h := range r.Headers {
				hs[j] = orderly.Header(h)
			}
			recs[i].Headers = hs
		}
		batch[i] = &recs[i]
	}
	return batch
}
