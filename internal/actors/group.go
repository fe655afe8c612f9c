package actors

import (
	"fmt"
	"sync"
	"time"
)

// Load is what a key's actor holds: messages queued or running, and their
// summed weight (the engine uses record bytes).
type Load struct {
	Messages int
	Weight   int64
}

// GroupConfig configures a Group. Receive is required.
type GroupConfig[M any] struct {
	// Receive handles one message on a worker, with no lock held. It
	// returns retry == true to be called again for the same message after
	// retryAfter, its keys still blocked.
	Receive func(m *M) (retryAfter time.Duration, retry bool)

	// ReceiveAt is Receive for an owner that wants to know the priority
	// level the message runs at: its own level (Message.Level) or a
	// higher one inherited from a message queued behind it (see Group).
	// Exactly one of Receive and ReceiveAt must be set.
	ReceiveAt func(m *M, level int) (retryAfter time.Duration, retry bool)

	// Done, if set, is called with the group's lock held once Receive is
	// finished with a message (it returned without asking for a retry, or
	// panicked), before the message's keys move on. It is where the owner
	// updates state that must change atomically with the keys (the engine
	// marks the record's offset done there). It must be quick, must not
	// block, and must not call user code, the group, or anything that may
	// take the group's lock.
	Done func(m *M)

	// High and Low are a key's water marks: a key whose load reaches High
	// (Messages or Weight; a zero field is unlimited) is over; it stays
	// over until its load falls to Low or below in both fields. OnOver, if
	// set, is told whenever the number of keys over changes, with that
	// number and a sequence number that grows with every change: apply a
	// report only if its seq is above the last one applied, as reports
	// from different goroutines may arrive out of order. OnOver is called
	// after the group's lock is released.
	High, Low Load
	OnOver    func(over int, seq uint64)

	// KeyEvent, if set, is called with the group's lock held, while key
	// events are on (SetKeyEventsLocked), whenever a key leaves the over
	// state (its load fell to Low) or becomes idle (it holds nothing). It
	// has Done's restrictions: quick, no blocking, no call into the group.
	// While key events are off it costs nothing.
	KeyEvent func(key uint64)

	// Turn is the most messages of one key a worker receives back to back
	// before it yields to other ready work (the "throughput" of Akka and
	// protoactor dispatchers): a burst on one key costs one scheduling, not
	// one per message. ≤ 0 means 16. On a scheduler with levels it is 1:
	// every message is a scheduling decision.
	Turn int
}

// DefaultTurn is GroupConfig.Turn's default.
const DefaultTurn = 16

// Message is one message for Group.Send: its value, its weight against
// the key limits, and its keys. Keys are 64-bit hashes of the caller's
// keys: two keys with equal hashes are one key to the group (ordered
// together), which costs parallelism, never order.
type Message[M any] struct {
	Msg    M
	Weight int64
	// Keys, when it has two or more elements, are the message's keys
	// (duplicates count once). Otherwise Key is its only key if HasKey,
	// and it has none if not.
	Keys   []uint64
	Key    uint64
	HasKey bool
	// Level is the message's priority level on a scheduler with levels
	// (0 is the highest; levels beyond the scheduler's count as its
	// lowest). Ignored by a scheduler without levels.
	Level uint8
}

