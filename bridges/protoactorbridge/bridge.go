package protoactorbridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/orderly-go/orderly"
)

// Bridge is an orderly.Handler that hands each record to a protoactor actor
// as a *Request and waits for its Reply. Make one with New, give it to
// orderly.New as the handler (and to orderly.WithHooks for
// Request.Attempt), and Close it after the engine's Run has returned.
//
// Handle blocks until the reply, the request's deadline, or the end of its
// context. Every method is safe for concurrent use.
type Bridge struct {
	system  *actor.ActorSystem
	cfg     config
	parent  *actor.PID // the bridge's actor: spawns and supervises per-key actors, watches the target
	replies *actor.PID // the reply process; each request's sender is this PID with its call's RequestId

	// mu guards the fields below it. It is never held while calling into
	// protoactor or user code, except for arming and stopping timers.
	mu       sync.Mutex
	calls    map[uint32]*call  // requests the actor has not answered yet (per key: also those the handler gave up on)
	nextID   uint32            // the last call id handed out
	children map[string]*child // per-key actors by routing key
	byPID    map[string]*child // the same, by their PID's Id
	closing  bool              // Close was called: new requests fail with ErrClosed

	inFlight    atomic.Int64  // Handle calls waiting for a reply
	closingFlag atomic.Bool   // closing, read without the lock by finishing Handle calls
	idle        chan struct{} // receives a token when inFlight drops to 0 while closing
	stopped     chan struct{} // closed when the bridge's actor has stopped
	stopOnce    sync.Once
	closeOnce   sync.Once
	closed      chan struct{} // closed when the first Close call returns
	closeErr    error         // the first Close call's result; written before closed is closed

	spawned     atomic.Uint64
	passivated  atomic.Uint64
	lateReplies atomic.Uint64
}

// call is one request waiting for its answer.
type call struct {
	id     uint32
	target *actor.PID // WithTarget's actor; nil with WithPerKey
	child  *child     // WithPerKey's actor; nil with WithTarget
	done   chan error // buffered: receives the outcome once, under mu
	// abandoned is set (under mu) when the handler gave up waiting while
	// the request is still at a per-key actor: the call stays registered,
	// so that the actor counts as busy until it answers.
	abandoned bool
}

// child is one key's actor.
type child struct {
	key string
	// pid is set by the bridge's actor once the child is spawned and every
	// request sent through the bridge's actor has been forwarded to it;
	// from then on requests go to it directly. Guarded by mu.
	pid *actor.PID
	// spawned and failed belong to the bridge's actor's goroutine alone.
	spawned *actor.PID
	failed  bool
	// Guarded by mu:
	id          string    // the spawned actor's PID.Id, its key in byPID; "" before
	viaParent   int       // requests sent through the bridge's actor and not yet forwarded
	outstanding int       // requests sent and not answered (or failed)
	lastUsed    time.Time // when outstanding last dropped to 0
	dead        bool      // stopped, passivated or failed to spawn: no longer routed to
	timer       *time.Timer
	armed       bool // timer is set to check for passivation
}

// New makes a bridge on system. Exactly one of WithTarget and WithPerKey is
// required. New spawns the bridge's own actor (a child of the system's
// root, named "orderly-bridge$<id>"), which is the parent of the per-key
// actors, and registers a reply process; Close stops and removes them. It
// returns an error wrapping orderly.ErrInvalidOption for each bad option.
func New(system *actor.ActorSystem, opts ...Option) (*Bridge, error) {
	cfg := defaultConfig()
	if system == nil {
		cfg.fail("New: nil ActorSystem")
	}
	for _, o := range opts {
		if o == nil {
			cfg.fail("New: nil Option")
			continue
		}
		o(&cfg)
	}
	switch {
	case cfg.target == nil && cfg.props == nil:
		cfg.fail("New: one of WithTarget and WithPerKey is required")
	case cfg.target != nil && cfg.props != nil:
		cfg.fail("New: WithTarget and WithPerKey exclude each other")
	case cfg.target != nil:
		for _, name := range cfg.perKeyOnly {
			cfg.fail("%s: only with WithPerKey", name)
		}
	}
	if len(cfg.errs) > 0 {
		return nil, errors.Join(cfg.errs...)
	}
	b := &Bridge{
		system:   system,
		cfg:      cfg,
		calls:    make(map[uint32]*call),
		children: make(map[string]*child),
		byPID:    make(map[string]*child),
		idle:     make(chan struct{}, 1),
		stopped:  make(chan struct{}),
		closed:   make(chan struct{}),
	}
	reg := system.ProcessRegistry
	var ok bool
	if b.replies, ok = reg.Add(&replyProcess{b: b}, "orderly-bridge-replies"+reg.NextId()); !ok {
		return nil, fmt.Errorf("protoactorbridge: could not register the reply process %v", b.replies)
	}
	parentProps := actor.PropsFromProducer(func() actor.Actor { return &parent{b: b} })
	var err error
	if b.parent, err = system.Root.SpawnNamed(parentProps, "orderly-bridge"+reg.NextId()); err != nil {
		reg.Remove(b.replies)
		return nil, fmt.Errorf("protoactorbridge: spawning the bridge's actor: %w", err)
	}
	return b, nil
}

