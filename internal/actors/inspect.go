package actors

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
	// Running: with a worker, being received (or about to be: taken from
	// the ready queue, or next in a worker's turn).
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
// change after Send, and parts that its owner only changes while holding
// the group's lock (Lock), but nothing else, since a Running or Ready
// message may be changed by a worker at any moment.
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
	Load  Load // its messages (Depth) and their weight
	Depth int
	// Head is the message at the head of its queue: Running, Ready,
	// Delayed, or Queued when it heads this key but waits on another of
	// its keys.
	Head MessageView[M]
}

// WalkLocked describes the group for inspection: it calls key for every
// key with queued or running messages and msg for every message the group
// holds (once each, whatever its number of keys), in no particular order.
// Either may be nil. The caller holds the group's lock (Lock), so that it
// can read its own state in the same instant.
//
// Both are called with the group's lock held and, briefly, the
// scheduler's (to tell Ready messages from Running ones): they must be
// quick, must not block and must not call the group or the scheduler. The
// walk costs O(keys + messages + the scheduler's ready queue) and holds
// off Send and message completions of this group while it runs; nothing
// is paid when nobody walks.
func (g *Group[M]) WalkLocked(key func(KeyView[M]), msg func(MessageView[M])) {
	ready := make(map[*envelope[M]]bool, len(g.ready))
	for _, r := range g.ready {
		if env, ok := r.(*envelope[M]); ok {
			ready[env] = true
		}
	}
	g.sched.mu.Lock()
	if lv := g.sched.levels; lv != nil {
		// With levels an envelope in a ready queue says so in its slot
		// (older, raised entries are stale and skipped).
		for i := range lv.lv {
			lv.lv[i].ready.each(func(e entry) {
				if env, ok := e.r.(*envelope[M]); ok && env.g == g && env.slot.queued {
					ready[env] = true
				}
			})
		}
	} else {
		g.sched.ready.each(func(r Runnable) {
			if env, ok := r.(*envelope[M]); ok && env.g == g {
				ready[env] = true
			}
		})
	}
	g.sched.mu.Unlock()

	place := func(env *envelope[M]) Place {
		switch {
		case env.waiting > 0:
			return Queued
		case g.delayed[env] != nil:
			return Delayed
		case ready[env]:
			return Ready
		}
		return Running
	}
	for k, a := range g.keys {
		n := a.queue.len()
		if n == 0 {
			continue
		}
		head, _ := a.queue.peek()
		if key != nil {
			key(KeyView[M]{Key: k, Load: a.load, Depth: n, Head: g.view(head, place(head))})
		}
		if msg == nil {
			continue
		}
		a.queue.each(func(env *envelope[M]) {
			if env.actorAt(0) == a { // a message of several keys is visited from its first
				msg(g.view(env, place(env)))
			}
		})
	}
	if msg != nil {
		for env := g.loose.first; env != nil; env = env.next {
			msg(MessageView[M]{Msg: &env.msg, Place: place(env)})
		}
	}
}

// view describes env; g.mu is held.
func (g *Group[M]) view(env *envelope[M], p Place) MessageView[M] {
	v := MessageView[M]{Msg: &env.msg, Place: p}
	for i := 0; i < env.nkeys; i++ {
		a := env.actorAt(i)
		head, _ := a.queue.peek()
		if head != env {
			if v.Ahead == nil {
				v.BlockedBy, v.Ahead = env.keyAt(i), &head.msg
			}
			continue
		}
		v.Behind += a.queue.len() - 1
	}
	if v.Ahead != nil {
		v.Behind = 0
	}
	return v
}

// actorAt is the actor of env's i-th key.
func (env *envelope[M]) actorAt(i int) *keyActor[M] {
	if env.links != nil {
		return env.links[i].a
	}
	return env.actor
}

// looseList is the group's messages with no key, which sit in no key's
// queue: kept in a list (linked through the envelopes) so that Walk can
// find them. Keyed messages never touch it.
type looseList[M any] struct {
	first *envelope[M]
}

func (l *looseList[M]) add(env *envelope[M]) {
	env.prev, env.next = nil, l.first
	if l.first != nil {
		l.first.prev = env
	}
	l.first = env
}

func (l *looseList[M]) remove(env *envelope[M]) {
	if env.prev != nil {
		env.prev.next = env.next
	} else {
		l.first = env.next
	}
	if env.next != nil {
		env.next.prev = env.prev
	}
	env.prev, env.next = nil, nil
}

// each calls f for every item, oldest first.
func (q *ring[T]) each(f func(T)) {
	for i := 0; i < q.n; i++ {
		f(q.buf[(q.head+i)%len(q.buf)])
	}
}