// Group runs messages in per-key order on a Scheduler.
//
// A message sent with keys k1, k2, ... is received after every message
// sent earlier that shares any of those keys has been received (and Done),
// and before any message sent later that shares one of them. Messages with
// no key in common run in parallel, up to the scheduler's limit; a message
// with no keys runs as soon as the scheduler allows.
//
// Each key is an actor whose mailbox is its queue in the group. An actor
// is created on its key's first message; once its queue is empty it is
// idle, and idle actors are passivated (deleted) in bulk when more than
// maxIdle have gathered, so the group's memory follows the busy keys, not
// every key ever seen. A
// message with several keys waits at the head of each of its keys' queues
// and runs once it heads all of them; while it waits, those keys hold no
// goroutine. A worker that finishes a message whose key has the next
// message ready runs that one too, up to Turn in a row.
//
// On a scheduler with levels (NewLevelScheduler) a ready message is
// queued at its level, raised by priority inheritance: a message runs at
// the highest level of every message that waits for it, directly (queued
// behind it on one of its keys) or through others (queued behind a
// message that waits for it on another key). A message already queued
// is raised when a higher one comes to wait for it; one already running
// keeps the level it started at. So a high-priority message is never
// stuck behind a lower key head that waits for a lower level's slot.
//
// Messages are stored by value in envelopes the group recycles, and
// Receive gets a pointer to the stored value, so a message's state
// (attempt counts, say) survives retries without an allocation of its
// own. While a message waits for a retry it holds no goroutine and no
// concurrency slot; WakeAll cuts every such wait short.
//
// A Group is safe for concurrent use; messages sharing a key must be sent
// from one goroutine (or otherwise ordered by the caller) for "earlier" to
// mean anything.
type Group[M any] struct {
	sched *Scheduler
	cfg   GroupConfig[M]

	// mu guards every field below and every envelope's waiting field and
	// every key actor. Held by Send, by the completion of every message
	// (with cfg.Done called under it), and by the owner through Lock. The
	// scheduler's lock is taken under it (to submit); no user code and no
	// callback other than cfg.Done runs under it.
	mu       sync.Mutex
	keys     map[uint64]*keyActor[M] // keys with queued or running messages, and up to maxIdle idle ones
	idle     int                     // keys in the map with an empty queue
	freeKeys []*keyActor[M]          // passivated actors kept for reuse
	freeEnvs []*envelope[M]          // finished envelopes kept for reuse
	delayed  map[*envelope[M]]*time.Timer
	wakeNow  bool           // set by WakeAll: later retries are not delayed
	hurry    bool           // set by WakeAll on a scheduler with levels: every message is queued at level 0
	leveled  bool           // the scheduler has levels; immutable
	work     []boostItem[M] // raiseAhead's work list, kept for its storage
	ready    []Runnable
	over     int    // keys over their high mark
	overSeq  uint64 // bumped on every change of over
	reported uint64 // overSeq last handed to OnOver
	events   bool   // call cfg.KeyEvent (SetKeyEventsLocked)

	loose looseList[M] // messages with no key (see WalkLocked)
}

const (
	maxFree = 1024
	// maxIdle is how many idle key actors stay in the map before they are
	// passivated all at once. Keeping a key that comes back soon saves a
	// map insertion and deletion per message; sweeping in bulk keeps the
	// map's size bounded by the busy keys plus maxIdle.
	maxIdle = 4096
)

type keyActor[M any] struct {
	queue  ring[*envelope[M]] // the head is running or waiting on other keys
	pushed uint64             // messages ever pushed: with queue.len(), places an envelope by its seq
	load   Load
	over   bool
}

type envelope[M any] struct {
	slot    // scheduling state on a scheduler with levels; want is guarded by g.mu
	g       *Group[M]
	msg     M
	weight  int64
	key     uint64 // the only key, when nkeys == 1
	nkeys   int
	waiting int          // keys at whose head this message is not yet; guarded by g.mu
	actor   *keyActor[M] // the only key's actor, when nkeys == 1: finish needs no lookup
	links   []link[M]    // every key, when there are two or more
	// prev and next link a message with no key into the group's loose
	// list; guarded by g.mu.
	prev, next *envelope[M]
}

// link is one of a message's keys: the key, its actor, and the actor's
// pushed count when the message was pushed, which places the message in
// the actor's queue (raiseAhead needs it, on a scheduler with levels).
type link[M any] struct {
	key uint64
	a   *keyActor[M]
	seq uint64
}

func (env *envelope[M]) schedSlot() *slot { return &env.slot }

// boostItem is a key's queue position whose predecessors may need
// raising to a level (see raiseAhead).
type boostItem[M any] struct {
	a   *keyActor[M]
	pos int
}

