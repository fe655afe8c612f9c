package protoactorbridge_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/bridges/protoactorbridge"
)

// These tests call Handle directly. Those that depend on time run in a
// synctest bubble (the actor system is made inside it), where timers are
// fake and synctest.Wait says when everything is blocked.

func record(key string) *orderly.Record {
	return &orderly.Record{Topic: "t", Key: []byte(key), Value: []byte("0")}
}

// waiting is a record that gatedProps's actors answer only once their gate
// is closed.
func waiting(key string) *orderly.Record {
	return &orderly.Record{Topic: "t", Key: []byte(key), Value: []byte("wait")}
}

// gatedProps makes actors that answer each request only once gate is
// closed when it is a waiting record (at once otherwise), counting starts and
// stops.
func gatedProps(gate <-chan struct{}, started, stopped *atomic.Int32) *actor.Props {
	return actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *actor.Started:
			started.Add(1)
		case *actor.Stopped:
			stopped.Add(1)
		case *protoactorbridge.Request:
			if string(m.Record.Value) == "wait" {
				<-gate
			}
			ctx.Respond(protoactorbridge.Reply{})
		}
	})
}

// settle lets protoactor's dead-letter log throttle, a goroutine that
// waits one DeadLetterThrottleInterval (1 s) after a dead letter, finish
// before a bubble ends. Time is fake in the bubble: this costs nothing.
func settle() {
	time.Sleep(2 * time.Second)
	synctest.Wait()
}

// handleAsync runs b.Handle on a goroutine and returns its result channel.
func handleAsync(ctx context.Context, b *protoactorbridge.Bridge, r *orderly.Record) <-chan error {
	done := make(chan error, 1)
	go func() { done <- b.Handle(ctx, r) }()
	return done
}

func TestNewRejectsBadOptions(t *testing.T) {
	sys := newSystem()
	props := actor.PropsFromFunc(func(actor.Context) {})
	pid := sys.Root.Spawn(props)
	for name, opts := range map[string][]protoactorbridge.Option{
		"neither target nor per-key": nil,
		"both":                       {protoactorbridge.WithTarget(pid), protoactorbridge.WithPerKey(props)},
		"nil target":                 {protoactorbridge.WithTarget(nil)},
		"nil props":                  {protoactorbridge.WithPerKey(nil)},
		"nil option":                 {protoactorbridge.WithPerKey(props), nil},
		"zero passivation":           {protoactorbridge.WithPerKey(props), protoactorbridge.WithPassivation(0)},
		"negative request timeout":   {protoactorbridge.WithPerKey(props), protoactorbridge.WithRequestTimeout(-2)},
		"nil key func":               {protoactorbridge.WithPerKey(props), protoactorbridge.WithKeyFunc(nil)},
		"nil supervisor":             {protoactorbridge.WithPerKey(props), protoactorbridge.WithSupervisor(nil)},
		"passivation with a target":  {protoactorbridge.WithTarget(pid), protoactorbridge.WithPassivation(time.Second)},
	} {
		_, err := protoactorbridge.New(sys, opts...)
		assert.ErrorIs(t, err, orderly.ErrInvalidOption, name)
	}
	_, err := protoactorbridge.New(nil, protoactorbridge.WithTarget(pid))
	assert.ErrorIs(t, err, orderly.ErrInvalidOption, "nil system")
}

// A request the actor does not answer in time fails with ErrTimeout; the
// actor's late answer is dropped and counted, and the key's next request,
// queued behind the slow one, gets its own answer.
func TestTimeoutAndLateReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		var started, stopped atomic.Int32
		b, err := protoactorbridge.New(newSystem(), protoactorbridge.WithPerKey(gatedProps(gate, &started, &stopped)))
		require.NoError(t, err)

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err = b.Handle(ctx, waiting("slow"))
		require.ErrorIs(t, err, protoactorbridge.ErrTimeout)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		st := b.Stats()
		assert.Zero(t, st.InFlight)
		assert.Equal(t, 1, st.Unanswered, "the actor still holds the request")

		next := handleAsync(context.Background(), b, record("slow"))
		synctest.Wait()
		select {
		case err := <-next:
			t.Fatalf("the next request was answered before the slow one: %v", err)
		default:
		}
		close(gate)
		require.NoError(t, <-next)
		synctest.Wait()
		st = b.Stats()
		assert.Equal(t, uint64(1), st.LateReplies)
		assert.Zero(t, st.Unanswered)
		assert.Equal(t, uint64(1), st.Spawned, "both went to the key's one actor")
		require.NoError(t, b.Close(context.Background()))
	})
}

