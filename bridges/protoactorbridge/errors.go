package protoactorbridge

import (
	"errors"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
)

// Errors a handler attempt can end with besides the actor's own Reply.Err.
// None of them is permanent: with orderly.WithRetry the record is tried
// again (with WithPerKey, by a freshly spawned actor when the old one is
// gone), then recovered or dead-lettered as the engine's options say.
var (
	// ErrTimeout: no reply came before the request's deadline (see
	// Request.Deadline). The error also matches context.DeadlineExceeded.
	// The actor may still be working on the request; its late reply is
	// dropped.
	ErrTimeout = errors.New("protoactorbridge: no reply before the deadline")

	// ErrActorDead: the request reached no live actor (protoactor answered
	// it from its dead-letter process). With WithTarget it means the target
	// has stopped for good.
	ErrActorDead = errors.New("protoactorbridge: no such actor (dead letter)")

	// ErrActorStopped: the actor stopped before it answered. protoactor
	// drops the messages still queued in a stopped actor's mailbox; the
	// bridge watches its actors so that such a request fails at once
	// instead of waiting for its deadline.
	ErrActorStopped = errors.New("protoactorbridge: actor stopped before it replied")

	// ErrUnexpectedReply: the actor answered with something other than a
	// Reply or *Reply.
	ErrUnexpectedReply = errors.New("protoactorbridge: unexpected reply")

	// ErrClosed: the bridge was closed, before the request was sent or
	// while it waited for a reply that never came.
	ErrClosed = errors.New("protoactorbridge: bridge closed")
)

// ActorPanicError is the error of an attempt whose per-key actor panicked
// while it handled the request (WithPerKey only: the bridge supervises
// those actors). The actor's supervisor strategy (WithSupervisor) then
// decides whether it restarts, resumes or stops; the attempt fails at once
// rather than at its deadline.
type ActorPanicError struct {
	Actor  *actor.PID // the actor that failed
	Reason any        // what it panicked with
}

func (e *ActorPanicError) Error() string {
	return fmt.Sprintf("protoactorbridge: actor %v panicked: %v", e.Actor, e.Reason)
}

// Unwrap returns the panic value when it is an error.
func (e *ActorPanicError) Unwrap() error {
	err, _ := e.Reason.(error)
	return err
}
