package actors_test

import (
	"sync"

	"github.com/orderly-go/orderly/actors"
)

// owner runs a group's owner loop on a goroutine of its own, as orderly's
// partition dispatcher does: it collects what the workers finished (and
// the retry delays that ended) and, in between, runs the test's calls.
type owner[M any] struct {
	g      *actors.Group[M]
	done   func(*M)
	calls  chan func()
	quit   chan struct{}
	exited chan struct{}

	mu        sync.Mutex
	events    []actors.KeyEvent
	collected int
}

func runOwner[M any](g *actors.Group[M], done func(*M)) *owner[M] {
	o := &owner[M]{g: g, done: done, calls: make(chan func()), quit: make(chan struct{}), exited: make(chan struct{})}
	go o.loop()
	return o
}

func (o *owner[M]) loop() {
	defer close(o.exited)
	for {
		select {
		case f := <-o.calls:
			f()
		case <-o.g.Ready():
			o.collect()
		case <-o.g.Due():
			o.collect()
		case <-o.quit:
			o.g.Close()
			return
		}
	}
}

func (o *owner[M]) collect() {
	evs, n := o.g.Collect(func(m *M) {
		if o.done != nil {
			o.done(m)
		}
	})
	o.mu.Lock()
	o.events = append(o.events, evs...)
	o.collected += n
	o.mu.Unlock()
}

// do runs f on the owner's goroutine and waits for it.
func (o *owner[M]) do(f func()) {
	finished := make(chan struct{})
	o.calls <- func() { f(); close(finished) }
	<-finished
}

// send sends a batch from the owner, going on past the messages refused,
// and returns their indexes.
func (o *owner[M]) send(batch ...actors.Message[M]) (refused []int) {
	o.do(func() {
		for i := 0; i < len(batch); {
			i += o.g.Send(batch[i:])
			if i < len(batch) {
				refused = append(refused, i)
				i++
			}
		}
	})
	return refused
}

// takeEvents returns the key events collected so far and forgets them.
func (o *owner[M]) takeEvents() []actors.KeyEvent {
	o.mu.Lock()
	defer o.mu.Unlock()
	evs := o.events
	o.events = nil
	return evs
}

func (o *owner[M]) stop() {
	close(o.quit)
	<-o.exited
}