// Without a context deadline the request timeout applies.
func TestRequestTimeoutWithoutContextDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		var started, stopped atomic.Int32
		b, err := protoactorbridge.New(newSystem(), protoactorbridge.WithPerKey(gatedProps(gate, &started, &stopped)),
			protoactorbridge.WithRequestTimeout(5*time.Second))
		require.NoError(t, err)
		begin := time.Now()
		err = b.Handle(context.Background(), waiting("slow"))
		require.ErrorIs(t, err, protoactorbridge.ErrTimeout)
		assert.Equal(t, 5*time.Second, time.Since(begin))
		close(gate)
		require.NoError(t, b.Close(context.Background()))
	})
}

// Replies that land around the deadline, again and again, on real time:
// each attempt ends with its reply or with ErrTimeout, never both, and
// under -race nothing is reported (protoactor's own futures do report a
// race here).
func TestRepliesRacingTheDeadline(t *testing.T) {
	const n = 200
	delay := func(i int) time.Duration { return 700*time.Microsecond + time.Duration(i%7)*100*time.Microsecond }
	var received atomic.Int32
	props := actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*protoactorbridge.Request); ok {
			received.Add(1)
			time.Sleep(delay(int(m.Record.Offset)))
			ctx.Respond(protoactorbridge.Reply{})
		}
	})
	b, err := protoactorbridge.New(newSystem(), protoactorbridge.WithPerKey(props))
	require.NoError(t, err)
	timeouts := 0
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		err := b.Handle(ctx, &orderly.Record{Key: []byte("k"), Offset: int64(i)})
		cancel()
		if err != nil {
			require.ErrorIs(t, err, protoactorbridge.ErrTimeout)
			timeouts++
		}
	}
	require.Eventually(t, func() bool { return b.Stats().Unanswered == 0 }, waitFor, time.Millisecond)
	// A request whose deadline passed before it was sent never reached the
	// actor; every other timed-out one was answered late.
	assert.Equal(t, uint64(int(received.Load())-(n-timeouts)), b.Stats().LateReplies,
		"every request the actor answered after its deadline counts as late")
	require.NoError(t, b.Close(context.Background()))
	t.Logf("%d of %d attempts timed out", timeouts, n)
}

// An actor's panic on a request fails that attempt at once with an
// *ActorPanicError; the default supervisor restarts the actor, which
// answers the key's next request.
func TestActorPanicFailsTheAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var starts atomic.Int32
		props := actor.PropsFromFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *actor.Started:
				starts.Add(1)
			case *protoactorbridge.Request:
				if string(m.Record.Value) == "boom" {
					panic("boom")
				}
				ctx.Respond(protoactorbridge.Reply{})
			}
		})
		b, err := protoactorbridge.New(newSystem(), protoactorbridge.WithPerKey(props),
			protoactorbridge.WithRequestTimeout(protoactorbridge.NoRequestTimeout))
		require.NoError(t, err)

		err = b.Handle(context.Background(), &orderly.Record{Key: []byte("k"), Value: []byte("boom")})
		var pe *protoactorbridge.ActorPanicError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "boom", pe.Reason)
		require.NoError(t, b.Handle(context.Background(), record("k")))
		assert.Equal(t, int32(2), starts.Load(), "started, then restarted")
		assert.Equal(t, uint64(1), b.Stats().Spawned, "restarted, not respawned")
		require.NoError(t, b.Close(context.Background()))
	})
}