// Handle implements orderly.Handler: it sends r to its actor as a *Request
// and returns the actor's Reply.Err, or an error when no reply comes (see
// ErrTimeout, ErrActorDead, ErrActorStopped, ErrClosed, ActorPanicError,
// ErrUnexpectedReply) or ctx ends first. A reply that has arrived is
// always returned, even when ctx ended or Close ran meanwhile.
func (b *Bridge) Handle(ctx context.Context, r *orderly.Record) error {
	if err := ctx.Err(); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: it passed before the request was sent: %w", ErrTimeout, err)
		}
		return fmt.Errorf("protoactorbridge: request not sent: %w", context.Cause(ctx))
	}
	key := b.cfg.keyFunc(r)
	deadline, hasDeadline := ctx.Deadline()
	var timeout <-chan time.Time
	if !hasDeadline && b.cfg.requestTimeout > 0 {
		deadline = time.Now().Add(b.cfg.requestTimeout)
		t := time.NewTimer(b.cfg.requestTimeout)
		defer t.Stop()
		timeout = t.C
	}

	c, to, err := b.register(key)
	if err != nil {
		return err
	}
	// One allocation for the request, its sender and their envelope.
	m := &message{
		req:    Request{Record: r, Key: key, Attempt: attemptOf(ctx), Deadline: deadline},
		sender: actor.PID{Address: b.replies.Address, Id: b.replies.Id, RequestId: c.id},
	}
	m.env = actor.MessageEnvelope{Message: &m.req, Sender: &m.sender}
	if to != nil {
		b.system.Root.Send(to, &m.env) // an envelope with a sender: a request
	} else {
		b.system.Root.Send(b.parent, &forward{child: c.child, env: &m.env})
	}

	select {
	case err := <-c.done:
		b.leave()
		return err
	case <-ctx.Done():
	case <-timeout:
	}
	return b.giveUp(ctx, c, key, deadline)
}

// message is a request as sent: the Request, the sender PID naming its
// call, and the envelope that carries both.
type message struct {
	req    Request
	sender actor.PID
	env    actor.MessageEnvelope
}

// register records a new call for a record of key and says where to send
// it: to a PID, or (nil) through the bridge's actor, which spawns the key's
// actor first if need be.
func (b *Bridge) register(key string) (*call, *actor.PID, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return nil, nil, ErrClosed
	}
	c := &call{id: b.newID(), done: make(chan error, 1)}
	b.calls[c.id] = c
	b.inFlight.Add(1)
	if b.cfg.target != nil {
		c.target = b.cfg.target
		return c, c.target, nil
	}
	ch := b.children[key]
	if ch == nil {
		ch = &child{key: key}
		b.children[key] = ch
	}
	ch.outstanding++
	c.child = ch
	if ch.pid != nil && ch.viaParent == 0 {
		return c, ch.pid, nil
	}
	// Not spawned yet, or earlier requests are still on their way through
	// the bridge's actor: this one follows them, so the key's actor gets
	// its requests in the order they were sent.
	ch.viaParent++
	return c, nil, nil
}

// newID returns a call id not in use. RequestId is 32 bits: ids wrap
// around, skipping 0 and ids still waiting for an answer. Called with mu
// held.
func (b *Bridge) newID() uint32 {
	for {
		b.nextID++
		if _, used := b.calls[b.nextID]; b.nextID != 0 && !used {
			return b.nextID
		}
	}
}

// giveUp ends a Handle call whose context ended or whose request timed
// out, unless the reply arrived meanwhile.
func (b *Bridge) giveUp(ctx context.Context, c *call, key string, deadline time.Time) error {
	b.mu.Lock()
	if b.calls[c.id] != c {
		b.mu.Unlock()
		b.leave()
		return <-c.done // answered after all: the reply wins
	}
	if c.child != nil {
		c.abandoned = true // the actor still holds the request: it stays busy until it answers
	} else {
		delete(b.calls, c.id)
	}
	b.mu.Unlock()
	b.leave()

	who := fmt.Sprintf("actor %v", c.target)
	if c.child != nil {
		who = fmt.Sprintf("the actor of key %q", key)
	}
	if err := ctx.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("protoactorbridge: stopped waiting for %s: %w", who, context.Cause(ctx))
	}
	return fmt.Errorf("%w: %s, deadline %s: %w", ErrTimeout, who, deadline.Format(time.RFC3339Nano), context.DeadlineExceeded)
}

