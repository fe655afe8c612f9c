package protoactorbridge

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/orderly-go/orderly"
)

// NoPassivation as WithPassivation keeps every per-key actor alive until
// Close.
const NoPassivation time.Duration = -1

// NoRequestTimeout as WithRequestTimeout lets a request whose context has
// no deadline wait until the context is done (for orderly, until the
// partition's revoke or drain timeout has passed).
const NoRequestTimeout time.Duration = -1

// Option configures a Bridge. Options are checked once, by New; a bad value
// makes New return an error wrapping orderly.ErrInvalidOption.
type Option func(*config)

type config struct {
	target         *actor.PID
	props          *actor.Props
	keyFunc        func(*orderly.Record) string
	idle           time.Duration
	requestTimeout time.Duration
	supervisor     actor.SupervisorStrategy
	perKeyOnly     []string // per-key options given, checked against WithTarget
	errs           []error
}

func defaultConfig() config {
	return config{
		keyFunc:        func(r *orderly.Record) string { return string(r.Key) },
		idle:           30 * time.Second,
		requestTimeout: 30 * time.Second,
		supervisor:     actor.DefaultSupervisorStrategy(),
	}
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: protoactorbridge: "+format, append([]any{orderly.ErrInvalidOption}, args...)...))
}

// WithTarget sends every record to the actor pid, which the caller owns
// (spawned, supervised and stopped by the caller; Close leaves it alone).
// One actor handles its messages one at a time, so records of all keys
// queue in its mailbox, up to the engine's WithMaxConcurrency of them: use
// WithPerKey for parallelism, or make pid a router. The bridge watches pid:
// when it stops, requests waiting on it fail with ErrActorStopped, and
// later ones with ErrActorDead. Exactly one of WithTarget and WithPerKey is
// required.
func WithTarget(pid *actor.PID) Option {
	return func(c *config) {
		if pid == nil {
			c.fail("WithTarget(nil)")
		}
		c.target = pid
	}
}

// WithPerKey routes each record to an actor of its own key (see
// WithKeyFunc), made from props on the key's first record and spawned as a
// child of the bridge's own actor: a virtual actor per key. orderly hands a
// key's records to the bridge one at a time and in offset order (per
// partition), so each such actor sees its key's records in that order, one
// request in its mailbox at a time unless an attempt timed out (the next
// then queues behind it). Idle actors are stopped (see WithPassivation) and spawned again on the key's next record. props must
// not have a guardian strategy (protoactor refuses those for children);
// the attempt that would spawn from it fails with the spawn's error.
// Exactly one of WithTarget and WithPerKey is required.
func WithPerKey(props *actor.Props) Option {
	return func(c *config) {
		if props == nil {
			c.fail("WithPerKey(nil)")
		}
		c.props = props
	}
}

// WithKeyFunc sets the routing key of a record: with WithPerKey, records
// with equal keys go to the same actor. Default: the record's Kafka key as
// a string (a nil key and an empty key are both ""), which matches
// orderly.ByKey. Give the same function as orderly.ByKeyFunc when that is
// the engine's ordering. f must be quick, safe for concurrent use and must
// not modify the record; nil is invalid.
func WithKeyFunc(f func(*orderly.Record) string) Option {
	return func(c *config) {
		if f == nil {
			c.fail("WithKeyFunc(nil)")
		}
		c.keyFunc = f
	}
}

// WithPassivation stops a per-key actor (with a poison pill, so that what
// is queued in its mailbox runs first) once it has had no request for d
// and has answered every request it was sent. Its key's next record spawns
// a new one, which starts from its Started message: in-memory state does
// not survive passivation, so an actor that must keep state loads it when
// it starts and saves it as it goes. Default 30s; d must be > 0, or
// NoPassivation. Only with WithPerKey.
//
// The bridge times idleness with its own timers, not protoactor's
// SetReceiveTimeout, which has a data race between its timer and the
// actor's goroutine.
func WithPassivation(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 && d != NoPassivation {
			c.fail("WithPassivation(%v): must be > 0, or NoPassivation", d)
		}
		c.idle = d
		c.perKeyOnly = append(c.perKeyOnly, "WithPassivation")
	}
}

// WithRequestTimeout bounds how long a request waits for its reply when
// the handler's context has no deadline. When it has one (as with
// orderly.WithAttemptTimeout) that deadline is used instead. Default 30s;
// d must be > 0, or NoRequestTimeout.
func WithRequestTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 && d != NoRequestTimeout {
			c.fail("WithRequestTimeout(%v): must be > 0, or NoRequestTimeout", d)
		}
		c.requestTimeout = d
	}
}

// WithSupervisor sets the supervisor strategy for the per-key actors.
// Before the strategy decides, a request the actor panicked on fails with
// an *ActorPanicError. Default actor.DefaultSupervisorStrategy() (restart,
// at most 10 times in 10 seconds, then stop). A restarted actor is a new
// instance: its in-memory state is gone. Only with WithPerKey; nil is
// invalid.
func WithSupervisor(s actor.SupervisorStrategy) Option {
	return func(c *config) {
		if s == nil {
			c.fail("WithSupervisor(nil)")
		}
		c.supervisor = s
		c.perKeyOnly = append(c.perKeyOnly, "WithSupervisor")
	}
}
