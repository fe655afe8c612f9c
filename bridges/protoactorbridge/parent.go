package protoactorbridge

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
)

// parent is the bridge's own actor. With WithPerKey it spawns the per-key
// actors as its children, forwards their first requests, supervises them
// and hears when they stop; with WithTarget it watches the target. Its
// state lives in the Bridge, so a restart would lose nothing.
type parent struct {
	b            *Bridge
	shuttingDown bool
}

// forward asks the parent to send req to child's actor, spawning it first
// if it has not been.
type forward struct {
	child *child
	env   *actor.MessageEnvelope // the Request, its sender the reply process
}

// shutdown asks the parent to stop its children and then itself.
type shutdown struct {
	graceful bool // poison pills (queued messages run first) rather than Stop
}

func (p *parent) Receive(ctx actor.Context) {
	b := p.b
	switch m := ctx.Message().(type) {
	case *actor.Started:
		if b.cfg.target != nil {
			ctx.Watch(b.cfg.target)
		}
	case *forward:
		p.forward(ctx, m)
	case *actor.Terminated:
		if b.cfg.target != nil && m.Who.Equal(b.cfg.target) {
			b.targetStopped()
		} else {
			b.childStopped(m.Who)
		}
		if p.shuttingDown && len(ctx.Children()) == 0 {
			ctx.Stop(ctx.Self())
		}
	case shutdown:
		p.shuttingDown = true
		if b.cfg.target != nil {
			ctx.Unwatch(b.cfg.target)
		}
		for _, pid := range ctx.Children() {
			if m.graceful {
				ctx.Poison(pid)
			} else {
				ctx.Stop(pid)
			}
		}
		if len(ctx.Children()) == 0 {
			ctx.Stop(ctx.Self())
		}
	case *actor.Stopped:
		b.stopOnce.Do(func() { close(b.stopped) })
	}
}

// forward spawns m.child's actor if need be and sends it m.req. Once the
// parent has forwarded every request that went through it, the child's PID
// is published and later requests go to it directly, behind these.
func (p *parent) forward(ctx actor.Context, m *forward) {
	b, ch := p.b, m.child
	if p.shuttingDown {
		// Close gave up waiting for in-flight requests and is stopping the
		// children: spawn nothing more.
		b.mu.Lock()
		if c := b.calls[m.env.Sender.RequestId]; c != nil {
			b.completeLocked(c, ErrClosed)
		}
		ch.viaParent--
		b.mu.Unlock()
		return
	}
	if ch.spawned == nil && !ch.failed {
		pid, err := p.spawn(ctx, ch.key)
		if err != nil {
			ch.failed = true
			b.mu.Lock()
			b.retire(ch)
			b.failCalls(func(c *call) bool { return c.child == ch }, err)
			b.mu.Unlock()
		} else {
			ch.spawned = pid
			b.spawned.Add(1)
			b.mu.Lock()
			if !ch.dead {
				ch.id = pid.Id
				b.byPID[ch.id] = ch
			}
			b.mu.Unlock()
		}
	}
	b.mu.Lock()
	send := !ch.dead && !ch.failed
	b.mu.Unlock()
	if send {
		ctx.Send(ch.spawned, m.env) // an envelope with a sender: a request
	}
	// A request not sent was failed when its actor was declared dead.
	b.mu.Lock()
	if ch.viaParent--; ch.viaParent == 0 && ch.pid == nil && !ch.dead && !ch.failed {
		ch.pid = ch.spawned
	}
	b.mu.Unlock()
}

// spawn starts the actor of key as a child, turning a panic (a producer
// that panics, props with a guardian strategy) into an error.
func (p *parent) spawn(ctx actor.Context, key string) (pid *actor.PID, err error) {
	defer func() {
		if v := recover(); v != nil {
			pid, err = nil, fmt.Errorf("protoactorbridge: spawning the actor of key %q panicked: %v", key, v)
		}
	}()
	pid, err = ctx.SpawnNamed(p.b.cfg.props, childName(key)+ctx.ActorSystem().ProcessRegistry.NextId())
	if err != nil {
		err = fmt.Errorf("protoactorbridge: spawning the actor of key %q: %w", key, err)
	}
	return pid, err
}

// HandleFailure makes the parent the supervisor of its children: a request
// a child panicked on fails at once with an *ActorPanicError, then the
// configured strategy decides the child's fate. A strategy that panics
// stops the child rather than leaving its mailbox suspended.
func (p *parent) HandleFailure(system *actor.ActorSystem, supervisor actor.Supervisor, child *actor.PID,
	rs *actor.RestartStatistics, reason any, message any) {
	if env, ok := message.(*actor.MessageEnvelope); ok && env.Sender != nil && env.Sender.Id == p.b.replies.Id {
		if _, ok := env.Message.(*Request); ok {
			p.b.answer(env.Sender.RequestId, &ActorPanicError{Actor: child, Reason: reason})
		}
	}
	defer func() {
		if v := recover(); v != nil {
			system.Logger().Error("protoactorbridge: supervisor strategy panicked; stopping the child",
				"child", child, "panic", v)
			supervisor.StopChildren(child)
		}
	}()
	p.b.cfg.supervisor.HandleFailure(system, supervisor, child, rs, reason, message)
}

// childName is the readable part of a key's actor's name: "key-" and up to
// 32 bytes of the key, characters other than letters, digits, '-', '_' and
// '.' replaced by '_'. A unique id follows it.
func childName(key string) string {
	const most = 32
	b := make([]byte, 0, 4+min(len(key), most))
	b = append(b, "key-"...)
	for i := 0; i < len(key) && i < most; i++ {
		c := key[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
			b = append(b, c)
		default:
			b = append(b, '_')
		}
	}
	return string(b)
}
