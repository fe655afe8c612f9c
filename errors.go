package orderly

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
)

// ErrInvalidOption is wrapped by every error New returns for a bad option.
var ErrInvalidOption = errors.New("orderly: invalid option")

// ErrAlreadyRunning is returned by Run when the engine was already run.
// An Engine runs once; make a new one (with a new Source) to run again.
var ErrAlreadyRunning = errors.New("orderly: engine already run")

// PanicError is the error a recovered panic of user code becomes: of the
// handler (it then takes the failure path like any other handler error),
// or of a key function, a fallback, a dead-letter sink or a hook (each
// takes the step its documentation says).
type PanicError struct {
	In    string // what panicked: "handler", "key function", "fallback", "dead-letter sink", a hook's name, ...
	Value any    // what it panicked with
	Stack []byte // the goroutine's stack at the panic
}

func (e *PanicError) Error() string {
	in := e.In
	if in == "" {
		in = "handler"
	}
	if loc := e.Location(); loc != "" {
		return fmt.Sprintf("orderly: %s panicked at %s: %v", in, loc, e.Value)
	}
	return fmt.Sprintf("orderly: %s panicked: %v", in, e.Value)
}

// Location is where the panic happened, as "file.go:line" of the
// innermost frame of the stack below the panic (the code that panicked);
// "" when the stack does not say.
func (e *PanicError) Location() string {
	lines := strings.Split(string(e.Stack), "\n")
	// debug.Stack: "goroutine N [...]:", then pairs of lines per frame:
	// "pkg.func(args)" and "\tfile:line +0x..". The panicking frame is the
	// one after the runtime's panic frame.
	seenPanic := false
	for i := 1; i+1 < len(lines); i += 2 {
		fn, at := lines[i], strings.TrimSpace(lines[i+1])
		if strings.HasPrefix(fn, "panic(") || strings.HasPrefix(fn, "runtime.gopanic") {
			seenPanic = true
			continue
		}
		if !seenPanic || strings.HasPrefix(fn, "runtime.") {
			continue
		}
		if j := strings.LastIndex(at, " +0x"); j >= 0 {
			at = at[:j]
		}
		if k := strings.LastIndex(at, "/"); k >= 0 {
			at = at[k+1:]
		}
		return at
	}
	return ""
}

// StackTop returns the first n frames of the stack below the panic, one
// "func (file:line)" per line: what a log line needs to find the code,
// without the whole stack.
func (e *PanicError) StackTop(n int) string {
	lines := strings.Split(string(e.Stack), "\n")
	var out []string
	seenPanic := false
	for i := 1; i+1 < len(lines) && len(out) < n; i += 2 {
		fn, at := lines[i], strings.TrimSpace(lines[i+1])
		if strings.HasPrefix(fn, "panic(") {
			seenPanic = true
			continue
		}
		if !seenPanic {
			continue
		}
		if j := strings.LastIndex(at, " +0x"); j >= 0 {
			at = at[:j]
		}
		if j := strings.Index(fn, "("); j > 0 {
			fn = fn[:j]
		}
		out = append(out, fn+" ("+at+")")
	}
	return strings.Join(out, "\n")
}

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// protect calls f, turning a panic into a *PanicError naming in: the one
// place the engine recovers panics of user code (handlers, key functions,
// fallbacks, sinks, hooks).
func protect(in string, f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{In: in, Value: v, Stack: debug.Stack()}
		}
	}()
	return f()
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}
