package protoactorbridge

import (
	"context"
	"time"

	"github.com/orderly-go/orderly"
)

// Request is the message an actor receives for each handler attempt. The
// bridge sends it as a request (its sender is the bridge's reply address),
// so the actor answers with ctx.Respond(Reply{...}), exactly once. The
// request may be forwarded (ctx.Forward, a router) to another actor that
// responds instead: the sender travels with it.
//
// The actor must treat the Request as read-only, like every orderly record:
// the engine owns Record.
type Request struct {
	// Record is the record being handled.
	Record *orderly.Record
	// Key is the record's routing key (see WithKeyFunc): with WithPerKey,
	// the key whose actor this is.
	Key string
	// Attempt counts handler attempts for the record, from 1, when the
	// bridge is also given to orderly.WithHooks; 0 otherwise. An attempt
	// after a timeout may reach the actor while it still works on the
	// previous one: they queue in its mailbox, in order.
	Attempt int
	// Deadline is when the bridge stops waiting for the reply: the
	// attempt's context deadline (orderly.WithAttemptTimeout), or the
	// request timeout (WithRequestTimeout) when the context has none. Zero
	// when there is none. A reply after it is dropped and counted in
	// Stats.LateReplies.
	Deadline time.Time
}

// Reply is the answer an actor gives to a Request with ctx.Respond. A nil
// Err means the record is handled. A non-nil Err is the handler's error, as
// is: the engine's retries, recovery, dead letters and key parking apply to
// it, and orderly.Permanent and orderly.RetryAfter work through it. Reply
// and *Reply are both accepted; any other answer fails the attempt with
// ErrUnexpectedReply.
type Reply struct {
	Err error
}

// attemptKey is the context key under which OnAttemptStarted stores the
// attempt number for Handle.
type attemptKey struct{}

// OnAttemptStarted implements orderly.HookAttemptStarted: given to
// orderly.WithHooks as well as being the handler, the bridge learns each
// attempt's number and passes it on in Request.Attempt. It is quick, never
// blocks and is safe for concurrent use.
func (b *Bridge) OnAttemptStarted(ctx context.Context, _ *orderly.Record, info orderly.RecordInfo) context.Context {
	return context.WithValue(ctx, attemptKey{}, info.Attempt)
}

func attemptOf(ctx context.Context) int {
	n, _ := ctx.Value(attemptKey{}).(int)
	return n
}
