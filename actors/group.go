package actors

import (
	"container/heap"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderly-go/orderly/internal/ring"
	"github.com/orderly-go/orderly/mailbox"
)

// GroupConfig configures a Group. Receive is required.
type GroupConfig[M any] struct {
	// Receive handles one message on a worker, with no lock held. It
	// returns retry == true to be called again for the same message after
	// retryAfter, its keys still blocked. w is the worker it runs on (its
	// ID indexes per-worker state; its Level is the priority level the
	// message runs at, its own or a higher one inherited).
	Receive func(m *M, w *Worker) (retryAfter time.Duration, retry bool)

	// Mailbox bounds each key's mailbox: the messages queued or running
	// on the key and their summed weight. A key whose mailbox reached its
	// high mark is over until it falls to its low mark (see package
	// mailbox).
	Mailbox mailbox.Config

	// Hold says what happens to a message that a key's mailbox refuses.
	// false: Send refuses it and hands it back (the sender decides: the
	// engine spills the key). true: the group holds it, in order, in the
	// key's overflow queue behind its mailbox, and moves it into the
	// mailbox as room is made; the key counts as over meanwhile (the
	// engine pauses the partition's fetching).
	Hold bool

	// Turn is the most messages of one key a worker receives back to back
	// before it yields to other ready work (the "throughput" of Akka and
	// protoactor dispatchers): a burst on one key costs one scheduling, not
	// one per message. Messages of a turn are handed back together when it
	// ends, so a turn takes only as many queued messages as the
	// scheduler's estimate of a message's cost says run in about 100µs, and
	// one while work blocks (over 50µs a message). ≤ 0 means DefaultTurn.
	// On a scheduler with levels it is 1: every message is a scheduling
	// decision.
	Turn int
}

// DefaultTurn is GroupConfig.Turn's default.
const DefaultTurn = 1024

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

// KeyEvent is a change of one key that its owner may act on, reported by
// Collect.
type KeyEvent struct {
	Key uint64
	// Low: the key's mailbox fell to its low mark (it accepts messages
	// again). Idle: the key holds nothing (no message queued, held or
	// running).
	Low, Idle bool
}

// Group runs messages in per-key order on a Scheduler. Each key is an
// actor with a bounded mailbox (package mailbox); the group belongs to
// one owner goroutine, which sends it messages and collects what the
// workers finished.
//
// A message sent with keys k1, k2, ... is received after every message
// sent earlier that shares any of those keys has been received and
// collected, and before any message sent later that shares one of them.
// Messages with no key in common run in parallel, up to the scheduler's
// limit; a message with no keys runs as soon as the scheduler allows.
//
// # Who does what
//
// The owner (one goroutine) calls Send, Collect and WakeAll. Send queues
// each message in its keys' mailboxes and hands the keys that became
// ready to the scheduler as turns, in one batch. A worker runs a turn
// (up to Turn messages of one key, back to back, or one message of
// several keys, or one with none), then keeps the finished turn in a
// buffer of its own and hands its buffer to the group in one step when
// its batch of work is done (Worker.Defer); Ready is then signalled. The
// owner's Collect calls its done function for every message received,
// pops the messages from their keys and submits the turns that became
// ready. So a worker never touches a key's state, and crossing between
// the owner and the workers costs one lock per batch on each side, not
// one per message.
//
// Other goroutines may read the group (Walk, Keys, Load, Over, ...): its
// lock is held by the owner only while it applies a batch, never while
// user code or the owner's callbacks run.
//
// # Keys, mailboxes and memory
//
// A key's actor is created on its first message. Once its mailbox is
// empty it is idle, and idle actors are passivated in bulk when more than
// maxIdle have gathered, so the group's memory follows the busy keys, not
// every key ever seen. A message of several keys waits at the head of
// each of its keys' mailboxes and runs once it heads all of them; while
// it waits, those keys hold no goroutine.
//
// # Retries
//
// When Receive asks for a retry, the turn waits out its delay holding no
// goroutine and no concurrency slot, its keys blocked; the owner's Due
// channel fires when a delay ends, and Collect submits the turns that are
// due. WakeAll cuts every such wait short.
//
// # Priority levels
//
// On a scheduler with levels (NewLevelScheduler) a ready message is
// queued at its level, raised by priority inheritance: a message runs at
// the highest level of every message that waits for it, directly (queued
// behind it on one of its keys) or through others (queued behind a
// message that waits for it on another key). A message already queued is
// raised when a higher one comes to wait for it; one already running
// keeps the level it started at. So a high-priority message is never
// stuck behind a lower key head that waits for a lower level's slot.
type Group[M any] struct {
	sched   *Scheduler
	cfg     GroupConfig[M]
	leveled bool // the scheduler has levels; immutable

	// mu guards every field below it and every actor, envelope and turn
	// the group holds (except what a worker writes in a turn it runs: its
	// done count and retry, handed back through inbox). Held by the owner
	// in Send, Collect and WakeAll, and by readers. Never held while
	// Receive or an owner's callback runs. The scheduler's lock is taken
	// under it (to raise a queued turn's level).
	mu        sync.Mutex
	keys      map[uint64]*actor[M] // keys with queued or running messages, and up to maxIdle idle ones
	idle      int                  // keys in the map with nothing queued
	over      int                  // keys over their mailbox's high mark (or holding overflow)
	freeKeys  []*actor[M]
	freeEnvs  []*env[M]
	freeTurns []*turn[M]
	delays    delayHeap[M] // turns waiting out a retry delay
	wakeNow   bool         // set by WakeAll: later retries are not delayed
	hurry     bool         // set by WakeAll on a scheduler with levels: every turn is queued at level 0
	work      []boostItem[M]
	loose     looseList[M] // messages with no key (see Walk)

	// Owned by the owner goroutine (scratch of Send and Collect).
	ready  []Runnable
	pack   *turn[M] // the round's open turn (see readyLocked); guarded by mu
	events []KeyEvent
	taken  []*turn[M]

	// timer fires when the earliest delay ends; the owner selects on Due.
	// Owned by the owner.
	timer   *time.Timer
	timerAt time.Time

	// inMu guards inbox: workers hand their finished turns over under it
	// (once per batch each), Collect takes them. A leaf lock.
	inMu   sync.Mutex
	inbox  []*turn[M]
	signal chan struct{} // one slot: turns were handed over

	// bufs are the workers' buffers of finished turns, by Worker.ID();
	// each is touched only by its worker.
	bufs []workerBuf[M]
}