// NewGroup returns a group that receives messages on sched.
func NewGroup[M any](sched *Scheduler, cfg GroupConfig[M]) *Group[M] {
	if sched == nil || (cfg.Receive == nil) == (cfg.ReceiveAt == nil) {
		panic("actors: NewGroup needs a scheduler and one of Receive and ReceiveAt")
	}
	if cfg.Turn <= 0 {
		cfg.Turn = DefaultTurn
	}
	leveled := sched.levels != nil
	if leveled {
		cfg.Turn = 1
	}
	return &Group[M]{sched: sched, cfg: cfg, leveled: leveled,
		keys: make(map[uint64]*keyActor[M]), delayed: make(map[*envelope[M]]*time.Timer)}
}

// Lock takes the group's lock, so that the owner can change its own state
// together with a Send (the engine registers offsets and takes credits
// under it). Send must not be called while holding it: use SendLocked.
func (g *Group[M]) Lock() { g.mu.Lock() }

// Unlock submits what SendLocked made ready and releases the lock. Key
// over-counts that changed are reported to OnOver after the release.
func (g *Group[M]) Unlock() {
	if g.hurry {
		for _, r := range g.ready {
			r.(*envelope[M]).want.Store(0)
		}
	}
	g.sched.SubmitAll(g.ready)
	clear(g.ready)
	g.ready = g.ready[:0]
	over, seq, changed := g.over, g.overSeq, g.reported != g.overSeq
	g.reported = g.overSeq
	g.mu.Unlock()
	if changed && g.cfg.OnOver != nil {
		g.cfg.OnOver(over, seq)
	}
}

// Send queues a batch of messages under one lock acquisition.
func (g *Group[M]) Send(batch []Message[M]) {
	g.Lock()
	for i := range batch {
		g.SendLocked(&batch[i])
	}
	g.Unlock()
}

// SendLocked queues m behind its keys; the caller holds the lock (Lock).
// It never blocks: a key over its high mark is reported through OnOver,
// not by refusing the message, so that what the caller holds is never
// lost. m's value is copied into the group.
func (g *Group[M]) SendLocked(m *Message[M]) {
	env := g.envelope()
	env.msg, env.weight = m.Msg, m.Weight
	switch {
	case len(m.Keys) >= 2:
		env.links = dedupe[M](m.Keys)
		env.nkeys = len(env.links)
		if env.nkeys == 1 {
			env.key, env.links = env.links[0].key, nil
		}
	case len(m.Keys) == 1:
		env.key, env.nkeys = m.Keys[0], 1
	case m.HasKey:
		env.key, env.nkeys = m.Key, 1
	}
	if g.leveled {
		env.want.Store(uint32(m.Level))
	}
	for i := 0; i < env.nkeys; i++ {
		k := env.keyAt(i)
		a := g.keys[k]
		switch {
		case a == nil:
			a = g.spawn()
			g.keys[k] = a
		case a.queue.len() == 0:
			g.idle-- // an idle key comes back
		}
		if env.links != nil {
			env.links[i].a, env.links[i].seq = a, a.pushed
		} else {
			env.actor = a
		}
		a.queue.push(env)
		a.pushed++
		if a.queue.len() > 1 {
			env.waiting++
		}
		a.load.Messages++
		a.load.Weight += m.Weight
		if !a.over && g.isOver(a.load) {
			a.over = true
			g.over++
			g.overSeq++
		}
	}
	if env.nkeys == 0 {
		g.loose.add(env)
	}
	if env.waiting == 0 {
		g.ready = append(g.ready, env)
	} else if g.leveled {
		for i := 0; i < env.nkeys; i++ {
			a := env.actor
			if env.links != nil {
				a = env.links[i].a
			}
			g.raiseAhead(a, a.queue.len()-1, uint32(m.Level))
		}
	}
}

