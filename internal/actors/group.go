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

// KeyLimits sets a key actor's high and low water marks. When a Send brings
// a key to or above High (Messages or Weight; a zero field is unlimited),
// OnOver is called for it; when the key later falls to or below Low in both
// fields, OnUnder is called. The callbacks are how the engine turns a full
// key mailbox into backpressure. They run with the group's lock held, so
// that each key's OnOver and OnUnder calls arrive in the order of the state
// changes they report (run outside it, a finishing message's OnUnder could
// overtake the OnOver of the Send before it); they must be quick and must
// not call back into the group.
type KeyLimits[K comparable] struct {
	High, Low Load
	OnOver    func(K)
	OnUnder   func(K)
}

func (l *KeyLimits[K]) over(ld Load) bool {
	return (l.High.Messages > 0 && ld.Messages >= l.High.Messages) ||
		(l.High.Weight > 0 && ld.Weight >= l.High.Weight)
}

func (l *KeyLimits[K]) under(ld Load) bool {
	return (l.High.Messages == 0 || ld.Messages <= l.Low.Messages) &&
		(l.High.Weight == 0 || ld.Weight <= l.Low.Weight)
}

// Group runs messages in per-key order on a Scheduler.
//
// Send(m, w, k1, k2, ...) delivers m to the group's receive function after
// every message sent earlier that shares any of k1, k2, ... has returned
// from receive, and before any message sent later that shares one of them.
// Messages with no key in common run in parallel, up to the scheduler's
// limit; a message with no keys runs as soon as the scheduler allows.
//
// Each key is an actor whose mailbox is its queue in the group. The actor
// exists only while its queue is not empty: on the first message it is
// created, after its last message returns it is passivated (deleted). A
// message with several keys waits at the head of each of its keys' queues
// and runs once it heads all of them; while it waits, those keys hold no
// goroutine.
//
// The message is stored by value in the group's envelope and receive gets
// a pointer to it, so a message's state (attempt counts, say) survives
// retries without an allocation of its own. receive may ask for its
// message again: returning retry == true keeps the
// message at the head of its keys (they stay blocked, later messages wait)
// and receives it again after the delay. While it waits, the message holds
// no goroutine and no concurrency slot. WakeAll cuts every such wait short.
//
// A Group is safe for concurrent use; messages sharing a key must be sent
// from one goroutine (or otherwise ordered by the caller) for "earlier" to
// mean anything.
type Group[K comparable, M any] struct {
	sched   *Scheduler
	receive func(*M) (retryAfter time.Duration, retry bool)
	limits  KeyLimits[K]

	mu      sync.Mutex                      // guards keys, free, delayed, wakeNow and every envelope's waiting field
	keys    map[K]*keyActor[K, M]           // only keys with queued or running messages
	free    []*keyActor[K, M]               // passivated actors kept for reuse, at most maxFree
	delayed map[*envelope[K, M]]*time.Timer // messages waiting to be received again
	wakeNow bool                            // set by WakeAll: later retries are not delayed
}

const maxFree = 256

type keyActor[K comparable, M any] struct {
	queue ring[*envelope[K, M]] // the head is running or waiting on other keys
	load  Load
	over  bool // OnOver was called and OnUnder not yet
}

type envelope[K comparable, M any] struct {
	g       *Group[K, M]
	msg     M
	weight  int64
	key     K   // the only key, when keys is nil and nkeys == 1
	keys    []K // all keys, when there are two or more
	nkeys   int
	waiting int // keys at whose head this message is not yet; guarded by g.mu
}

// NewGroup returns a group that calls receive for each message on sched.
func NewGroup[K comparable, M any](sched *Scheduler, receive func(*M) (retryAfter time.Duration, retry bool), limits KeyLimits[K]) *Group[K, M] {
	if sched == nil || receive == nil {
		panic("actors: NewGroup needs a scheduler and a receive function")
	}
	return &Group[K, M]{sched: sched, receive: receive, limits: limits,
		keys: make(map[K]*keyActor[K, M]), delayed: make(map[*envelope[K, M]]*time.Timer)}
}

// WakeAll receives every message waiting for a retry now, and makes later
// retries immediate. The engine calls it when a partition is revoked, so
// that waiting messages are given up quickly.
func (g *Group[K, M]) WakeAll() {
	g.mu.Lock()
	g.wakeNow = true
	var wake []*envelope[K, M]
	for env, t := range g.delayed {
		if t.Stop() {
			delete(g.delayed, env)
			wake = append(wake, env)
		}
	}
	g.mu.Unlock()
	for _, env := range wake {
		g.sched.Submit(env)
	}
}

// Delayed is the number of messages waiting to be received again.
func (g *Group[K, M]) Delayed() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.delayed)
}

