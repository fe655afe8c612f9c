package actors

import "github.com/orderly-go/orderly/mailbox"

// Place is where a message is in its group, as Walk sees it.
type Place uint8

const (
	// Queued: behind an earlier message of one of its keys.
	Queued Place = iota + 1
	// Delayed: waiting out the delay Receive asked for before it is
	// received again.
	Delayed
	// Ready: at the head of every key it has, waiting for a worker (a
	// concurrency slot).
	Ready
	// Running: with a worker, being received (or about to be).
	Running
)

var placeNames = [...]string{Queued: "queued", Delayed: "delayed", Ready: "ready", Running: "running"}

// String names the place.
func (p Place) String() string {
	if int(p) < len(placeNames) && placeNames[p] != "" {
		return placeNames[p]
	}
	return "place(?)"
}

// MessageView is one message as Walk sees it. Msg points at the group's
// copy of the message: the walker may read the parts of it that do not
// change after Send, but nothing else, since a Running message may be
// changed by its worker at any moment.
type MessageView[M any] struct {
	Msg   *M
	Place Place
	// BlockedBy, for a Queued message, is the first of its keys at whose
	// head it is not, and Ahead the message heading that key.
	BlockedBy uint64
	Ahead     *M
	// Behind, for a message at the head of every key it has, is the
	// number of messages queued behind it on its keys (a message queued
	// on two of them counts twice). Zero otherwise.
	Behind int
}

// KeyView is one key with queued or running messages, as Walk sees it.
type KeyView[M any] struct {
	Key   uint64
	Load  mailbox.Limits // its messages and their weight
	Depth int
	// Head is the message at the head of its queue: Running, Ready,
	// Delayed, or Queued when it heads this key but waits on another of
	// its keys.
	Head MessageView[M]
}

// Walk describes the group for inspection: it calls key for every key
// with queued or running messages and msg for every message the group
// holds (once each, whatever its number of keys), in no particular order.
// Either may be nil.
//
// Both are called with the group's lock held: they must be quick, must
// not block and must not call the group. The walk costs O(keys +
// messages) and holds off the owner's Send and Collect for as long;
// nothing is paid when nobody walks. Safe for concurrent use.
func (g *Group[M]) Walk(key func(KeyView[M]), msg func(MessageView[M])) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, a := range g.keys {
		n := a.qlen()
		if n == 0 {
			continue
		}
		head := a.head()
		if key != nil {
			l := mailbox.Limits{Messages: n, Bytes: a.mb.Bytes()}
			a.held.Each(func(e *env[M]) { l.Bytes += e.weight })
			key(KeyView[M]{Key: k, Load: l, Depth: n, Head: g.view(head)})
		}
		if msg == nil {
			continue
		}
		for i := range n {
			if e := a.at(i); e.actorAt(0) == a { // a message of several keys is visited from its first
				msg(g.view(e))
			}
		}
	}
	if msg != nil {
		for e := g.loose.first; e != nil; e = e.next {
			msg(MessageView[M]{Msg: &e.msg, Place: g.place(e)})
		}
	}
}

// place says where e is. g.mu is held.
func (g *Group[M]) place(e *env[M]) Place {
	switch {
	case e.waiting > 0 && (e.turn == nil || e.turn.envs[0] == e):
		return Queued
	case e.delayed:
		return Delayed
	case e.turn == nil:
		return Queued
	}
	t := e.turn
	if t.started.Load() == t.gen {
		idx := 0
		for idx < len(t.envs) && t.envs[idx] != e {
			idx++
		}
		if at := int(t.at.Load()); idx <= at {
			return Running // being received, received and on its way back, or about to be
		}
	}
	if e.waiting == 0 {
		return Ready // heads its keys, waiting for its turn to run (or reach it)
	}
	return Queued
}

// view describes e. g.mu is held.
func (g *Group[M]) view(e *env[M]) MessageView[M] {
	v := MessageView[M]{Msg: &e.msg, Place: g.place(e)}
	for i := 0; i < e.nkeys; i++ {
		a := e.actorAt(i)
		head := a.head()
		if head != e {
			if v.Ahead == nil && head != nil {
				v.BlockedBy, v.Ahead = e.keyAt(i), &head.msg
			}
			continue
		}
		v.Behind += a.qlen() - 1
	}
	if v.Ahead != nil {
		v.Behind = 0
	}
	return v
}

// looseList is the group's messages with no key, which sit in no key's
// mailbox: kept in a list (linked through the envelopes) so that Walk can
// find them. Keyed messages never touch it.
type looseList[M any] struct {
	first *env[M]
}

func (l *looseList[M]) add(e *env[M]) {
	e.prev, e.next = nil, l.first
	if l.first != nil {
		l.first.prev = e
	}
	l.first = e
}

func (l *looseList[M]) remove(e *env[M]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.first = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	}
	e.prev, e.next = nil, nil
}
