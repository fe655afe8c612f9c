package protoactorbridge_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/orderly-go/orderly/bridges/protoactorbridge"
)

// orderStatus is one order's actor: it keeps the order's status and
// refuses an event that does not follow from it.
type orderStatus struct {
	status  string
	applied chan<- [2]string // (order, status) after each change, for the example's output
}

var nextStatus = map[string]string{"": "created", "created": "paid", "paid": "shipped"}

func (a *orderStatus) Receive(ctx actor.Context) {
	switch req := ctx.Message().(type) {
	case *actor.Started:
		// A per-key actor that must survive passivation loads its state here.
	case *protoactorbridge.Request:
		event := string(req.Record.Value)
		if nextStatus[a.status] != event {
			// The handler's error: orderly retries, then dead-letters.
			ctx.Respond(protoactorbridge.Reply{Err: fmt.Errorf("order %s: %q after %q", req.Key, event, a.status)})
			return
		}
		a.status = event
		a.applied <- [2]string{req.Key, event}
		ctx.Respond(protoactorbridge.Reply{})
	}
}

// Order events flow through orderly into one protoactor actor per order,
// which sees its order's events one at a time and in order.
func Example() {
	log := memory.NewLog()
	_ = log.CreateTopic("orders", 2)
	for _, ev := range []struct{ order, event string }{
		{"o1", "created"}, {"o2", "created"}, {"o1", "paid"}, {"o1", "shipped"}, {"o2", "paid"},
	} {
		_, _, _ = log.Produce("orders", []byte(ev.order), []byte(ev.event))
	}

	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	applied := make(chan [2]string, 5)
	bridge, err := protoactorbridge.New(system,
		protoactorbridge.WithPerKey(actor.PropsFromProducer(func() actor.Actor {
			return &orderStatus{applied: applied}
		})),
		protoactorbridge.WithPassivation(time.Minute))
	if err != nil {
		fmt.Println(err)
		return
	}
	eng, err := orderly.New(log.Member("shipping", []string{"orders"}), bridge,
		orderly.WithHooks(bridge), // fills Request.Attempt
		orderly.WithRetry(orderly.RetryPolicy{MaxAttempts: 3}),
		orderly.WithAttemptTimeout(5*time.Second)) // each request's deadline
	if err != nil {
		fmt.Println(err)
		return
	}

	ctx, stop := context.WithCancel(context.Background())
	history := map[string][]string{}
	go func() {
		for range 5 {
			a := <-applied
			history[a[0]] = append(history[a[0]], a[1])
		}
		stop() // all applied: drain, commit and return
	}()
	if err := eng.Run(ctx); err != nil {
		fmt.Println(err)
	}
	// Run has returned: close the bridge, bounded like the engine's drain.
	closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bridge.Close(closeCtx); err != nil {
		fmt.Println(err)
	}
	fmt.Println("o1:", history["o1"])
	fmt.Println("o2:", history["o2"])
	fmt.Println("actors spawned:", bridge.Stats().Spawned)
	// Output:
	// o1: [created paid shipped]
	// o2: [created paid]
	// actors spawned: 2
}