// Send queues m behind the keys given. weight counts against the key
// limits. Send never blocks; a key over its high mark is reported through
// KeyLimits.OnOver, not by refusing the message, so that what the caller
// already holds is never lost. Duplicate keys count once.
func (g *Group[K, M]) Send(m M, weight int64, keys ...K) {
	env := &envelope[K, M]{g: g, msg: m, weight: weight}
	switch len(keys) {
	case 0:
		g.sched.Submit(env)
		return
	case 1:
		env.key, env.nkeys = keys[0], 1
	default:
		env.keys = dedupe(keys)
		env.nkeys = len(env.keys)
		if env.nkeys == 1 {
			env.key, env.keys = env.keys[0], nil
		}
	}
	g.mu.Lock()
	for i := 0; i < env.nkeys; i++ {
		k := env.keyAt(i)
		a := g.keys[k]
		if a == nil {
			a = g.spawn()
			g.keys[k] = a
		}
		a.queue.push(env)
		if a.queue.len() > 1 {
			env.waiting++
		}
		a.load.Messages++
		a.load.Weight += weight
		if !a.over && g.limits.over(a.load) {
			a.over = true
			if g.limits.OnOver != nil {
				g.limits.OnOver(k)
			}
		}
	}
	ready := env.waiting == 0
	g.mu.Unlock()
	if ready {
		g.sched.Submit(env)
	}
}

// Keys is the number of live (non-passivated) key actors.
func (g *Group[K, M]) Keys() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.keys)
}

// Load returns what key k holds now (zero when it is passivated).
func (g *Group[K, M]) Load(k K) Load {
	g.mu.Lock()
	defer g.mu.Unlock()
	if a := g.keys[k]; a != nil {
		return a.load
	}
	return Load{}
}

func (g *Group[K, M]) spawn() *keyActor[K, M] {
	if n := len(g.free); n > 0 {
		a := g.free[n-1]
		g.free = g.free[:n-1]
		return a
	}
	return &keyActor[K, M]{}
}

// Run receives the message and then lets each of its keys move on, or
// schedules it to be received again.
func (env *envelope[K, M]) Run() {
	finished := false
	defer func() {
		if !finished { // receive panicked: the message counts as received
			env.g.done(env)
		}
	}()
	after, retry := env.g.receive(&env.msg)
	finished = true
	if retry {
		env.g.again(env, after)
		return
	}
	env.g.done(env)
}

func (g *Group[K, M]) again(env *envelope[K, M], after time.Duration) {
	g.mu.Lock()
	if after <= 0 || g.wakeNow {
		g.mu.Unlock()
		g.sched.Submit(env)
		return
	}
	g.delayed[env] = time.AfterFunc(after, func() {
		g.mu.Lock()
		_, waiting := g.delayed[env]
		delete(g.delayed, env)
		g.mu.Unlock()
		if waiting {
			g.sched.Submit(env)
		}
	})
	g.mu.Unlock()
}

func (env *envelope[K, M]) keyAt(i int) K {
	if env.keys == nil {
		return env.key
	}
	return env.keys[i]
}

// done pops env from the head of each of its keys, passivates keys left
// empty, and submits the messages that now head all of their keys.
func (g *Group[K, M]) done(env *envelope[K, M]) {
	if env.nkeys == 0 {
		return
	}
	var (
		ready []*envelope[K, M]
		next  *envelope[K, M] // the common case: one message becomes ready
	)
	g.mu.Lock()
	for i := 0; i < env.nkeys; i++ {
		k := env.keyAt(i)
		a := g.keys[k]
		head, _ := a.queue.pop()
		if head != env {
			g.mu.Unlock()
			panic(fmt.Sprintf("actors: key %v finished a message that was not at its head", k))
		}
		a.load.Messages--
		a.load.Weight -= env.weight
		if a.over && g.limits.under(a.load) {
			a.over = false
			if g.limits.OnUnder != nil {
				g.limits.OnUnder(k)
			}
		}
		h, ok := a.queue.peek()
		if !ok {
			delete(g.keys, k)
			if len(g.free) < maxFree {
				a.load = Load{}
				g.free = append(g.free, a)
			}
			continue
		}
		h.waiting--
		if h.waiting == 0 {
			if next == nil {
				next = h
			} else {
				ready = append(ready, h)
			}
		}
	}
	g.mu.Unlock()
	if next != nil {
		g.sched.Submit(next)
	}
	for _, h := range ready {
		g.sched.Submit(h)
	}
}

func dedupe[K comparable](keys []K) []K {
	out := make([]K, 0, len(keys))
	for _, k := range keys {
		dup := false
		for _, o := range out {
			if o == k {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, k)
		}
	}
	return out
}