// A supervisor that stops the failing actor: its queued request fails
// with ErrActorStopped at once (protoactor drops it), and the key's next
// request spawns a new actor.
func TestStoppedActorFailsQueuedRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		props := actor.PropsFromFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*protoactorbridge.Request); ok {
				if string(m.Record.Value) == "boom" {
					<-gate
					panic("boom")
				}
				ctx.Respond(protoactorbridge.Reply{})
			}
		})
		stopIt := actor.NewOneForOneStrategy(0, 0, func(any) actor.Directive { return actor.StopDirective })
		b, err := protoactorbridge.New(newSystem(), protoactorbridge.WithPerKey(props),
			protoactorbridge.WithSupervisor(stopIt), protoactorbridge.WithRequestTimeout(protoactorbridge.NoRequestTimeout))
		require.NoError(t, err)

		first := make(chan error, 1)
		go func() {
			first <- b.Handle(context.Background(), &orderly.Record{Key: []byte("k"), Value: []byte("boom")})
		}()
		synctest.Wait()
		second := handleAsync(context.Background(), b, record("k")) // queued behind the first
		synctest.Wait()
		close(gate)
		var pe *protoactorbridge.ActorPanicError
		require.ErrorAs(t, <-first, &pe)
		require.ErrorIs(t, <-second, protoactorbridge.ErrActorStopped)
		require.NoError(t, b.Handle(context.Background(), record("k")))
		assert.Equal(t, uint64(2), b.Stats().Spawned)
		require.NoError(t, b.Close(context.Background()))
	})
}

// With WithTarget: a stopped target fails the request queued on it with
// ErrActorStopped (the bridge watches it), and later requests with
// ErrActorDead. Close leaves the target alone.
func TestTargetStopsAndDies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := newSystem()
		gate := make(chan struct{})
		var started, stopped atomic.Int32
		target := sys.Root.Spawn(gatedProps(gate, &started, &stopped))
		b, err := protoactorbridge.New(sys, protoactorbridge.WithTarget(target),
			protoactorbridge.WithRequestTimeout(protoactorbridge.NoRequestTimeout))
		require.NoError(t, err)

		require.NoError(t, b.Handle(context.Background(), record("fast")))
		first := handleAsync(context.Background(), b, waiting("slow"))
		synctest.Wait()
		second := handleAsync(context.Background(), b, record("fast")) // queued behind the slow one
		synctest.Wait()
		sys.Root.Stop(target) // runs after the current message: the queued one is dropped
		close(gate)
		require.NoError(t, <-first, "the answer that came is kept")
		require.ErrorIs(t, <-second, protoactorbridge.ErrActorStopped)
		require.ErrorIs(t, b.Handle(context.Background(), record("fast")), protoactorbridge.ErrActorDead)
		require.NoError(t, b.Close(context.Background()))
		settle()
	})
}

func TestTargetAnswersSomethingElse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := newSystem()
		target := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
			if _, ok := ctx.Message().(*protoactorbridge.Request); ok {
				ctx.Respond("done")
			}
		}))
		b, err := protoactorbridge.New(sys, protoactorbridge.WithTarget(target))
		require.NoError(t, err)
		require.ErrorIs(t, b.Handle(context.Background(), record("k")), protoactorbridge.ErrUnexpectedReply)
		require.NoError(t, b.Close(context.Background()))
		sys.Root.Stop(target)
	})
}

// The actor's error reaches the handler as it is, so orderly.Permanent and
// errors.Is work through the reply.
func TestReplyErrorIsTheHandlersError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errBad := errors.New("bad order")
		props := actor.PropsFromFunc(func(ctx actor.Context) {
			if _, ok := ctx.Message().(*protoactorbridge.Request); ok {
				ctx.Respond(&protoactorbridge.Reply{Err: orderly.Permanent(errBad)})
			}
		})
		b, err := protoactorbridge.New(newSystem(), protoactorbridge.WithPerKey(props))
		require.NoError(t, err)
		err = b.Handle(context.Background(), record("k"))
		require.ErrorIs(t, err, errBad)
		require.True(t, orderly.IsPermanent(err))
		require.NoError(t, b.Close(context.Background()))
	})
}

// A producer that panics fails the attempt with the spawn's error; the
// bridge keeps working for other keys.
func TestSpawnFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var started, stopped atomic.Int32
		good := gatedProps(nil, &started, &stopped)
		props := actor.PropsFromProducer(func() actor.Actor { panic("no actor for you") })
		b, err := protoactorbridge.New(newSystem(), protoactorbridge.WithPerKey(props))
		require.NoError(t, err)
		err = b.Handle(context.Background(), record("k"))
		require.ErrorContains(t, err, "no actor for you")
		assert.Zero(t, b.Stats().Actors)
		assert.Zero(t, b.Stats().Unanswered)
		require.NoError(t, b.Close(context.Background()))

		b2, err := protoactorbridge.New(newSystem(), protoactorbridge.WithPerKey(good))
		require.NoError(t, err)
		require.NoError(t, b2.Handle(context.Background(), record("k")))
		require.NoError(t, b2.Close(context.Background()))
	})
}

