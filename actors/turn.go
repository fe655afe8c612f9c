package actors

import (
	"container/heap"
	"sync/atomic"
	"time"
)

// turn is one scheduling of a key: messages of one key that a worker
// receives back to back (up to Turn), or one message of several keys, or
// one with none. The owner makes it (under g.mu) and hands it to the
// scheduler; the worker that runs it writes only done, after and retry,
// and hands it back (through the group's inbox); the owner then applies
// it in Collect.
type turn[M any] struct {
	slot // scheduling state on a scheduler with levels: want is its first message's, guarded by g.mu
	g    *Group[M]
	// envs are the turn's messages, in the order they run. Each heads
	// its keys or follows another of the turn's messages on its one key:
	// for every key, the turn's messages of it are the first ones of its
	// mailbox.
	envs []*env[M]

	// Written by the worker; read by the owner after the hand-over.
	done  int // messages received
	after time.Duration
	retry bool // envs[done] asked for a retry after `after`

	// For readers (Walk): the worker stores the turn's gen in started
	// when it takes the turn (so a turn is started when the two agree,
	// and a recycled turn is not, with no store by the owner), and the
	// index of the message it is receiving in at.
	gen     uint32 // owned by the owner: bumped each time the turn is handed out
	started atomic.Uint32
	at      atomic.Int32

	// Owned by the owner (under g.mu): while delayed.
	due   time.Time
	index int // in g.delays
}

// schedSlot is the turn's slot. A turn is recycled; its stamp only grows,
// so an entry a scheduler queue kept for an earlier use of it is stale.
func (t *turn[M]) schedSlot() *slot { return &t.slot }

// Run receives the turn's messages in order, on worker w, until one asks
// for a retry; then the turn goes into w's buffer of finished turns. A
// panic escaping Receive counts its message as received (its keys move
// on) and is re-raised for the scheduler's PanicHandler; the messages
// after it are run in a later turn.
func (t *turn[M]) Run(w *Worker) {
	g := t.g
	t.at.Store(0)
	t.started.Store(t.gen)
	handed := false
	defer func() {
		if !handed {
			t.done++ // the message that panicked counts as received
			g.finished(w, t)
		}
	}()
	for t.done < len(t.envs) {
		if t.done > 0 {
			t.at.Store(int32(t.done))
		}
		after, retry := g.cfg.Receive(&t.envs[t.done].msg, w)
		if retry {
			t.after, t.retry = after, true
			break
		}
		t.done++
	}
	handed = true
	w.Did(t.done)
	g.finished(w, t)
}

// finished keeps t in w's buffer, and has w hand the buffer over when its
// batch is done (or at once, past flushAt turns).
func (g *Group[M]) finished(w *Worker, t *turn[M]) {
	b := &g.bufs[w.ID()]
	b.turns = append(b.turns, t)
	if len(b.turns) >= flushAt || t.done >= flushAt {
		// Many turns, or a long one (a busy key): hand them over now, so
		// that the key's next messages do not wait for the worker's batch.
		g.Flush(w)
		return
	}
	if !b.deferred {
		b.deferred = true
		w.Defer(g)
	}
}

// Flush hands w's finished turns to the owner: one lock, one signal. It
// is the group's Flusher, called on w's goroutine.
func (g *Group[M]) Flush(w *Worker) {
	b := &g.bufs[w.ID()]
	b.deferred = false
	if len(b.turns) == 0 {
		return
	}
	g.inMu.Lock()
	g.inbox = append(g.inbox, b.turns...)
	g.inMu.Unlock()
	clear(b.turns)
	b.turns = b.turns[:0]
	select {
	case g.signal <- struct{}{}:
	default:
	}
}

// Collect applies what the workers handed over since the last Collect,
// and the retry delays that ended. For every message received, done is
// called (with no lock held, in each key's order) before the message
// leaves its keys; then the keys move on, and the turns that became ready
// are handed to the scheduler in one batch. It returns the key events of
// the round (a key fell to its low mark or went idle), valid until the
// next Collect, and the number of messages done. Owner only.
func (g *Group[M]) Collect(done func(m *M)) (events []KeyEvent, n int) {
	g.inMu.Lock()
	g.taken, g.inbox = g.inbox, g.taken[:0]
	g.inMu.Unlock()
	for _, t := range g.taken {
		for _, e := range t.envs[:t.done] {
			done(&e.msg)
			n++
		}
	}
	g.events = g.events[:0]
	g.mu.Lock()
	for _, t := range g.taken {
		g.apply(t)
	}
	if g.delays.Len() > 0 {
		now := time.Now()
		for g.delays.Len() > 0 && !g.delays[0].due.After(now) {
			t := heap.Pop(&g.delays).(*turn[M])
			g.undelay(t)
			if g.leveled {
				t.want.Store(t.envs[0].want.Load())
			}
			g.ready = append(g.ready, t)
		}
	}
	if g.idle > maxIdle {
		g.passivate()
	}
	g.mu.Unlock()
	clear(g.taken)
	g.taken = g.taken[:0]
	g.setTimer()
	g.submit()
	return g.events, n
}