const (
	maxFree = 1024
	// maxIdle is how many idle key actors stay in the map before they are
	// passivated all at once. Keeping a key that comes back soon saves a
	// map insertion and deletion per message; sweeping in bulk keeps the
	// map's size bounded by the busy keys plus maxIdle.
	maxIdle = 4096
	// flushAt is the most finished turns a worker keeps before it hands
	// them over, even in the middle of its batch.
	flushAt = 64
	// slowTurn is the cost of a message above which turns have one
	// message: batching a key's messages saves a scheduling per message,
	// which only pays when messages are cheap, and it holds back each
	// message's completion until its turn ends. Below it, a turn takes as
	// many of its key's queued messages as run in about turnSpan.
	slowTurn = 50 * time.Microsecond
	turnSpan = 100 * time.Microsecond
)

// workerBuf is one worker's finished turns, padded to a cache line of its
// own so that workers never share one.
type workerBuf[M any] struct {
	turns    []*turn[M]
	deferred bool
	_        [64 - 24 - 8]byte
}

// actor is one key: its mailbox, its overflow (Hold), and its turn.
type actor[M any] struct {
	mb   mailbox.Mailbox[*env[M]]
	held ring.Ring[*env[M]] // messages refused by mb, in order behind it (Hold)
	// pushed counts messages ever queued (mailbox and overflow): with the
	// queue's length, it places a message by its link's seq (raiseAhead).
	pushed uint64
	over   bool
}

// qlen is the key's queue: its mailbox, then its overflow.
func (a *actor[M]) qlen() int { return a.mb.Len() + a.held.Len() }

func (a *actor[M]) at(i int) *env[M] {
	if n := a.mb.Len(); i >= n {
		return a.held.At(i - n)
	}
	return a.mb.At(i)
}

func (a *actor[M]) head() *env[M] {
	h, _ := a.mb.Peek()
	return h
}

type env[M any] struct {
	want    atomic.Uint32 // the level it is wanted at (its own, or inherited); guarded by g.mu
	msg     M
	weight  int64
	key     uint64 // the only key, when nkeys == 1
	nkeys   int
	waiting int       // keys at whose head this message is not yet
	actor   *actor[M] // the only key's actor, when nkeys == 1
	links   []link[M] // every key, when there are two or more
	turn    *turn[M]  // the turn it is in, while it is in one
	delayed bool      // its turn waits out a delay
	prev    *env[M]   // loose list
	next    *env[M]   // loose list
	_       struct{}  // (fields above are guarded by g.mu)
}

