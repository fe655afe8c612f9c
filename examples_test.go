package orderly_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
)

// runUntil runs eng until done is closed (or ten seconds pass), then
// cancels Run's context and waits for it: the engine drains and commits.
func runUntil(eng *orderly.Engine, done <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan error, 1)
	go func() { finished <- eng.Run(ctx) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		fmt.Println("timed out")
	}
	cancel()
	if err := <-finished; err != nil {
		fmt.Println("Run:", err)
	}
}

// countdown closes its channel when it has been called n times.
type countdown struct {
	mu   sync.Mutex
	left int
	done chan struct{}
}

func newCountdown(n int) *countdown { return &countdown{left: n, done: make(chan struct{})} }

func (c *countdown) tick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.left--; c.left == 0 {
		close(c.done)
	}
}

// ByKey: the events of one account are applied in offset order, one at a
// time; different accounts run in parallel.
func ExampleByKey() {
	log := memory.NewLog()
	_ = log.CreateTopic("payments", 1)
	for _, p := range []struct{ account, amount string }{
		{"alice", "+100"}, {"bob", "+20"}, {"alice", "-30"}, {"bob", "-5"}, {"alice", "-70"},
	} {
		_, _, _ = log.Produce("payments", []byte(p.account), []byte(p.amount))
	}

	var mu sync.Mutex
	seen := map[string][]string{}
	cd := newCountdown(5)
	eng, err := orderly.New(log.Member("ledger", []string{"payments"}),
		orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
			mu.Lock()
			seen[string(r.Key)] = append(seen[string(r.Key)], string(r.Value))
			mu.Unlock()
			cd.tick()
			return nil
		}),
		orderly.WithOrdering(orderly.ByKey()), orderly.WithMaxConcurrency(16))
	if err != nil {
		fmt.Println(err)
		return
	}
	runUntil(eng, cd.done)
	fmt.Println("alice:", seen["alice"])
	fmt.Println("bob:", seen["bob"])
	// Output:
	// alice: [+100 -30 -70]
	// bob: [+20 -5]
}

// ByKeys: a record that carries an order id and a customer id runs after
// every earlier record sharing either id. Here "refund o1" must wait for
// both "pay o1" (same order) and "bill c1" (same customer).
func ExampleByKeys() {
	log := memory.NewLog()
	_ = log.CreateTopic("events", 1)
	for _, v := range []string{"pay o1 c1", "bill o2 c1", "refund o1 c1", "pay o3 c2"} {
		_, _ = log.ProduceTo("events", 0, nil, []byte(v))
	}
	ids := func(r *orderly.Record) []string { return strings.Fields(string(r.Value))[1:] } // order and customer

	var mu sync.Mutex
	var order []string
	cd := newCountdown(4)
	eng, _ := orderly.New(log.Member("g", []string{"events"}),
		orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
			mu.Lock()
			order = append(order, strings.Fields(string(r.Value))[0]+" "+strings.Fields(string(r.Value))[1])
			mu.Unlock()
			cd.tick()
			return nil
		}),
		orderly.WithOrdering(orderly.ByKeys(ids)))
	runUntil(eng, cd.done)
	i := func(s string) int { return slices.Index(order, s) }
	fmt.Println("refund after pay:", i("refund o1") > i("pay o1"))
	fmt.Println("refund after bill:", i("refund o1") > i("bill o2"))
	// Output:
	// refund after pay: true
	// refund after bill: true
}

type orderEvent struct {
	Order string `json:"order"`
	Qty   int    `json:"qty"`
}

// Pipeline: decode → handle → interpret. A record that cannot be decoded
// fails permanently and goes straight to the dead-letter sink; no retry
// can fix it.
func ExamplePipeline() {
	log := memory.NewLog()
	_ = log.CreateTopic("orders", 1)
	for _, v := range []string{`{"order":"o1","qty":2}`, `not json`, `{"order":"o2","qty":5}`} {
		_, _ = log.ProduceTo("orders", 0, []byte("k"), []byte(v))
	}

	var mu sync.Mutex
	var reserved []string
	cd := newCountdown(3)
	handler := orderly.Pipeline[orderEvent, string]{
		Decode: func(r *orderly.Record) (orderEvent, error) {
			var ev orderEvent
			err := json.Unmarshal(r.Value, &ev)
			return ev, err
		},
		Handle: func(ctx context.Context, ev orderEvent) (string, error) {
			return fmt.Sprintf("%s×%d", ev.Order, ev.Qty), nil // call the stock service here
		},
		Interpret: func(ctx context.Context, reservation string) error {
			mu.Lock()
			reserved = append(reserved, reservation)
			mu.Unlock()
			cd.tick()
			return nil
		},
	}.Handler()
	sink := orderly.DeadLetterFunc(func(ctx context.Context, r *orderly.Record, dl orderly.DeadLetter) error {
		var de *orderly.DecodeError
		fmt.Printf("dead letter %q: decode error: %v, attempts: %d\n", r.Value, errors.As(dl.Err, &de), dl.Attempts)
		cd.tick()
		return nil
	})
	eng, _ := orderly.New(log.Member("g", []string{"orders"}), handler,
		orderly.WithRetry(orderly.RetryPolicy{}), orderly.WithDeadLetter(sink))
	runUntil(eng, cd.done)
	fmt.Println("reserved:", reserved)
	// Output:
	// dead letter "not json": decode error: true, attempts: 1
	// reserved: [o1×2 o2×5]
}

