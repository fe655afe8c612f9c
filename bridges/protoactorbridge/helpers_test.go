package protoactorbridge_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/orderly-go/orderly/bridges/protoactorbridge"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newSystem is an actor system that logs nothing.
func newSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
}

// running starts eng and returns a function that cancels Run's context and
// returns Run's error.
func running(t *testing.T, eng *orderly.Engine) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return after cancel")
			return nil
		}
	}
}

// produceOrders appends events from..to-1 of each order to topic, event by
// event (so that orders interleave): key "o<n>", value the event number.
func produceOrders(t *testing.T, log *memory.Log, topic string, orders, from, to int) {
	t.Helper()
	for ev := from; ev < to; ev++ {
		for o := range orders {
			_, _, err := log.Produce(topic, []byte("o"+strconv.Itoa(o)), []byte(strconv.Itoa(ev)))
			require.NoError(t, err)
		}
	}
}

func eventOf(r *orderly.Record) int {
	n, err := strconv.Atoi(string(r.Value))
	if err != nil {
		panic(fmt.Sprintf("record %s/%d@%d: value %q is not an event number", r.Topic, r.Partition, r.Offset, r.Value))
	}
	return n
}

// seen is one request as an actor saw it.
type seen struct {
	event   int
	attempt int
	actor   int // the actor instance (a number per produced actor)
}

// journal records what the per-key actors saw, for the tests to check.
type journal struct {
	mu        sync.Mutex
	byKey     map[string][]seen
	instances int      // actors produced
	started   int      // Started messages
	stopped   int      // Stopped messages
	problems  []string // broken expectations noticed inside actors
}

func newJournal() *journal { return &journal{byKey: make(map[string][]seen)} }

func (j *journal) newInstance() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.instances++
	return j.instances
}

func (j *journal) add(key string, s seen) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.byKey[key] = append(j.byKey[key], s)
}

func (j *journal) problem(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.problems = append(j.problems, fmt.Sprintf(format, args...))
}

func (j *journal) count(f func(*journal) int) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return f(j)
}

// events returns the events key's actors saw, in the order they saw them.
func (j *journal) events(key string) []int {
	j.mu.Lock()
	defer j.mu.Unlock()
	var evs []int
	for _, s := range j.byKey[key] {
		evs = append(evs, s.event)
	}
	return evs
}

func (j *journal) requests() int {
	return j.count(func(j *journal) int {
		n := 0
		for _, s := range j.byKey {
			n += len(s)
		}
		return n
	})
}

// store is where order actors keep their status across passivation.
type store struct{ m sync.Map }

func (s *store) load(key string) int {
	if v, ok := s.m.Load(key); ok {
		return v.(int)
	}
	return -1
}

func (s *store) save(key string, status int) { s.m.Store(key, status) }

// orderActor keeps one order's status: the number of its last applied
// event. It loads the status when it starts and saves it after each event,
// so passivation loses nothing. An event that does not follow the status
// (a gap: an earlier event was lost, or one that was already applied) is
// noted as a problem; fail decides whether an attempt is answered with an
// error instead of being applied.
type orderActor struct {
	j     *journal
	store *store
	fail  func(r *protoactorbridge.Request) error
	id    int
	key   string

	status int
}

func (a *orderActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.j.mu.Lock()
		a.j.started++
		a.j.mu.Unlock()
	case *actor.Stopped:
		a.j.mu.Lock()
		a.j.stopped++
		a.j.mu.Unlock()
	case *protoactorbridge.Request:
		if a.key == "" {
			a.key, a.status = m.Key, a.store.load(m.Key)
		} else if a.key != m.Key {
			a.j.problem("actor %d of key %q got a request for key %q", a.id, a.key, m.Key)
		}
		ev := eventOf(m.Record)
		a.j.add(m.Key, seen{event: ev, attempt: m.Attempt, actor: a.id})
		if a.fail != nil {
			if err := a.fail(m); err != nil {
				ctx.Respond(protoactorbridge.Reply{Err: err})
				return
			}
		}
		if ev <= a.status {
			a.j.problem("key %q: event %d after status %d", m.Key, ev, a.status)
		}
		a.status = ev
		a.store.save(m.Key, ev)
		ctx.Respond(protoactorbridge.Reply{})
	}
}

// orderProps makes order actors that write to j and keep their status in s.
func orderProps(j *journal, s *store, fail func(*protoactorbridge.Request) error) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &orderActor{j: j, store: s, fail: fail, id: j.newInstance()}
	})
}
