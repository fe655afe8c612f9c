package adaptertest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/committer"
)

// observedMember wraps a Member so that the engine's serve function gets
// observedClaims: the observer sees every claim granted and returned and
// every commit the engine makes, with its outcome.
type observedMember struct {
	Member
	id  string
	obs *observer
}

func (m *observedMember) Consume(ctx context.Context, serve func(orderly.Claim)) error {
	return m.Member.Consume(ctx, func(c orderly.Claim) {
		oc := m.obs.granted(m.id, c)
		defer m.obs.returned(oc)
		if rr, ok := c.(orderly.Rereader); ok {
			serve(rereadingClaim{oc, rr}) // the engine spills keys over their buffer
			return
		}
		serve(oc)
	})
}

// rereadingClaim is an observedClaim that keeps the adapter's Rereader.
type rereadingClaim struct {
	*observedClaim
	rr orderly.Rereader
}

func (c rereadingClaim) ReadFrom(ctx context.Context, offset int64) (orderly.RecordStream, error) {
	return c.rr.ReadFrom(ctx, offset)
}

// Paused passes PauseReporter through, if the adapter has it.
func (m *observedMember) Paused(topic string, partition int32) bool {
	if pr, ok := m.Member.(PauseReporter); ok {
		return pr.Paused(topic, partition)
	}
	return false
}

// observedClaim is a Claim whose commits are recorded.
type observedClaim struct {
	orderly.Claim
	obs    *observer
	member string
	// serving is true from grant until serve returns. Guarded by obs.mu.
	serving bool
}

func (c *observedClaim) Commit(ctx context.Context, next int64, metadata string) error {
	err := c.Claim.Commit(ctx, next, metadata)
	c.obs.committed(c, orderly.Position{Offset: next, Metadata: metadata}, err)
	return err
}

func (c *observedClaim) revoked() bool {
	select {
	case <-c.Revoked():
		return true
	default:
		return false
	}
}

// commitEvent is one Commit call, noted when it returned.
type commitEvent struct {
	seq   int // order in which Commit calls returned, over the whole test
	claim *observedClaim
	pos   orderly.Position
	err   error
}

// observer records claims and commits of every member of a test. Commit
// calls are noted after they return, in the order they return.
//
// With a graceful handover this order is the order in which the commits
// were stored: the engine's final commit for a claim returns before its
// serve call returns, and the next owner's claim is granted after that.
// Only a crashed (fenced) member's commit can be noted after a later one
// that was stored after it, and the checks below allow for that.
type observer struct {
	mu      sync.Mutex
	seq     int
	claims  []*observedClaim
	commits []commitEvent
}

func newObserver() *observer { return &observer{} }

func (o *observer) granted(member string, c orderly.Claim) *observedClaim {
	oc := &observedClaim{Claim: c, obs: o, member: member, serving: true}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.claims = append(o.claims, oc)
	return oc
}

func (o *observer) returned(c *observedClaim) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c.serving = false
}

func (o *observer) committed(c *observedClaim, pos orderly.Position, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seq++
	o.commits = append(o.commits, commitEvent{seq: o.seq, claim: c, pos: pos, err: err})
}

// mark returns the sequence number of the last commit noted so far.
func (o *observer) mark() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.seq
}

// holders returns, per partition, the members that hold a claim being
// served and not revoked.
func (o *observer) holders() map[int32][]string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[int32][]string)
	for _, c := range o.claims {
		if c.serving && !c.revoked() {
			out[c.Partition()] = append(out[c.Partition()], c.member)
		}
	}
	return out
}

// claimsOf returns how many claims member was ever granted.
func (o *observer) claimsOf(member string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, c := range o.claims {
		if c.member == member {
			n++
		}
	}
	return n
}

// lastCommit returns the position of the last successful commit for the
// partition among those include accepts: the highest offset, and of
// those the last noted (its metadata covers the most).
func (o *observer) lastCommit(p int32, include func(commitEvent) bool) (orderly.Position, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var best orderly.Position
	found := false
	for _, ev := range o.commits {
		if ev.err != nil || ev.claim.Partition() != p || !include(ev) {
			continue
		}
		if !found || ev.pos.Offset >= best.Offset {
			best, found = ev.pos, true
		}
	}
	return best, found
}

// requireMonotonic checks that commits never go backwards:
//   - each claim's successful commits are non-decreasing, and none is
//     below the claim's Start;
//   - over all claims of a partition, in the order they returned, the
//     successful commits are non-decreasing, leaving out those of crashed
//     members (a fenced member's success may be noted late).
func (o *observer) requireMonotonic(t *testing.T, crashed ...string) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	perClaim := make(map[*observedClaim]int64)
	perPartition := make(map[int32]commitEvent)
	for _, ev := range o.commits {
		if ev.err != nil {
			continue
		}
		c := ev.claim
		if start := c.Start().Offset; start != orderly.NoOffset && ev.pos.Offset < start {
			t.Fatalf("partition %d: %s committed %d, below its claim's Start %d", c.Partition(), c.member, ev.pos.Offset, start)
		}
		if prev, ok := perClaim[c]; ok && ev.pos.Offset < prev {
			t.Fatalf("partition %d: %s's claim committed %d after %d; commits must never go back", c.Partition(), c.member, ev.pos.Offset, prev)
		}
		perClaim[c] = ev.pos.Offset
		if slices.Contains(crashed, c.member) {
			continue
		}
		if prev, ok := perPartition[c.Partition()]; ok && ev.pos.Offset < prev.pos.Offset {
			t.Fatalf("partition %d: %s committed %d after %s committed %d; commits must never go back (%s)",
				c.Partition(), c.member, ev.pos.Offset, prev.claim.member, prev.pos.Offset, o.historyLocked(c.Partition()))
		}
		perPartition[c.Partition()] = ev
	}
}

// history describes the partition's claims and commits, for failure
// messages.
func (o *observer) history(p int32) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.historyLocked(p)
}

// historyLocked is history with o.mu held.
func (o *observer) historyLocked(p int32) string {
	var b strings.Builder
	fmt.Fprintf(&b, "partition %d claims (member: Start):", p)
	for _, c := range o.claims {
		if c.Partition() == p {
			fmt.Fprintf(&b, " %s: %s;", c.member, describePosition(c.Start()))
		}
	}
	var evs []commitEvent
	for _, ev := range o.commits {
		if ev.claim.Partition() == p {
			evs = append(evs, ev)
		}
	}
	sort.Slice(evs, func(i, k int) bool { return evs[i].seq < evs[k].seq })
	b.WriteString("\ncommits in the order they returned:")
	for _, ev := range evs {
		fmt.Fprintf(&b, " %s→%s", ev.claim.member, describePosition(ev.pos))
		if ev.err != nil {
			fmt.Fprintf(&b, "(failed: %v)", ev.err)
		}
		b.WriteString(";")
	}
	return b.String()
}

// describePosition shows a position with its metadata decoded when it is
// orderly's.
func describePosition(pos orderly.Position) string {
	if pos.Offset == orderly.NoOffset {
		return "none"
	}
	if ranges, err := committer.DecodeMetadata(pos.Offset, pos.Metadata); err == nil && len(ranges) > 0 {
		return fmt.Sprintf("%d+%v", pos.Offset, ranges)
	}
	if pos.Metadata != "" {
		return fmt.Sprintf("%d(%q)", pos.Offset, pos.Metadata)
	}
	return fmt.Sprint(pos.Offset)
}
