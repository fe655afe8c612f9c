package orderly_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// panickyHandler panics with a nil map write, on a line of this file.
func panickyHandler(context.Context, *orderly.Record) error {
	var m map[string]int
	m["x"]++ // the line a PanicError must point at
	return nil
}

// A handler's panic reaches the dead-letter sink as a *PanicError that
// says what panicked and where: this file and line, and a stack that
// starts at the handler.
func TestPanicErrorSaysWhereAndWhat(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	_, err := log.ProduceTo("t", 0, []byte("k"), nil)
	require.NoError(t, err)
	var mu sync.Mutex
	var got error
	sink := orderly.DeadLetterFunc(func(_ context.Context, _ *orderly.Record, dl orderly.DeadLetter) error {
		mu.Lock()
		got = dl.Err
		mu.Unlock()
		return nil
	})
	eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(panickyHandler),
		orderly.WithDeadLetter(sink), orderly.WithRetry(orderly.RetryPolicy{MaxAttempts: 1}), orderly.WithLogger(quiet),
		orderly.WithCommitInterval(5*time.Millisecond))
	require.NoError(t, err)
	stop := running(t, eng)
	waitCommittedToEnd(t, log, 1)
	require.NoError(t, stop())
	mu.Lock()
	defer mu.Unlock()
	var pe *orderly.PanicError
	require.True(t, errors.As(got, &pe), "got %v", got)
	assert.Equal(t, "handler", pe.In)
	assert.True(t, strings.HasPrefix(pe.Location(), "errors_test.go:"), "location %q", pe.Location())
	assert.Contains(t, pe.Error(), "handler panicked at errors_test.go:")
	assert.Contains(t, pe.Error(), "assignment to entry in nil map")
	top := pe.StackTop(3)
	assert.Contains(t, strings.Split(top, "\n")[0], "panickyHandler", "the stack starts at the code that panicked")
	assert.LessOrEqual(t, len(strings.Split(top, "\n")), 3)
}
