package memory

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/orderly-go/orderly"
)

// DefaultFetchBuffer is the records a claim fetches ahead when
// WithFetchBuffer is not given.
const DefaultFetchBuffer = 64

// MemberOption configures a Member.
type MemberOption func(*Member)

// WithFetchBuffer sets how many records each claim fetches ahead of the
// engine: its Records channel holds one batch of at most n records, so n is
// also the most that can still arrive after Pause (the "slack"). The
// default is DefaultFetchBuffer; values below 1 mean 1.
func WithFetchBuffer(n int) MemberOption { return func(m *Member) { m.fetchBuffer = max(n, 1) } }

// WithID sets the member's ID, a label for logs and tests that need not be
// unique. The default is "<group>-<n>" with n counting the Log's members
// from 1.
func WithID(id string) MemberOption { return func(m *Member) { m.id = id } }

// Member is one member of a consumer group: an orderly.Source. Make one
// with Log.Member. It joins the group when Consume is called and leaves it
// when Consume's context is done, or at once on Crash.
//
// Every method is safe for concurrent use.
type Member struct {
	log         *Log
	group       string
	topics      []string // sorted, without duplicates
	id          string
	fetchBuffer int

	consumed atomic.Bool   // Consume was called
	crashCh  chan struct{} // closed by Crash

	// wg counts the member's serve and fetcher goroutines; Consume waits
	// for it after the member left the group, when no more can start.
	wg sync.WaitGroup

	// Guarded by Log.mu.
	joined  bool                      // in its group's members (until it leaves or crashes)
	crashed bool                      // Crash was called
	serve   func(orderly.Claim)       // set by Consume before joining
	claims  map[TopicPartition]*claim // claims whose serve has not returned
}

var _ orderly.Source = (*Member)(nil)

// Member returns a new member of group, subscribed to topics. Topics need
// not exist yet: their partitions are assigned when they are created. The
// member takes part in the group only while Consume runs.
func (l *Log) Member(group string, topics []string, opts ...MemberOption) *Member {
	ts := slices.Clone(topics)
	slices.Sort(ts)
	m := &Member{
		log:         l,
		group:       group,
		topics:      slices.Compact(ts),
		fetchBuffer: DefaultFetchBuffer,
		crashCh:     make(chan struct{}),
		claims:      make(map[TopicPartition]*claim),
	}
	for _, opt := range opts {
		opt(m)
	}
	if m.id == "" {
		m.id = fmt.Sprintf("%s-%d", group, l.memberSeq.Add(1))
	}
	return m
}

// ID returns the member's ID (see WithID).
func (m *Member) ID() string { return m.id }

// Consume joins the group and serves claims until ctx is done: serve is
// called in a new goroutine for every partition granted to the member.
// When ctx is done, Consume revokes every claim, leaves the group (its
// partitions go to the other members as each serve call returns), waits
// for all its serve calls to return (their commits are accepted until
// then) and for its fetchers to stop, and returns nil.
//
// If the member crashes (see Crash), Consume returns ErrCrashed once its
// serve calls have returned. If ctx is already done, Consume returns nil
// without joining. A second call returns ErrAlreadyConsumed. serve must not
// be nil.
func (m *Member) Consume(ctx context.Context, serve func(orderly.Claim)) error {
	if serve == nil {
		panic("memory: Member.Consume called with a nil serve func")
	}
	if !m.consumed.CompareAndSwap(false, true) {
		return ErrAlreadyConsumed
	}
	if ctx.Err() != nil {
		return nil
	}
	if !m.log.join(m, serve) {
		return ErrCrashed
	}
	select {
	case <-ctx.Done():
		m.log.leave(m)
	case <-m.crashCh:
	}
	m.wg.Wait()
	select {
	case <-m.crashCh:
		return ErrCrashed
	default:
		return nil
	}
}

// Crash makes the member vanish as a process that died would, without
// committing: from now on every Commit from its claims fails with
// ErrFenced and stores nothing; its claims are revoked (Revoked and, once
// its fetchers stop, Records are closed) and its partitions are granted to
// the remaining members at once, without waiting for its serve calls. Its
// Consume returns ErrCrashed once those serve calls return.
//
// Crash never blocks and is idempotent. Crash before Consume makes Consume
// return ErrCrashed at once; Crash after Consume returned does nothing.
func (m *Member) Crash() {
	l := m.log
	l.mu.Lock()
	defer l.mu.Unlock()
	if m.crashed {
		return
	}
	m.crashed = true
	close(m.crashCh)
	g := l.groups[m.group]
	if g == nil {
		return // never joined
	}
	changed := g.remove(m)
	m.joined = false
	for tp, c := range m.claims {
		c.fenced = true
		c.revoke()
		if s := g.slots[tp]; s.claim == c {
			s.claim = nil
			changed = true
		}
	}
	if changed {
		l.rebalance(g)
	}
}

// Assigned returns the partitions the member holds a claim on that is not
// revoked, sorted by topic and partition.
func (m *Member) Assigned() []TopicPartition {
	m.log.mu.RLock()
	defer m.log.mu.RUnlock()
	var tps []TopicPartition
	for tp, c := range m.claims {
		if !c.revokedDone {
			tps = append(tps, tp)
		}
	}
	slices.SortFunc(tps, compareTopicPartitions)
	return tps
}

// Paused reports whether the member's claim on the partition is paused;
// false if it holds no claim on it.
func (m *Member) Paused(topic string, partition int32) bool {
	m.log.mu.RLock()
	c := m.claims[TopicPartition{topic, partition}]
	m.log.mu.RUnlock()
	if c == nil {
		return false
	}
	paused, _ := c.pauseState()
	return paused
}

// join adds m to its group, last in join order, and rebalances. It
// returns false if m crashed already.
func (l *Log) join(m *Member, serve func(orderly.Claim)) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m.crashed {
		return false
	}
	m.serve = serve
	m.joined = true
	g := l.group(m.group)
	g.members = append(g.members, m)
	l.rebalance(g)
	return true
}

// leave removes m from its group and rebalances, which revokes all of m's
// claims: m owns nothing any more.
func (l *Log) leave(m *Member) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !m.joined {
		return // crashed meanwhile
	}
	m.joined = false
	g := l.groups[m.group]
	g.remove(m)
	l.rebalance(g)
}

// start runs claim c: its fetcher and its serve call, each on a goroutine
// of its own counted in m.wg. Log.mu must be held for writing (m is joined,
// so Consume is not yet waiting on m.wg).
func (m *Member) start(c *claim) {
	m.claims[c.tp] = c
	serve := m.serve
	m.wg.Go(c.fetch)
	m.wg.Go(func() {
		defer m.log.serveReturned(c)
		serve(c)
	})
}
