package protoactorbridge

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// This file is the per-key actors' life after spawning: passivation when
// idle, and what happens when one stops.

// armPassivation makes sure ch's timer will check it for idleness. Called
// with mu held, when ch has just answered its last outstanding request.
func (b *Bridge) armPassivation(ch *child) {
	if b.cfg.idle <= 0 || ch.armed || b.closing {
		return
	}
	ch.armed = true
	if ch.timer == nil {
		ch.timer = time.AfterFunc(b.cfg.idle, func() { b.passivate(ch) })
	} else {
		ch.timer.Reset(b.cfg.idle)
	}
}

// passivate runs on ch's timer: it stops ch's actor if it has been idle for
// the passivation period and has answered everything, re-arms the timer if
// it has not been idle long enough, and otherwise leaves it to be armed
// again when its outstanding requests are answered.
func (b *Bridge) passivate(ch *child) {
	b.mu.Lock()
	ch.armed = false
	if b.closing || ch.dead || ch.outstanding > 0 || ch.pid == nil {
		b.mu.Unlock()
		return
	}
	if rest := time.Until(ch.lastUsed.Add(b.cfg.idle)); rest > 0 {
		ch.armed = true
		ch.timer.Reset(rest)
		b.mu.Unlock()
		return
	}
	pid := ch.pid
	b.retire(ch)
	b.mu.Unlock()
	b.passivated.Add(1)
	// Nothing is queued for it but what the actor may have sent itself; the
	// poison pill runs after that.
	b.system.Root.Poison(pid)
}

// retire takes ch out of routing: the key's next record spawns a new
// actor. Called with mu held.
func (b *Bridge) retire(ch *child) {
	ch.dead = true
	if b.children[ch.key] == ch {
		delete(b.children, ch.key)
	}
	if ch.id != "" && b.byPID[ch.id] == ch {
		delete(b.byPID, ch.id)
	}
	if ch.timer != nil {
		ch.timer.Stop()
		ch.armed = false
	}
}

// childStopped runs on the bridge's actor when one of its children has
// stopped (passivated, stopped by its supervisor, or by Close): requests
// still waiting on it fail with ErrActorStopped, since protoactor drops
// the messages a stopped actor had queued.
func (b *Bridge) childStopped(pid *actor.PID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch := b.byPID[pid.Id]
	if ch == nil {
		return // passivated: it had nothing outstanding
	}
	b.retire(ch)
	b.failCalls(func(c *call) bool { return c.child == ch }, ErrActorStopped)
}

// targetStopped runs on the bridge's actor when WithTarget's actor has
// stopped: requests waiting on it fail with ErrActorStopped; later ones
// reach protoactor's dead letters and fail with ErrActorDead.
func (b *Bridge) targetStopped() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failCalls(func(c *call) bool { return c.target != nil }, ErrActorStopped)
}
