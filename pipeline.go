package orderly

import (
	"context"
	"fmt"
)

// Pipeline is the decode → handle → interpret template of the Jet.com
// order-management services, typed with generics:
//
//   - Decode turns a record into the domain input. It must be pure; its
//     errors are permanent (a record that cannot be decoded never will be),
//     so they skip retries and go straight to recovery or dead-lettering.
//   - Handle does the work that may fail transiently (a database, an HTTP
//     call) and returns what happened.
//   - Interpret turns the outcome into effects: writing a projection,
//     producing follow-up events (inject the record's trace context into
//     them to carry the transaction through).
//
// Interpret may be nil when Handle has no output to act on.
type Pipeline[In, Out any] struct {
	Decode    func(*Record) (In, error)
	Handle    func(context.Context, In) (Out, error)
	Interpret func(context.Context, Out) error
}

// DecodeError is the error a Pipeline's Decode failure becomes; it is
// permanent.
type DecodeError struct {
	Err error
}

func (e *DecodeError) Error() string { return fmt.Sprintf("orderly: decode: %v", e.Err) }
func (e *DecodeError) Unwrap() error { return e.Err }

// Handler composes the pipeline into a Handler. It panics if Decode or
// Handle is nil (a programmer error).
func (p Pipeline[In, Out]) Handler() Handler {
	if p.Decode == nil || p.Handle == nil {
		panic("orderly: Pipeline needs Decode and Handle")
	}
	return HandlerFunc(func(ctx context.Context, r *Record) error {
		in, err := p.Decode(r)
		if err != nil {
			return Permanent(&DecodeError{Err: err})
		}
		out, err := p.Handle(ctx, in)
		if err != nil {
			return err
		}
		if p.Interpret == nil {
			return nil
		}
		return p.Interpret(ctx, out)
	})
}
