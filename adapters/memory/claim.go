package memory

import (
	"context"
	"fmt"
	"sync"

	"github.com/orderly-go/orderly"
)

// claim is the orderly.Claim the memory log grants: one partition, one
// member, one generation.
type claim struct {
	log       *Log
	group     *group
	member    *Member
	tp        TopicPartition
	partition *partition
	start     orderly.Position

	// records is sent on and closed only by the claim's fetcher.
	records chan []*orderly.Record
	// batch is the most records one batch carries: the fetch buffer.
	batch int
	// revoked is closed by revoke, under Log.mu: when the partition moves
	// away, the member leaves or crashes, or serve returns. It also stops
	// the fetcher.
	revoked chan struct{}

	// Guarded by Log.mu.
	revokedDone bool // revoked is closed
	ended       bool // serve returned: Commit fails with ErrClaimEnded
	fenced      bool // the member crashed: Commit fails with ErrFenced

	// pauseMu guards paused and pauseChanged. It is never held while
	// taking another lock.
	pauseMu sync.Mutex
	paused  bool
	// pauseChanged is closed, and replaced, whenever paused flips, so
	// that a fetcher waiting in a select sees the flip.
	pauseChanged chan struct{}
}

var _ orderly.Claim = (*claim)(nil)

func newClaim(l *Log, g *group, m *Member, tp TopicPartition, p *partition, start orderly.Position) *claim {
	return &claim{
		log:          l,
		group:        g,
		member:       m,
		tp:           tp,
		partition:    p,
		start:        start,
		records:      make(chan []*orderly.Record, 1),
		batch:        m.fetchBuffer,
		revoked:      make(chan struct{}),
		pauseChanged: make(chan struct{}),
	}
}

// Topic, Partition, Start, Records and Revoked are documented on
// orderly.Claim; none of them blocks.

func (c *claim) Topic() string                     { return c.tp.Topic }
func (c *claim) Partition() int32                  { return c.tp.Partition }
func (c *claim) Start() orderly.Position           { return c.start }
func (c *claim) Records() <-chan []*orderly.Record { return c.records }
func (c *claim) Revoked() <-chan struct{}          { return c.revoked }
func (c *claim) String() string                    { return fmt.Sprintf("claim %s of %s", c.tp, c.member.id) }

// pauseState returns whether the claim is paused and the channel that is
// closed when that changes.
func (c *claim) pauseState() (bool, <-chan struct{}) {
	c.pauseMu.Lock()
	defer c.pauseMu.Unlock()
	return c.paused, c.pauseChanged
}

// Pause stops the fetcher from sending more records: after Pause returns,
// at most the member's fetch buffer (WithFetchBuffer) more records arrive
// on Records, the one batch the fetcher had already placed in the channel.
// It never blocks and is idempotent.
func (c *claim) Pause() { c.setPaused(true) }

// Resume lets the fetcher continue after Pause. It never blocks and is
// idempotent.
func (c *claim) Resume() { c.setPaused(false) }

func (c *claim) setPaused(paused bool) {
	c.pauseMu.Lock()
	defer c.pauseMu.Unlock()
	if c.paused == paused {
		return
	}
	c.paused = paused
	close(c.pauseChanged)
	c.pauseChanged = make(chan struct{})
}

// Commit stores next and metadata as the group's position for the
// partition, before it returns. It fails with ctx's error if ctx is done,
// with ErrFenced if the member crashed and with ErrClaimEnded once serve
// returned; then nothing is stored. It is accepted after Revoked is closed
// (until serve returns), and a lower offset than the last commit is
// accepted too, as Kafka does.
func (c *claim) Commit(ctx context.Context, next int64, metadata string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.log.mu.Lock()
	defer c.log.mu.Unlock()
	switch {
	case c.fenced:
		return fmt.Errorf("commit %s at %d: %w", c.tp, next, ErrFenced)
	case c.ended:
		return fmt.Errorf("commit %s at %d: %w", c.tp, next, ErrClaimEnded)
	}
	c.group.commit(c.tp, orderly.Position{Offset: next, Metadata: metadata})
	return nil
}

// revoke closes revoked, once. Log.mu must be held for writing.
func (c *claim) revoke() {
	if !c.revokedDone {
		c.revokedDone = true
		close(c.revoked)
	}
}

// fetch copies the partition's records into c.records from Start on (from
// offset 0 when Start is NoOffset or negative) until the claim is revoked,
// then closes c.records. It runs on a goroutine of its own, started by
// Member.start and waited for by Member.Consume. It never polls: at the
// end of the partition it waits for the next append, while paused for
// Resume, and with a full channel for room; each wait also ends on revoke.
//
// Each batch is a slice of the log itself (zero copy) of at most c.batch
// records, whatever was there when it was read; the channel holds one
// batch, so at most c.batch records wait in it.
//
// An offset above the end of the partition waits until the partition
// grows to it, so the first record delivered is always at or above Start.
func (c *claim) fetch() {
	defer close(c.records)
	next := max(c.start.Offset, 0)
	paused, changed := c.pauseState()
	for {
		select {
		case <-changed: // a pause flipped while we waited for something else
			paused, changed = c.pauseState()
		default:
		}
		if paused {
			select {
			case <-changed:
				paused, changed = c.pauseState()
			case <-c.revoked:
				return
			}
			continue
		}
		batch, wake := c.partition.read(next)
		if len(batch) == 0 {
			select {
			case <-wake:
			case <-changed:
				paused, changed = c.pauseState()
			case <-c.revoked:
				return
			}
			continue
		}
		n := min(len(batch), c.batch)
		batch = batch[:n:n]
		// A select waiting here when Pause closes changed is woken by the
		// close and sends nothing. A select entered just after Pause may
		// still send one batch, but only into free buffer space: what
		// arrives after Pause returns never exceeds the buffer.
		select {
		case c.records <- batch:
			next += int64(len(batch))
		case <-changed:
			paused, changed = c.pauseState()
		case <-c.revoked:
			return
		}
	}
}
