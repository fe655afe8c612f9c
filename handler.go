package orderly

import "context"

// Handler processes one record.
//
// The engine calls Handle for records of one key one at a time and in
// offset order; records of different keys may be handled concurrently, so a
// Handler must be safe for concurrent use. ctx carries the record's
// deadline and is cancelled when the partition is revoked or the engine
// shuts down and the revoke or drain timeout has passed. A returned error or
// a panic goes to the failure chain (WithRetry, WithFallback,
// WithDeadLetter; see the package documentation, "Failures").
type Handler interface {
	Handle(ctx context.Context, r *Record) error
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, r *Record) error

// Handle calls f(ctx, r).
func (f HandlerFunc) Handle(ctx context.Context, r *Record) error { return f(ctx, r) }

// Middleware wraps a Handler. Middlewares given to WithMiddleware run in
// the order given: the first registered is outermost.
type Middleware func(Handler) Handler