// leave counts a Handle call out and wakes Close when it was the last.
func (b *Bridge) leave() {
	if b.inFlight.Add(-1) == 0 && b.closingFlag.Load() {
		select {
		case b.idle <- struct{}{}:
		default:
		}
	}
}

// answer gives call id the outcome of its actor's answer, once. An answer
// no Handle call waits for any more (it gave up, or the call already has
// an outcome: a second reply, a reply after the actor was declared
// stopped) is counted as late and dropped.
func (b *Bridge) answer(id uint32, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.calls[id]
	if c == nil || !b.completeLocked(c, err) {
		b.lateReplies.Add(1)
	}
}

// completeLocked gives c, which is in b.calls, its outcome and reports
// whether a Handle call was waiting for it. Called with mu held.
func (b *Bridge) completeLocked(c *call, err error) bool {
	delete(b.calls, c.id)
	if ch := c.child; ch != nil {
		if ch.outstanding--; ch.outstanding == 0 && !ch.dead {
			ch.lastUsed = time.Now()
			b.armPassivation(ch)
		}
	}
	if c.abandoned {
		return false
	}
	c.done <- err
	return true
}

// failCalls fails every call for which match is true. Called with mu held.
func (b *Bridge) failCalls(match func(*call) bool, err error) {
	for _, c := range b.calls {
		if match(c) {
			b.completeLocked(c, err)
		}
	}
}

// Stats is a snapshot of a bridge's state.
type Stats struct {
	InFlight    int    // Handle calls waiting for a reply
	Unanswered  int    // requests sent whose actor has not answered (with WithPerKey, including those Handle gave up on)
	Actors      int    // live per-key actors (spawned or being spawned)
	Spawned     uint64 // per-key actors spawned since New
	Passivated  uint64 // per-key actors stopped for being idle
	LateReplies uint64 // answers that came after Handle stopped waiting, or twice
	Closed      bool   // Close was called
}

// Stats returns a snapshot; safe to call at any time from any goroutine.
func (b *Bridge) Stats() Stats {
	b.mu.Lock()
	s := Stats{
		InFlight:   int(b.inFlight.Load()),
		Unanswered: len(b.calls),
		Actors:     len(b.children),
		Closed:     b.closing,
	}
	b.mu.Unlock()
	s.Spawned, s.Passivated, s.LateReplies = b.spawned.Load(), b.passivated.Load(), b.lateReplies.Load()
	return s
}

// Close shuts the bridge down. From its call on, new requests fail with
// ErrClosed. It then waits, until ctx is done, for the Handle calls in
// flight to get their replies; then it stops the bridge's actors: per-key
// actors with a poison pill (they finish what is queued), or, when ctx
// ended first, with Stop (protoactor drops what is queued: those requests
// fail with ErrActorStopped). It waits for them to stop, again until ctx is
// done, fails whatever still waits with ErrClosed, and returns. A reply
// that arrived before is never dropped. WithTarget's actor is not stopped.
//
// Call Close after the engine's Run has returned, with the drain timeout
// as ctx's bound: Run has by then let running handlers finish. A Handle
// call that starts after Close fails with ErrClosed, which the engine
// would treat as a handler error. Close returns nil, or an error wrapping
// ctx's error when it stopped waiting. Later calls wait for the first one
// (until their ctx is done) and return its result.
func (b *Bridge) Close(ctx context.Context) error {
	first := false
	b.closeOnce.Do(func() { first = true })
	if !first {
		select {
		case <-b.closed:
			return b.closeErr
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer close(b.closed)

	b.mu.Lock()
	b.closing = true
	b.closingFlag.Store(true)
	for _, ch := range b.children {
		if ch.timer != nil {
			ch.timer.Stop()
			ch.armed = false
		}
	}
	waiting := b.inFlight.Load()
	b.mu.Unlock()

	var err error
	if waiting > 0 {
		select {
		case <-b.idle:
		case <-ctx.Done():
			err = fmt.Errorf("protoactorbridge: close: %d requests still waiting for replies: %w", b.inFlight.Load(), ctx.Err())
		}
	}
	b.system.Root.Send(b.parent, shutdown{graceful: err == nil})
	select {
	case <-b.stopped:
	case <-ctx.Done():
		if err == nil {
			err = fmt.Errorf("protoactorbridge: close: actors still stopping: %w", ctx.Err())
		}
		b.system.Root.Stop(b.parent)
	}

	b.mu.Lock()
	b.failCalls(func(*call) bool { return true }, ErrClosed)
	b.mu.Unlock()
	b.system.ProcessRegistry.Remove(b.replies)
	b.closeErr = err
	return err
}
