package memory

import (
	"slices"

	"github.com/orderly-go/orderly"
)

// group is one consumer group. Every field is guarded by Log.mu.
type group struct {
	name      string
	members   []*Member // joined and live, in join order
	slots     map[TopicPartition]*slot
	committed map[TopicPartition]orderly.Position
	history   map[TopicPartition][]orderly.Position
}

// slot is the group's view of one partition. Guarded by Log.mu.
type slot struct {
	// owner is the member the current assignment gives the partition to;
	// nil when no live member subscribes to its topic.
	owner *Member
	// claim is the partition's claim whose serve call has not returned
	// yet, nil if none. It may belong to a member other than owner: a
	// revoked claim stays here until its serve returns, and owner gets its
	// claim only then. A crashed member's claims are removed at once.
	claim *claim
	// parked is set when a serve call returned before its claim was
	// revoked: the partition stays with its owner but idle until the next
	// rebalance, so a serve that returns at once does not spin.
	parked bool
}

// group returns the named group, making it if needed. l.mu must be held
// for writing.
func (l *Log) group(name string) *group {
	g := l.groups[name]
	if g == nil {
		g = &group{
			name:      name,
			slots:     make(map[TopicPartition]*slot),
			committed: make(map[TopicPartition]orderly.Position),
			history:   make(map[TopicPartition][]orderly.Position),
		}
		l.groups[name] = g
	}
	return g
}

func (g *group) subscribes(topic string) bool {
	for _, m := range g.members {
		if slices.Contains(m.topics, topic) {
			return true
		}
	}
	return false
}

func (g *group) remove(m *Member) bool {
	i := slices.Index(g.members, m)
	if i < 0 {
		return false
	}
	g.members = slices.Delete(g.members, i, i+1)
	return true
}

// assignment computes who owns what: for each existing topic, partition i
// goes to the (i mod n)-th of the n members subscribed to the topic, in
// join order. l.mu must be held.
func (l *Log) assignment(g *group) map[TopicPartition]*Member {
	owners := make(map[TopicPartition]*Member)
	subscribers := make(map[string][]*Member)
	for _, m := range g.members {
		for _, name := range m.topics {
			subscribers[name] = append(subscribers[name], m)
		}
	}
	for name, members := range subscribers {
		t := l.topics[name]
		if t == nil {
			continue
		}
		for i := range t.partitions {
			owners[TopicPartition{name, int32(i)}] = members[i%len(members)]
		}
	}
	return owners
}

// rebalance recomputes the assignment after a join, leave or crash, or a
// new topic. It is cooperative: a claim is revoked only when its partition
// changes owner, and the new owner's claim is granted when the revoked
// claim's serve call returns (see serveReturned), or at once if there is
// no live claim. l.mu must be held for writing.
func (l *Log) rebalance(g *group) {
	owners := l.assignment(g)
	tps := make([]TopicPartition, 0, len(owners)+len(g.slots))
	for tp := range owners {
		tps = append(tps, tp)
	}
	for tp := range g.slots {
		if _, ok := owners[tp]; !ok {
			tps = append(tps, tp)
		}
	}
	// Sorted so that grants, and so serve goroutines, start in a
	// reproducible order.
	slices.SortFunc(tps, compareTopicPartitions)
	for _, tp := range tps {
		s := g.slots[tp]
		if s == nil {
			s = &slot{}
			g.slots[tp] = s
		}
		s.owner = owners[tp]
		s.parked = false
		if s.claim != nil && s.claim.member != s.owner {
			s.claim.revoke()
		}
		l.grant(g, tp, s)
	}
}

// grant gives the partition's owner a new claim if the partition is free:
// no claim in service, not parked. l.mu must be held for writing.
func (l *Log) grant(g *group, tp TopicPartition, s *slot) {
	if s.claim != nil || s.owner == nil || s.parked {
		return
	}
	start, ok := g.committed[tp]
	if !ok {
		start = orderly.Position{Offset: orderly.NoOffset}
	}
	p := l.topics[tp.Topic].partitions[tp.Partition]
	c := newClaim(l, g, s.owner, tp, p, start)
	s.claim = c
	s.owner.start(c)
}

// serveReturned is called when the serve call for c returns: the claim
// ends (later commits fail with ErrClaimEnded) and its partition, if it
// moved, is granted to its new owner.
func (l *Log) serveReturned(c *claim) {
	l.mu.Lock()
	defer l.mu.Unlock()
	early := !c.revokedDone
	c.ended = true
	c.revoke()
	m := c.member
	if m.claims[c.tp] == c {
		delete(m.claims, c.tp)
	}
	s := c.group.slots[c.tp]
	if s.claim != c {
		return // the member crashed and the partition moved on already
	}
	s.claim = nil
	if early && s.owner == m {
		s.parked = true
	}
	l.grant(c.group, c.tp, s)
}

// commit stores pos as c's group position. l.mu must be held for writing.
func (g *group) commit(tp TopicPartition, pos orderly.Position) {
	g.committed[tp] = pos
	g.history[tp] = append(g.history[tp], pos)
}