// A per-key actor is passivated only once it has been idle for the
// passivation period with nothing unanswered, and its key's next record
// spawns a new one.
func TestPassivation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		var started, stopped atomic.Int32
		b, err := protoactorbridge.New(newSystem(), protoactorbridge.WithPerKey(gatedProps(gate, &started, &stopped)),
			protoactorbridge.WithPassivation(time.Minute), protoactorbridge.WithRequestTimeout(time.Second))
		require.NoError(t, err)

		require.NoError(t, b.Handle(context.Background(), record("a")))
		time.Sleep(59 * time.Second)
		require.NoError(t, b.Handle(context.Background(), record("a"))) // idle again from here
		time.Sleep(59 * time.Second)
		synctest.Wait()
		assert.Equal(t, 1, b.Stats().Actors, "a: not idle for a minute yet")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.Zero(t, b.Stats().Actors, "a: passivated")
		assert.Equal(t, int32(1), stopped.Load())

		// A request the handler gave up on keeps its actor busy until the
		// actor answers it, even when its idle timer runs out meanwhile.
		require.NoError(t, b.Handle(context.Background(), record("b"))) // arms b's timer
		require.ErrorIs(t, b.Handle(context.Background(), waiting("b")), protoactorbridge.ErrTimeout)
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		assert.Equal(t, 1, b.Stats().Actors, "b: still working on its request")
		close(gate)
		synctest.Wait()
		time.Sleep(59 * time.Second)
		synctest.Wait()
		assert.Equal(t, 1, b.Stats().Actors, "b: answered less than a minute ago")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.Zero(t, b.Stats().Actors, "b: passivated a minute after answering")

		require.NoError(t, b.Handle(context.Background(), record("a")))
		st := b.Stats()
		assert.Equal(t, uint64(3), st.Spawned, "a, b, and a again")
		assert.Equal(t, uint64(2), st.Passivated)
		assert.Equal(t, int32(3), started.Load())
		require.NoError(t, b.Close(context.Background()))
		assert.Equal(t, int32(3), stopped.Load())
	})
}

// Close waits for a request in flight, which gets its reply, then stops
// the actors; requests after Close fail with ErrClosed.
func TestCloseWaitsForInFlightRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		var started, stopped atomic.Int32
		b, err := protoactorbridge.New(newSystem(), protoactorbridge.WithPerKey(gatedProps(gate, &started, &stopped)),
			protoactorbridge.WithRequestTimeout(protoactorbridge.NoRequestTimeout))
		require.NoError(t, err)
		require.NoError(t, b.Handle(context.Background(), record("a")))

		inFlight := handleAsync(context.Background(), b, waiting("slow"))
		synctest.Wait()
		closed := make(chan error, 1)
		go func() { closed <- b.Close(context.Background()) }()
		synctest.Wait()
		select {
		case err := <-closed:
			t.Fatalf("Close returned with a request in flight: %v", err)
		default:
		}
		assert.True(t, b.Stats().Closed)
		require.ErrorIs(t, b.Handle(context.Background(), record("a")), protoactorbridge.ErrClosed)
		assert.Zero(t, stopped.Load(), "no actor stopped while a request is in flight")

		close(gate)
		require.NoError(t, <-inFlight, "the in-flight request gets its reply")
		require.NoError(t, <-closed)
		assert.Equal(t, int32(2), stopped.Load(), "both actors stopped")
		assert.Zero(t, b.Stats().Actors)
		require.NoError(t, b.Close(context.Background()), "a second Close returns the first one's result")
	})
}

