package protoactorbridge

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
)

// replyProcess receives the answers to the bridge's requests. It is a
// protoactor Process registered under one id; each request's sender is
// that id with the request's call id as PID.RequestId, so an answer names
// its call. (PID.RequestId is how protoactor's remote layer addresses
// per-request senders, so this also works through remoting.)
//
// Why not RequestFuture: a protoactor Future (future.go in
// github.com/asynkron/protoactor-go v0.0.0-20240822202345-3c0e61ca19c9)
// stores a reply in SendUserMessage without holding its lock, while its
// timeout may complete it concurrently and the waiter reads the result
// under the lock. A reply that arrives as the future times out is a data
// race (go test -race reports future.go:161 against future.go:125; upstream
// issue asynkron/protoactor-go#1145). Here every outcome is stored under
// Bridge.mu, once.
type replyProcess struct {
	b *Bridge
}

var _ actor.Process = (*replyProcess)(nil)

// SendUserMessage takes an answer: a Reply, a *Reply, or protoactor's
// DeadLetterResponse when the request reached no actor.
func (p *replyProcess) SendUserMessage(pid *actor.PID, message any) {
	_, msg, _ := actor.UnwrapEnvelope(message)
	var err error
	switch m := msg.(type) {
	case Reply:
		err = m.Err
	case *Reply:
		if m == nil {
			err = fmt.Errorf("%w: nil *Reply", ErrUnexpectedReply)
		} else {
			err = m.Err
		}
	case *actor.DeadLetterResponse:
		err = ErrActorDead
	default:
		err = fmt.Errorf("%w: %T", ErrUnexpectedReply, msg)
	}
	p.b.answer(pid.RequestId, err)
}

// SendSystemMessage ignores system messages: nothing watches the reply
// process.
func (p *replyProcess) SendSystemMessage(*actor.PID, any) {}

// Stop is ignored: the reply process lives until Close removes it.
func (p *replyProcess) Stop(*actor.PID) {}