// link is one of a message's keys: the key, its actor, and the actor's
// pushed count when the message was queued, which places the message in
// the actor's queue (raiseAhead needs it, on a scheduler with levels).
type link[M any] struct {
	key uint64
	a   *actor[M]
	seq uint64
}

func (e *env[M]) keyAt(i int) uint64 {
	if e.links == nil {
		return e.key
	}
	return e.links[i].key
}

func (e *env[M]) actorAt(i int) *actor[M] {
	if e.links == nil {
		return e.actor
	}
	return e.links[i].a
}

// boostItem is a key's queue position whose predecessors may need raising
// to a level (see raiseAhead).
type boostItem[M any] struct {
	a   *actor[M]
	pos int
}

// NewGroup returns a group that receives messages on sched. It panics
// without a scheduler or Receive, or with an invalid mailbox Config.
func NewGroup[M any](sched *Scheduler, cfg GroupConfig[M]) *Group[M] {
	if sched == nil || cfg.Receive == nil {
		panic("actors: NewGroup needs a scheduler and Receive")
	}
	if err := cfg.Mailbox.Check(); err != nil {
		panic(err.Error())
	}
	if cfg.Turn <= 0 {
		cfg.Turn = DefaultTurn
	}
	leveled := sched.levels != nil
	if leveled {
		cfg.Turn = 1
	}
	return &Group[M]{sched: sched, cfg: cfg, leveled: leveled, keys: make(map[uint64]*actor[M]),
		signal: make(chan struct{}, 1), bufs: make([]workerBuf[M], sched.Limit())}
}

// Ready is signalled when workers have handed over finished turns: the
// owner then calls Collect.
func (g *Group[M]) Ready() <-chan struct{} { return g.signal }

// Due fires when the earliest retry delay ends: the owner then calls
// Collect. Its channel changes as delays come and go: select on Due()
// afresh each time. Nil when nothing waits.
func (g *Group[M]) Due() <-chan time.Time {
	if g.timer == nil || g.timerAt.IsZero() {
		return nil
	}
	return g.timer.C
}

// Send queues messages of batch, in order, until one is refused (a key's
// mailbox is over, and Hold is off), and hands the turns that became ready
// to the scheduler. It returns how many it queued: batch[n], if any, was
// refused and nothing of it queued; the owner decides what to do with it
// (the engine spills its keys) before it sends the rest. With Hold nothing
// is refused. Owner only.
func (g *Group[M]) Send(batch []Message[M]) (n int) {
	g.mu.Lock()
	for n < len(batch) && g.sendLocked(&batch[n]) {
		n++
	}
	g.mu.Unlock()
	g.submit()
	return n
}

// submit hands the ready turns to the scheduler in one batch.
func (g *Group[M]) submit() {
	g.mu.Lock()
	g.pack = nil
	g.mu.Unlock()
	if len(g.ready) == 0 {
		return
	}
	if g.hurry {
		g.mu.Lock()
		for _, r := range g.ready {
			r.(*turn[M]).want.Store(0)
		}
		g.mu.Unlock()
	}
	g.sched.SubmitAll(g.ready)
	clear(g.ready)
	g.ready = g.ready[:0]
}

// sendLocked queues m behind its keys, or refuses it. g.mu is held.
func (g *Group[M]) sendLocked(m *Message[M]) bool {
	e := g.envelope()
	e.msg, e.weight = m.Msg, m.Weight
	switch {
	case len(m.Keys) >= 2:
		e.links = dedupe[M](m.Keys)
		e.nkeys = len(e.links)
		if e.nkeys == 1 {
			e.key, e.links = e.links[0].key, nil
		}
	case len(m.Keys) == 1:
		e.key, e.nkeys = m.Keys[0], 1
	case m.HasKey:
		e.key, e.nkeys = m.Key, 1
	}
	if g.leveled {
		e.want.Store(uint32(m.Level))
	}
	if e.nkeys == 0 {
		g.loose.add(e)
		g.readyLocked(e)
		return true
	}
	for i := 0; i < e.nkeys; i++ {
		a := g.keys[e.keyAt(i)]
		if a == nil {
			a = g.spawn()
			g.keys[e.keyAt(i)] = a
			g.idle++
		}
		if e.links != nil {
			e.links[i].a = a
		} else {
			e.actor = a
		}
	}
	if !g.cfg.Hold {
		for i := 0; i < e.nkeys; i++ {
			a := e.actorAt(i)
			if !a.mb.Accepts(e.weight) {
				if !a.over {
					// Refused: the key is over now (the mailbox says so).
					a.mb.Push(nil, e.weight)
					g.overChanged(a)
				}
				g.recycle(e)
				return false
			}
		}
	}
	for i := 0; i < e.nkeys; i++ {
		a := e.actorAt(i)
		if a.qlen() == 0 {
			g.idle--
		}
		if e.links != nil {
			e.links[i].seq = a.pushed
		}
		a.pushed++
		if a.held.Len() > 0 {
			a.held.Push(e)
		} else if ok, _ := a.mb.Push(e, e.weight); !ok {
			a.held.Push(e) // Hold: behind the mailbox
		}
		g.overChanged(a)
		if a.qlen() > 1 {
			e.waiting++
		}
	}
	if e.waiting == 0 {
		g.readyLocked(e)
	} else if g.leveled {
		for i := 0; i < e.nkeys; i++ {
			a := e.actorAt(i)
			g.raiseAhead(a, a.qlen()-1, uint32(m.Level))
		}
	}
	return true
}