// WithRetry: a transient failure is retried with backoff inside the key's
// actor (later records of the key wait); a Permanent one is not retried.
func ExampleWithRetry() {
	log := memory.NewLog()
	_ = log.CreateTopic("t", 1)
	_, _ = log.ProduceTo("t", 0, []byte("k1"), []byte("flaky"))
	_, _ = log.ProduceTo("t", 0, []byte("k1"), []byte("after-flaky"))
	_, _ = log.ProduceTo("t", 0, []byte("k2"), []byte("invalid"))

	var mu sync.Mutex
	attempts := map[string]int{}
	var k1 []string
	cd := newCountdown(3)
	eng, _ := orderly.New(log.Member("g", []string{"t"}),
		orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
			mu.Lock()
			defer mu.Unlock()
			v := string(r.Value)
			attempts[v]++
			switch {
			case v == "flaky" && attempts[v] < 3:
				return errors.New("timeout talking to the bank")
			case v == "invalid":
				return orderly.Permanent(errors.New("negative amount"))
			}
			k1 = append(k1, v)
			cd.tick()
			return nil
		}),
		orderly.WithRetry(orderly.RetryPolicy{InitialDelay: time.Millisecond, MaxAttempts: 5}),
		orderly.WithDeadLetter(orderly.DeadLetterFunc(func(ctx context.Context, r *orderly.Record, dl orderly.DeadLetter) error {
			fmt.Printf("dead letter %s after %d attempt(s): %v\n", r.Value, dl.Attempts, dl.Err)
			cd.tick()
			return nil
		})))
	runUntil(eng, cd.done)
	fmt.Println("k1 handled:", k1, "flaky attempts:", attempts["flaky"])
	// Output:
	// dead letter invalid after 1 attempt(s): negative amount
	// k1 handled: [flaky after-flaky] flaky attempts: 3
}

// WithKeyParking: once an order's event is dead-lettered, the order's later
// events follow it to the dead-letter sink, in order, without being
// handled (they would apply on top of a failed one), until the key is
// released; other orders go on.
func ExampleWithKeyParking() {
	log := memory.NewLog()
	_ = log.CreateTopic("orders", 1)
	for _, ev := range []struct{ order, event string }{
		{"o1", "created"}, {"o1", "corrupt"}, {"o2", "created"}, {"o1", "paid"}, {"o2", "paid"},
	} {
		_, _ = log.ProduceTo("orders", 0, []byte(ev.order), []byte(ev.event))
	}
	var mu sync.Mutex
	var handled, dead []string
	cd := newCountdown(5)
	note := func(to *[]string, r *orderly.Record) {
		mu.Lock()
		*to = append(*to, string(r.Key)+" "+string(r.Value))
		mu.Unlock()
		cd.tick()
	}
	eng, _ := orderly.New(log.Member("g", []string{"orders"}),
		orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
			if string(r.Value) == "corrupt" {
				return orderly.Permanent(errors.New("unreadable"))
			}
			note(&handled, r)
			return nil
		}),
		orderly.WithDeadLetter(orderly.DeadLetterFunc(func(ctx context.Context, r *orderly.Record, dl orderly.DeadLetter) error {
			note(&dead, r)
			return nil
		})),
		orderly.WithKeyParking(orderly.ParkUntilReleased)) // or a duration
	runUntil(eng, cd.done)
	slices.Sort(handled)
	fmt.Println("handled:", handled)
	fmt.Println("dead-lettered:", dead)
	// Output:
	// handled: [o1 created o2 created o2 paid]
	// dead-lettered: [o1 corrupt o1 paid]
}