// apply applies one finished turn: its received messages leave their
// keys; a retry waits out its delay, with the messages of its key behind
// it in the turn; the turn's other messages, not received (cut short by a
// retry or a panic), run again at once. g.mu is held.
func (g *Group[M]) apply(t *turn[M]) {
	for _, e := range t.envs[:t.done] {
		g.finish(e)
	}
	rest := t.envs[t.done:]
	if len(rest) == 0 {
		g.freeTurn(t)
		return
	}
	delay := t.retry && t.after > 0 && !g.wakeNow
	t.retry = false
	if delay {
		// rest[0] waits; so do the messages of its key behind it (a
		// message of several keys or none is alone in its key's part of
		// a turn). The others go in a turn of their own, now.
		first := rest[0]
		var others *turn[M]
		keep := rest[:1]
		for _, x := range rest[1:] {
			if first.nkeys == 1 && x.nkeys == 1 && x.actor == first.actor {
				keep = append(keep, x)
				continue
			}
			if others == nil {
				others = g.newTurn(x)
				g.ready = append(g.ready, others)
			} else {
				x.turn = others
				others.envs = append(others.envs, x)
			}
		}
		n := copy(t.envs, keep)
		clear(t.envs[n:])
		t.envs = t.envs[:n]
		t.done = 0
		t.gen++ // not started again until a worker takes it
		t.due = time.Now().Add(t.after)
		for _, e := range t.envs {
			e.delayed = true
		}
		heap.Push(&g.delays, t)
		return
	}
	n := copy(t.envs, rest)
	clear(t.envs[n:])
	t.envs = t.envs[:n]
	t.done = 0
	t.gen++
	if g.leveled {
		if g.hurry {
			t.envs[0].want.Store(0)
		}
		t.want.Store(t.envs[0].want.Load())
	}
	g.ready = append(g.ready, t)
}

// finish takes e, received, off its keys, passivating keys left empty and
// readying the messages that now head all their keys. g.mu is held.
func (g *Group[M]) finish(e *env[M]) {
	for i := 0; i < e.nkeys; i++ {
		a := e.actorAt(i)
		wasOver := a.over
		head, _, _ := a.mb.Pop()
		if head != e {
			g.mu.Unlock()
			panic(keyPanic(e.keyAt(i)))
		}
		// Room in the mailbox: the overflow moves in, in order.
		for a.held.Len() > 0 {
			x, _ := a.held.Peek()
			if ok, _ := a.mb.Push(x, x.weight); !ok {
				break
			}
			a.held.Pop()
		}
		g.overChanged(a)
		low := wasOver && !a.over
		k := e.keyAt(i)
		h := a.head()
		if h == nil {
			g.idle++
			g.events = append(g.events, KeyEvent{Key: k, Low: low, Idle: true})
			continue
		}
		if low {
			g.events = append(g.events, KeyEvent{Key: k, Low: true})
		}
		h.waiting--
		if h.waiting == 0 && h.turn == nil {
			g.readyLocked(h)
		}
	}
	if e.nkeys == 0 {
		g.loose.remove(e)
	}
	g.recycle(e)
}

// setTimer points the owner's timer at the earliest delay. Owner only.
func (g *Group[M]) setTimer() {
	g.mu.Lock()
	var at time.Time
	if g.delays.Len() > 0 {
		at = g.delays[0].due
	}
	g.mu.Unlock()
	if at.Equal(g.timerAt) {
		return
	}
	g.timerAt = at
	if at.IsZero() {
		if g.timer != nil {
			g.timer.Stop()
		}
		return
	}
	d := time.Until(at)
	if g.timer == nil {
		g.timer = time.NewTimer(d)
	} else {
		g.timer.Reset(d)
	}
}

// Close stops the group's timer. The owner calls it when it is done with
// the group; messages still queued are left as they are.
func (g *Group[M]) Close() {
	if g.timer != nil {
		g.timer.Stop()
	}
	g.timerAt = time.Time{}
}

// passivate removes every idle key actor from the map, keeping some for
// reuse. g.mu is held.
func (g *Group[M]) passivate() {
	for k, a := range g.keys {
		if a.qlen() > 0 {
			continue
		}
		delete(g.keys, k)
		if len(g.freeKeys) < maxFree {
			a.mb.Init(&g.cfg.Mailbox)
			a.pushed, a.over = 0, false
			g.freeKeys = append(g.freeKeys, a)
		}
	}
	g.idle = 0
}

// delayHeap orders delayed turns by their end.
type delayHeap[M any] []*turn[M]

func (h delayHeap[M]) Len() int           { return len(h) }
func (h delayHeap[M]) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h delayHeap[M]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *delayHeap[M]) Push(x any) {
	t := x.(*turn[M])
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *delayHeap[M]) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}