// Close gives up waiting when its context ends: the request still waiting
// fails with ErrClosed, and Close says it gave up. The actor's answer,
// after Close, goes to protoactor's dead letters.
func TestCloseIsBoundedByItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := newSystem()
		var deadReplies atomic.Int32
		sys.EventStream.Subscribe(func(ev any) {
			if dl, ok := ev.(*actor.DeadLetterEvent); ok {
				if _, ok := dl.Message.(protoactorbridge.Reply); ok {
					deadReplies.Add(1)
				}
			}
		})
		gate := make(chan struct{})
		var started, stopped atomic.Int32
		b, err := protoactorbridge.New(sys, protoactorbridge.WithPerKey(gatedProps(gate, &started, &stopped)),
			protoactorbridge.WithRequestTimeout(protoactorbridge.NoRequestTimeout))
		require.NoError(t, err)

		stuck := handleAsync(context.Background(), b, waiting("slow"))
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		begin := time.Now()
		err = b.Close(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 30*time.Second, time.Since(begin))
		require.ErrorIs(t, <-stuck, protoactorbridge.ErrClosed)
		close(gate) // the actor finishes: it answers, then stops
		synctest.Wait()
		assert.Equal(t, int32(1), deadReplies.Load())
		assert.Equal(t, int32(1), stopped.Load(), "the actor stopped once it returned")
		settle()
	})
}

// WithKeyFunc decides which actor a record goes to, and Request.Key says
// which key it was.
func TestKeyFuncRoutes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var problems atomic.Int32
		props := actor.PropsFromFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*protoactorbridge.Request); ok {
				if m.Key != string(m.Record.Value) {
					problems.Add(1)
				}
				ctx.Respond(protoactorbridge.Reply{})
			}
		})
		b, err := protoactorbridge.New(newSystem(), protoactorbridge.WithPerKey(props),
			protoactorbridge.WithKeyFunc(func(r *orderly.Record) string { return string(r.Value) }))
		require.NoError(t, err)
		for i, v := range []string{"x", "y", "x", "z", "y"} {
			require.NoError(t, b.Handle(context.Background(), &orderly.Record{Key: []byte{byte(i)}, Value: []byte(v)}))
		}
		assert.Zero(t, problems.Load())
		assert.Equal(t, uint64(3), b.Stats().Spawned)
		require.NoError(t, b.Close(context.Background()))
	})
}

// Many goroutines sending records of a few keys at once (as several
// partitions sharing a key would), with actors passivated as soon as they
// are idle: every request gets its actor's answer, none is lost to a
// passivation racing a new request.
func TestConcurrentRequestsAndPassivation(t *testing.T) {
	const goroutines, each, keys = 8, 300, 4
	var live [keys]atomic.Int32
	var overlaps atomic.Int32
	props := actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*protoactorbridge.Request); ok {
			k := int(m.Record.Key[0])
			if live[k].Add(1) > 1 {
				overlaps.Add(1) // two actors of one key at work at once
			}
			live[k].Add(-1)
			ctx.Respond(protoactorbridge.Reply{})
		}
	})
	b, err := protoactorbridge.New(newSystem(), protoactorbridge.WithPerKey(props),
		protoactorbridge.WithPassivation(time.Microsecond))
	require.NoError(t, err)
	errs := make(chan error, goroutines*each)
	for g := range goroutines {
		go func() {
			for i := range each {
				errs <- b.Handle(context.Background(), &orderly.Record{Key: []byte{byte((g + i) % keys)}})
			}
		}()
	}
	for range goroutines * each {
		require.NoError(t, <-errs)
	}
	st := b.Stats()
	assert.Zero(t, st.InFlight)
	assert.Zero(t, st.Unanswered)
	assert.Zero(t, overlaps.Load())
	t.Logf("spawned %d, passivated %d", st.Spawned, st.Passivated)
	require.NoError(t, b.Close(context.Background()))
}

// A Handle call whose context is already done sends nothing; one whose
// context is cancelled while it waits stops waiting with the cause.
func TestCancelledContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		var started, stopped atomic.Int32
		b, err := protoactorbridge.New(newSystem(), protoactorbridge.WithPerKey(gatedProps(gate, &started, &stopped)))
		require.NoError(t, err)
		done, cancel := context.WithCancel(context.Background())
		cancel()
		require.ErrorIs(t, b.Handle(done, record("k")), context.Canceled)
		assert.Zero(t, b.Stats().Spawned, "nothing sent")

		ctx, cancelWait := context.WithCancelCause(context.Background())
		pending := handleAsync(ctx, b, waiting("k"))
		synctest.Wait()
		errRevoked := errors.New("partition revoked")
		cancelWait(errRevoked)
		err = <-pending
		require.ErrorIs(t, err, errRevoked)
		require.NotErrorIs(t, err, protoactorbridge.ErrTimeout)
		close(gate)
		require.NoError(t, b.Close(context.Background()))
	})
}