// WithCircuitBreaker: while the downstream fails most calls, the breaker
// opens, every partition is paused and no handler runs; after the
// cool-down a probe goes through, and once it succeeds work resumes. With
// unlimited retries nothing is lost meanwhile.
func ExampleWithCircuitBreaker() {
	log := memory.NewLog()
	_ = log.CreateTopic("t", 2)
	for i := range 40 {
		_, _ = log.ProduceTo("t", int32(i%2), fmt.Appendf(nil, "k%d", i%4), nil)
	}
	var mu sync.Mutex
	calls, downFor := 0, 10 // the downstream fails its first 10 calls
	cd := newCountdown(40)
	eng, _ := orderly.New(log.Member("g", []string{"t"}),
		orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
			mu.Lock()
			calls++
			down := calls <= downFor
			mu.Unlock()
			if down {
				return errors.New("503")
			}
			cd.tick()
			return nil
		}),
		orderly.WithRetry(orderly.RetryPolicy{InitialDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond,
			MaxAttempts: orderly.UnlimitedAttempts}),
		orderly.WithCircuitBreaker(orderly.BreakerPolicy{MinRequests: 5, FailureRatio: 0.5, CoolDown: 20 * time.Millisecond}),
		orderly.WithMaxConcurrency(1))
	runUntil(eng, cd.done)
	s := eng.Stats()
	fmt.Println("handled:", s.RecordsHandled, "breaker open:", s.BreakerOpen, "dead-lettered:", s.RecordsDeadLettered)
	// Output:
	// handled: 40 breaker open: false dead-lettered: 0
}

// Stats: a snapshot for dashboards; it may be called at any time, from
// hooks too.
func ExampleEngine_Stats() {
	log := memory.NewLog()
	_ = log.CreateTopic("t", 2)
	for i := range 10 {
		_, _ = log.ProduceTo("t", int32(i%2), []byte("k"), nil)
	}
	cd := newCountdown(10)
	eng, _ := orderly.New(log.Member("g", []string{"t"}),
		orderly.HandlerFunc(func(context.Context, *orderly.Record) error { cd.tick(); return nil }),
		orderly.WithEngineBuffer(1000, 0)) // records alone; bytes keep their default
	runUntil(eng, cd.done)
	s := eng.Stats()
	fmt.Println("handled:", s.RecordsHandled, "held now:", s.HeldRecords, "engine limit:", s.EngineLimits.Records)
	// Output:
	// handled: 10 held now: 0 engine limit: 1000
}

// WithMiddleware: the first middleware given runs outermost.
func ExampleWithMiddleware() {
	log := memory.NewLog()
	_ = log.CreateTopic("t", 1)
	_, _ = log.ProduceTo("t", 0, []byte("k"), []byte("hello"))

	trace := func(name string) orderly.Middleware {
		return func(next orderly.Handler) orderly.Handler {
			return orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
				fmt.Println(name, "before")
				defer fmt.Println(name, "after")
				return next.Handle(ctx, r)
			})
		}
	}
	done := make(chan struct{})
	eng, _ := orderly.New(log.Member("g", []string{"t"}),
		orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
			fmt.Println("handle", string(r.Value))
			close(done)
			return nil
		}),
		orderly.WithMiddleware(trace("outer"), trace("inner")))
	runUntil(eng, done)
	// Output:
	// outer before
	// inner before
	// handle hello
	// inner after
	// outer after
}

// sliceSource is a minimal Source: one member that owns one partition of
// records held in a slice, and keeps its commits in memory.
type sliceSource struct {
	records   []*orderly.Record
	mu        sync.Mutex
	committed int64
}

func (s *sliceSource) Consume(ctx context.Context, serve func(orderly.Claim)) error {
	c := &sliceClaim{s: s, records: make(chan []*orderly.Record, 1), revoked: make(chan struct{})}
	c.records <- s.records // one batch; a client would send what each fetch returned
	served := make(chan struct{})
	go func() {
		defer close(served)
		serve(c)
	}()
	<-ctx.Done()     // leaving the group revokes every claim,
	close(c.revoked) // then waits for its final commit
	close(c.records)
	<-served
	return nil
}

type sliceClaim struct {
	s       *sliceSource
	records chan []*orderly.Record
	revoked chan struct{}
}

func (c *sliceClaim) Topic() string                     { return "t" }
func (c *sliceClaim) Partition() int32                  { return 0 }
func (c *sliceClaim) Start() orderly.Position           { return orderly.Position{Offset: orderly.NoOffset} }
func (c *sliceClaim) Records() <-chan []*orderly.Record { return c.records }
func (c *sliceClaim) Revoked() <-chan struct{}          { return c.revoked }
func (c *sliceClaim) Pause()                            {} // a client would stop fetching
func (c *sliceClaim) Resume()                           {}
func (c *sliceClaim) Commit(ctx context.Context, next int64, metadata string) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.s.committed = next
	return nil
}

// Source: any consumer group client can feed the engine through the
// Source and Claim interfaces; adapters/adaptertest checks that an adapter
// keeps their contract.
func ExampleSource() {
	src := &sliceSource{}
	for i := range 3 {
		src.records = append(src.records, &orderly.Record{Topic: "t", Offset: int64(i), Key: []byte("k"), Value: fmt.Append(nil, "event ", i)})
	}
	cd := newCountdown(3)
	eng, _ := orderly.New(src, orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		fmt.Println(string(r.Value))
		cd.tick()
		return nil
	}))
	runUntil(eng, cd.done)
	fmt.Println("committed:", src.committed)
	// Output:
	// event 0
	// event 1
	// event 2
	// committed: 3
}