// raiseAhead raises every message ahead of position pos in a's queue to
// level lvl (priority inheritance), and, through the other keys of each
// message it raises, every message those wait for. g.mu is held.
//
// Within a key's queue the wanted levels never decrease from head to tail
// (a message is at least as high as everything queued behind it on any of
// its keys), so the walk back from pos stops at the first message already
// at lvl or higher; each message is raised at most once per level, so the
// cost is amortized over the messages sent.
func (g *Group[M]) raiseAhead(a *keyActor[M], pos int, lvl uint32) {
	work := append(g.work[:0], boostItem[M]{a, pos})
	for len(work) > 0 {
		it := work[len(work)-1]
		work = work[:len(work)-1]
		for i := it.pos - 1; i >= 0; i-- {
			x := it.a.queue.at(i)
			if x.want.Load() <= lvl {
				break
			}
			x.want.Store(lvl)
			g.sched.raise(x) // queued: queued again at lvl; otherwise lvl is read when it is
			for _, l := range x.links {
				if l.a != it.a {
					work = append(work, boostItem[M]{l.a, int(l.seq - (l.a.pushed - uint64(l.a.queue.len())))})
				}
			}
		}
	}
	clear(work)
	g.work = work[:0]
}

func (g *Group[M]) isOver(l Load) bool {
	h := g.cfg.High
	return (h.Messages > 0 && l.Messages >= h.Messages) || (h.Weight > 0 && l.Weight >= h.Weight)
}

func (g *Group[M]) isUnder(l Load) bool {
	h, lo := g.cfg.High, g.cfg.Low
	return (h.Messages == 0 || l.Messages <= lo.Messages) && (h.Weight == 0 || l.Weight <= lo.Weight)
}

func (g *Group[M]) envelope() *envelope[M] {
	if n := len(g.freeEnvs); n > 0 {
		env := g.freeEnvs[n-1]
		g.freeEnvs[n-1] = nil
		g.freeEnvs = g.freeEnvs[:n-1]
		return env
	}
	return &envelope[M]{g: g}
}

func (g *Group[M]) spawn() *keyActor[M] {
	if n := len(g.freeKeys); n > 0 {
		a := g.freeKeys[n-1]
		g.freeKeys[n-1] = nil
		g.freeKeys = g.freeKeys[:n-1]
		return a
	}
	return &keyActor[M]{}
}

// WakeAll receives every message waiting for a retry now, and makes later
// retries immediate. The engine calls it when a partition is revoked, so
// that waiting messages are given up quickly.
//
// On a scheduler with levels it also queues every ready message of the
// group at level 0, and every later one too, so that the group's messages
// are given up without waiting for their levels' slots.
func (g *Group[M]) WakeAll() {
	g.mu.Lock()
	g.wakeNow = true
	for env, t := range g.delayed {
		if t.Stop() {
			delete(g.delayed, env)
			g.ready = append(g.ready, env)
		}
	}
	if g.leveled {
		g.hurry = true
		g.sched.raiseAll(func(r Runnable) bool {
			env, ok := r.(*envelope[M])
			return ok && env.g == g
		})
	}
	g.Unlock()
}

// Delayed is the number of messages waiting to be received again.
func (g *Group[M]) Delayed() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.delayed)
}

// Keys is the number of keys with queued or running messages.
func (g *Group[M]) Keys() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.keys) - g.idle
}

// SetKeyEventsLocked turns KeyEvent calls on or off; the caller holds the
// lock.
func (g *Group[M]) SetKeyEventsLocked(on bool) { g.events = on && g.cfg.KeyEvent != nil }

// OverLocked is the number of keys over their high mark; the caller holds
// the lock.
func (g *Group[M]) OverLocked() int { return g.over }

// IsOverLocked reports whether key k is over its high mark (it reached
// High and has not yet fallen to Low); the caller holds the lock.
func (g *Group[M]) IsOverLocked(k uint64) bool {
	a := g.keys[k]
	return a != nil && a.over
}

// IdleLocked reports whether key k holds nothing (no message queued or
// running); the caller holds the lock.
func (g *Group[M]) IdleLocked(k uint64) bool {
	a := g.keys[k]
	return a == nil || a.queue.len() == 0
}

// Load returns what key k holds now (zero when it holds nothing).
func (g *Group[M]) Load(k uint64) Load {
	g.mu.Lock()
	defer g.mu.Unlock()
	if a := g.keys[k]; a != nil {
		return a.load
	}
	return Load{}
}

