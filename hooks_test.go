package orderly_test

import (
	"context"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// attemptTimes records the RecordInfo its attempt hooks get; if want is
// not nil it implements HookStartTime with it.
type attemptTimes struct {
	mu       sync.Mutex
	started  map[string]orderly.RecordInfo // by key, from OnAttemptStarted
	finished map[string]orderly.RecordInfo // by key, from OnAttemptFinished
	asked    int                           // WantsStartTime calls
	want     func(*orderly.Record) bool
}

func (a *attemptTimes) OnAttemptStarted(ctx context.Context, r *orderly.Record, info orderly.RecordInfo) context.Context {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.started == nil {
		a.started = map[string]orderly.RecordInfo{}
	}
	a.started[string(r.Key)] = info
	return ctx
}

func (a *attemptTimes) OnAttemptFinished(_ context.Context, r *orderly.Record, info orderly.RecordInfo, _ error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.finished == nil {
		a.finished = map[string]orderly.RecordInfo{}
	}
	a.finished[string(r.Key)] = info
}

func (a *attemptTimes) infos() (started, finished map[string]orderly.RecordInfo) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.started), maps.Clone(a.finished)
}

// choosy is an attemptTimes that says when it wants the start time.
type choosy struct{ *attemptTimes }

func (c choosy) WantsStartTime(r *orderly.Record) bool {
	c.mu.Lock()
	c.asked++
	c.mu.Unlock()
	return c.want(r)
}

// runHooks handles records a, b, c, d (one key each) with hooks and
// returns when all four are done.
func runHooks(t *testing.T, hooks ...orderly.Hook) {
	t.Helper()
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	produce(t, log, "t", 0, "a", "b", "c", "d")
	done := make(chan struct{}, 4)
	eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(context.Context, *orderly.Record) error {
		done <- struct{}{}
		return nil
	}), orderly.WithHooks(hooks...), orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)
	for range 4 {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("records not handled")
		}
	}
	require.NoError(t, stop())
}

// The engine reads the clock for an attempt only when an attempt hook
// wants the start time: a hook that implements HookStartTime gets a zero
// Started when it declined and the time when it asked for it, and
// Dispatched either way.
func TestHookStartTimeDecidesPerAttempt(t *testing.T) {
	h := choosy{&attemptTimes{want: func(r *orderly.Record) bool { return string(r.Key) == "b" || string(r.Key) == "d" }}}
	runHooks(t, h)
	started, finished := h.infos()
	require.Len(t, started, 4)
	require.Len(t, finished, 4)
	assert.Equal(t, 4, h.asked, "asked once per attempt")
	for key, info := range started {
		assert.False(t, info.Dispatched.IsZero(), "%s: Dispatched", key)
		assert.Equal(t, finished[key].Started, info.Started, "%s: the same Started at start and finish", key)
		if key == "b" || key == "d" {
			assert.False(t, info.Started.IsZero(), "%s wanted the time", key)
			assert.False(t, info.Started.Before(info.Dispatched), "%s: started after dispatch", key)
		} else {
			assert.True(t, info.Started.IsZero(), "%s declined the time", key)
		}
	}
}

// One attempt hook that does not implement HookStartTime is enough for
// every hook to get Started; so is one that wants it, or one whose
// WantsStartTime panics.
func TestHookStartTimeNeedsEveryAttemptHookToDecline(t *testing.T) {
	never := func(*orderly.Record) bool { return false }
	cases := map[string]orderly.Hook{
		"plain hook":     &attemptTimes{},
		"wanting hook":   choosy{&attemptTimes{want: func(*orderly.Record) bool { return true }}},
		"panicking hook": choosy{&attemptTimes{want: func(*orderly.Record) bool { panic("boom") }}},
	}
	for name, other := range cases {
		t.Run(name, func(t *testing.T) {
			h := choosy{&attemptTimes{want: never}}
			runHooks(t, h, other)
			started, _ := h.infos()
			require.Len(t, started, 4)
			for _, info := range started {
				assert.False(t, info.Started.IsZero())
			}
		})
	}
	t.Run("only decliners", func(t *testing.T) {
		h1, h2 := choosy{&attemptTimes{want: never}}, choosy{&attemptTimes{want: never}}
		runHooks(t, h1, h2)
		for _, h := range []choosy{h1, h2} {
			started, _ := h.infos()
			require.Len(t, started, 4)
			for _, info := range started {
				assert.True(t, info.Started.IsZero())
			}
		}
	})
}