// overChanged recounts a's over state after its mailbox or overflow
// changed. g.mu is held.
func (g *Group[M]) overChanged(a *actor[M]) {
	over := a.mb.Over() || a.held.Len() > 0
	if over != a.over {
		a.over = over
		if over {
			g.over++
		} else {
			g.over--
		}
	}
}

// readyLocked puts e, which heads all its keys and is in no turn, in a
// turn. While work is cheap, a turn takes as many messages as run in about
// turnSpan: e, the messages of its key queued right behind it, and, in
// the same round of Send or Collect, other keys' ready heads and theirs
// (the round's open turn, g.pack), so that a batch of cheap messages costs
// one scheduling and one hand-back, not one per message. A message of
// several keys, and every message while work blocks or on a scheduler
// with levels, gets a turn of its own. g.mu is held.
func (g *Group[M]) readyLocked(e *env[M]) {
	n := g.turnLen()
	if n <= 1 || e.nkeys > 1 {
		g.ready = append(g.ready, g.newTurn(e))
		return
	}
	t := g.pack
	if t == nil || len(t.envs) >= n {
		t = g.newTurn(e)
		g.pack = t
		g.ready = append(g.ready, t)
	} else {
		e.turn = t
		t.envs = append(t.envs, e)
	}
	if e.nkeys != 1 {
		return
	}
	// The messages of e's key right behind it, of that key alone.
	a := e.actor
	for i := 1; i < a.mb.Len() && len(t.envs) < n; i++ {
		x := a.mb.At(i)
		if x.nkeys != 1 || x.turn != nil {
			break
		}
		x.turn = t
		t.envs = append(t.envs, x)
	}
}