// Run is one turn: receive the message, and while its key's next message
// is ready, that one too, up to Turn.
func (env *envelope[M]) Run() {
	g := env.g
	level := int(env.at) // the level it was started at: 0 without levels, where Turn may run several
	for n := 1; ; n++ {
		after, retry := g.receiveGuarded(env, level)
		if retry {
			g.again(env, after)
			return
		}
		next := g.finish(env)
		if next == nil {
			return
		}
		if n >= g.cfg.Turn {
			g.sched.Submit(next)
			return
		}
		env = next
	}
}

// receiveGuarded calls Receive; a panic escaping it finishes the message
// (it counts as received, so its keys move on) and is re-raised for the
// scheduler's PanicHandler.
func (g *Group[M]) receiveGuarded(env *envelope[M], level int) (after time.Duration, retry bool) {
	finished := false
	defer func() {
		if !finished {
			if next := g.finish(env); next != nil {
				g.sched.Submit(next)
			}
		}
	}()
	if g.cfg.Receive != nil {
		after, retry = g.cfg.Receive(&env.msg)
	} else {
		after, retry = g.cfg.ReceiveAt(&env.msg, level)
	}
	finished = true
	return after, retry
}

func (g *Group[M]) again(env *envelope[M], after time.Duration) {
	g.mu.Lock()
	if after <= 0 || g.wakeNow {
		g.ready = append(g.ready, env)
		g.Unlock()
		return
	}
	g.delayed[env] = time.AfterFunc(after, func() {
		g.mu.Lock()
		if _, waiting := g.delayed[env]; waiting {
			delete(g.delayed, env)
			g.ready = append(g.ready, env)
		}
		g.Unlock()
	})
	g.mu.Unlock()
}

func (env *envelope[M]) keyAt(i int) uint64 {
	if env.links == nil {
		return env.key
	}
	return env.links[i].key
}

// finish calls Done, pops env from the head of each of its keys,
// passivates keys left empty, recycles env and returns one message that
// now heads all of its keys (the caller may run it), having submitted any
// others.
func (g *Group[M]) finish(env *envelope[M]) (next *envelope[M]) {
	g.mu.Lock()
	if g.cfg.Done != nil {
		g.cfg.Done(&env.msg)
	}
	for i := 0; i < env.nkeys; i++ {
		a := env.actor
		if env.links != nil {
			a = env.links[i].a
		}
		head, _ := a.queue.pop()
		if head != env {
			g.mu.Unlock()
			panic(fmt.Sprintf("actors: key %x finished a message that was not at its head", env.keyAt(i)))
		}
		a.load.Messages--
		a.load.Weight -= env.weight
		event := false
		if a.over && g.isUnder(a.load) {
			a.over = false
			g.over--
			g.overSeq++
			event = true
		}
		h, ok := a.queue.peek()
		if event || !ok {
			if g.events {
				g.cfg.KeyEvent(env.keyAt(i))
			}
		}
		if !ok {
			g.idle++
			continue
		}
		h.waiting--
		if h.waiting == 0 {
			if next == nil {
				next = h
				if g.hurry {
					next.want.Store(0)
				}
			} else {
				g.ready = append(g.ready, h)
			}
		}
	}
	if g.idle > maxIdle {
		g.passivate()
	}
	if env.nkeys == 0 {
		g.loose.remove(env)
	}
	var zero M
	env.msg, env.nkeys, env.key, env.weight, env.actor, env.links = zero, 0, 0, 0, nil, nil
	if len(g.freeEnvs) < maxFree {
		g.freeEnvs = append(g.freeEnvs, env)
	}
	g.Unlock()
	return next
}

// passivate removes every idle key actor from the map, keeping some for
// reuse. g.mu must be held.
func (g *Group[M]) passivate() {
	for k, a := range g.keys {
		if a.queue.len() > 0 {
			continue
		}
		delete(g.keys, k)
		if len(g.freeKeys) < maxFree {
			a.load, a.over = Load{}, false
			g.freeKeys = append(g.freeKeys, a)
		}
	}
	g.idle = 0
}

// dedupe returns the links of keys, each key once, in order.
func dedupe[M any](keys []uint64) []link[M] {
	out := make([]link[M], 0, len(keys))
	for _, k := range keys {
		dup := false
		for _, o := range out {
			if o.key == k {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, link[M]{key: k})
		}
	}
	return out
}
