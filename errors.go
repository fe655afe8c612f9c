package orderly

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// ErrInvalidOption is wrapped by every error New returns for a bad option.
var ErrInvalidOption = errors.New("orderly: invalid option")

// ErrAlreadyRunning is returned by Run when the engine was already run.
// An Engine runs once; make a new one (with a new Source) to run again.
var ErrAlreadyRunning = errors.New("orderly: engine already run")

// PanicError is the error a handler's recovered panic becomes. It reaches
// the failure hook like any other handler error.
type PanicError struct {
	Value any    // what the handler panicked with
	Stack []byte // the goroutine's stack at the panic
}

func (e *PanicError) Error() string { return fmt.Sprintf("orderly: handler panic: %v", e.Value) }

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// protect calls f, turning a panic into a *PanicError: the one place the
// engine recovers panics of user code (handlers, key functions, fallbacks,
// sinks, hooks).
func protect(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return f()
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}