// turnLen is how many messages a turn takes now: as many as run in about
// turnSpan by the scheduler's estimate of a message's cost, or 1 while
// work blocks or on a scheduler with levels.
func (g *Group[M]) turnLen() int {
	if g.leveled || g.cfg.Turn == 1 {
		return 1
	}
	unit := g.sched.unitCost.Load()
	if unit >= int64(slowTurn) {
		return 1
	}
	return int(min(int64(g.cfg.Turn), int64(turnSpan)/unit))
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
func (g *Group[M]) raiseAhead(a *actor[M], pos int, lvl uint32) {
	work := append(g.work[:0], boostItem[M]{a, pos})
	for len(work) > 0 {
		it := work[len(work)-1]
		work = work[:len(work)-1]
		for i := it.pos - 1; i >= 0; i-- {
			x := it.a.at(i)
			if x.want.Load() <= lvl {
				break
			}
			x.want.Store(lvl)
			if t := x.turn; t != nil {
				t.want.Store(lvl)
				g.sched.raise(t) // queued: queued again at lvl; otherwise lvl is read when it is
			}
			for _, l := range x.links {
				if l.a != it.a {
					work = append(work, boostItem[M]{l.a, int(l.seq - (l.a.pushed - uint64(l.a.qlen())))})
				}
			}
		}
	}
	clear(work)
	g.work = work[:0]
}

func (g *Group[M]) envelope() *env[M] {
	if n := len(g.freeEnvs); n > 0 {
		e := g.freeEnvs[n-1]
		g.freeEnvs[n-1] = nil
		g.freeEnvs = g.freeEnvs[:n-1]
		return e
	}
	return &env[M]{}
}

// recycle clears e and keeps it for reuse. g.mu is held.
func (g *Group[M]) recycle(e *env[M]) {
	var zero M
	e.msg, e.weight, e.key, e.nkeys, e.waiting, e.actor, e.links, e.turn, e.delayed = zero, 0, 0, 0, 0, nil, nil, nil, false
	if g.leveled {
		e.want.Store(0)
	}
	if len(g.freeEnvs) < maxFree {
		g.freeEnvs = append(g.freeEnvs, e)
	}
}

func (g *Group[M]) spawn() *actor[M] {
	if n := len(g.freeKeys); n > 0 {
		a := g.freeKeys[n-1]
		g.freeKeys[n-1] = nil
		g.freeKeys = g.freeKeys[:n-1]
		return a
	}
	a := &actor[M]{}
	a.mb.Init(&g.cfg.Mailbox)
	return a
}

// newTurn makes a turn of e. g.mu is held.
func (g *Group[M]) newTurn(e *env[M]) *turn[M] {
	var t *turn[M]
	if n := len(g.freeTurns); n > 0 {
		t = g.freeTurns[n-1]
		g.freeTurns[n-1] = nil
		g.freeTurns = g.freeTurns[:n-1]
	} else {
		t = &turn[M]{g: g}
	}
	t.envs = append(t.envs[:0], e)
	t.gen++
	if g.leveled {
		t.want.Store(e.want.Load())
	}
	e.turn = t
	return t
}

func (g *Group[M]) freeTurn(t *turn[M]) {
	for i := range t.envs {
		t.envs[i] = nil
	}
	t.envs, t.done, t.after, t.retry = t.envs[:0], 0, 0, false
	if len(g.freeTurns) < maxFree {
		g.freeTurns = append(g.freeTurns, t)
	}
}

// WakeAll receives every message waiting for a retry now, and makes later
// retries immediate. The engine calls it when a partition is revoked, so
// that waiting messages are given up quickly. On a scheduler with levels
// it also queues every ready turn of the group at level 0, and every later
// one too, so that the group's messages are given up without waiting for
// their levels' slots. Owner only.
func (g *Group[M]) WakeAll() {
	g.mu.Lock()
	g.wakeNow = true
	for g.delays.Len() > 0 {
		t := heap.Pop(&g.delays).(*turn[M])
		g.undelay(t)
		g.ready = append(g.ready, t)
	}
	if g.leveled {
		g.hurry = true
		g.sched.raiseAll(func(r Runnable) bool {
			t, ok := r.(*turn[M])
			return ok && t.g == g
		})
	}
	g.mu.Unlock()
	g.setTimer()
	g.submit()
}

func (g *Group[M]) undelay(t *turn[M]) {
	for _, e := range t.envs {
		e.delayed = false
	}
}

// Delayed is the number of messages waiting out a retry delay.
func (g *Group[M]) Delayed() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.delays.Len()
}

// Keys is the number of keys with queued or running messages.
func (g *Group[M]) Keys() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.keys) - g.idle
}

// Over is the number of keys over their mailbox's high mark (or holding
// overflow, with Hold).
func (g *Group[M]) Over() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.over
}

// KeyOver reports whether key k is over its mailbox's high mark: it
// reached its bound (or refused a message, or holds overflow) and has not
// fallen to its low mark since.
func (g *Group[M]) KeyOver(k uint64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.keys[k]
	return a != nil && a.over
}

// Accepts reports whether a message of the given weight with key k would
// be queued now rather than refused (with Hold: rather than held back).
func (g *Group[M]) Accepts(k uint64, weight int64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.keys[k]
	return a == nil || (a.held.Len() == 0 && a.mb.Accepts(weight))
}

// KeyIdle reports whether key k holds nothing: no message queued or
// running.
func (g *Group[M]) KeyIdle(k uint64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.keys[k]
	return a == nil || a.qlen() == 0
}

// Load returns what key k holds now: its messages, queued, held or
// running, and their summed weight (zero when it holds nothing).
func (g *Group[M]) Load(k uint64) mailbox.Limits {
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.keys[k]
	if a == nil {
		return mailbox.Limits{}
	}
	l := mailbox.Limits{Messages: a.qlen(), Bytes: a.mb.Bytes()}
	a.held.Each(func(e *env[M]) { l.Bytes += e.weight })
	return l
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

// keyPanic reports a broken invariant: a message finished that did not
// head its key.
func keyPanic(k uint64) string {
	return fmt.Sprintf("actors: key %x finished a message that was not at its head", k)
}
