package orderly

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/orderly-go/orderly/backpressure"
	"github.com/sony/gobreaker/v2"
)

// BreakerPolicy configures the circuit breaker (WithCircuitBreaker). It
// watches handler attempts engine-wide: when, within a Window, at least
// MinRequests attempts were made and the share that failed reaches
// FailureRatio, the breaker opens. While open, every claim's fetching is
// paused (reason "breaker") and no handler is called: records already in
// the engine wait, their attempts not counted. After CoolDown it goes
// half-open: fetching resumes and HalfOpenRequests attempts may run at
// once; if they succeed it closes, if one fails it opens again.
//
// Permanent errors and cancelled attempts do not count as failures: a bad
// record is not a sick downstream. The breaker itself is
// github.com/sony/gobreaker/v2.
type BreakerPolicy struct {
	Window           time.Duration // > 0; default 10s
	MinRequests      int           // ≥ 1; default 20
	FailureRatio     float64       // in (0, 1]; default 0.5
	CoolDown         time.Duration // > 0; default 5s
	HalfOpenRequests int           // ≥ 1; default 1
}

func (b BreakerPolicy) withDefaults() BreakerPolicy {
	if b.Window == 0 {
		b.Window = 10 * time.Second
	}
	if b.MinRequests == 0 {
		b.MinRequests = 20
	}
	if b.FailureRatio == 0 {
		b.FailureRatio = 0.5
	}
	if b.CoolDown == 0 {
		b.CoolDown = 5 * time.Second
	}
	if b.HalfOpenRequests == 0 {
		b.HalfOpenRequests = 1
	}
	return b
}

func (b BreakerPolicy) validate() error {
	switch {
	case b.Window < 0:
		return invalid("BreakerPolicy.Window %v: must be > 0", b.Window)
	case b.MinRequests < 0:
		return invalid("BreakerPolicy.MinRequests %d: must be ≥ 1", b.MinRequests)
	case !(b.FailureRatio >= 0 && b.FailureRatio <= 1):
		return invalid("BreakerPolicy.FailureRatio %v: must be in (0, 1]", b.FailureRatio)
	case b.CoolDown < 0:
		return invalid("BreakerPolicy.CoolDown %v: must be > 0", b.CoolDown)
	case b.HalfOpenRequests < 0:
		return invalid("BreakerPolicy.HalfOpenRequests %d: must be ≥ 1", b.HalfOpenRequests)
	}
	return nil
}

// WithCircuitBreaker stops fetching and handling while the downstream
// looks sick; see BreakerPolicy. Zero fields take their defaults.
func WithCircuitBreaker(p BreakerPolicy) Option {
	return func(c *config) {
		if err := p.validate(); err != nil {
			c.fail(err)
			return
		}
		q := p.withDefaults()
		c.breaker = &q
	}
}

// breaker wraps gobreaker's two-step breaker with the engine's pause and
// resume. gobreaker moves from open to half-open only when asked, so a
// timer asks at the end of the cool-down.
type breaker struct {
	e        *Engine
	cb       *gobreaker.TwoStepCircuitBreaker[struct{}]
	coolDown time.Duration

	mu      sync.Mutex // guards open, seq, timer, opened and stopped
	open    bool
	seq     uint64 // bumped on every change of open: orders the valves' reports
	timer   *time.Timer
	opened  time.Time
	stopped bool

	// timers counts the cool-down timer armed and not yet run or stopped:
	// stop waits for its callback, so nothing of the breaker outlives Run.
	timers sync.WaitGroup
}

func newBreaker(e *Engine, p BreakerPolicy) *breaker {
	b := &breaker{e: e, coolDown: p.CoolDown}
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "orderly",
		MaxRequests: uint32(p.HalfOpenRequests),
		Interval:    p.Window,
		Timeout:     p.CoolDown,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.Requests >= uint32(p.MinRequests) && float64(c.TotalFailures) >= p.FailureRatio*float64(c.Requests)
		},
		IsExcluded: func(err error) bool {
			return IsPermanent(err) || errors.Is(err, context.Canceled)
		},
		OnStateChange: b.changed,
	})
	return b
}

// changed runs under gobreaker's lock: it must not call back into cb.
func (b *breaker) changed(_ string, from, to gobreaker.State) {
	b.e.log.Warn("orderly: circuit breaker "+to.String(), slog.String("from", from.String()))
	b.mu.Lock()
	defer b.mu.Unlock()
	switch to {
	case gobreaker.StateOpen:
		b.open, b.opened = true, time.Now()
		b.seq++
		if b.timer != nil && b.timer.Stop() {
			b.timers.Done()
		}
		b.timer = nil
		if !b.stopped {
			b.timers.Add(1)
			// Owned by the breaker (stop waits for it): makes gobreaker
			// notice the cool-down's end.
			b.timer = time.AfterFunc(b.coolDown, func() { defer b.timers.Done(); b.cb.State() })
		}
		b.apply(b.e.partitions())
	default:
		if b.open {
			b.open = false
			b.seq++
			b.apply(b.e.partitions())
		}
	}
}

// stop disarms the cool-down timer and waits for a callback already
// running; Run calls it last.
func (b *breaker) stop() {
	b.mu.Lock()
	b.stopped = true
	if b.timer != nil && b.timer.Stop() {
		b.timers.Done()
	}
	b.timer = nil
	b.mu.Unlock()
	b.timers.Wait()
}

// admit asks whether an attempt may start. If not, it says how long to
// wait before asking again.
func (b *breaker) admit() (done func(error), wait time.Duration) {
	done, err := b.cb.Allow()
	if err == nil {
		return done, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	wait = time.Until(b.opened.Add(b.coolDown))
	return nil, max(wait, 10*time.Millisecond)
}

// apply sets the breaker's pause reason on ps to its current state; b.mu
// must be held. Valves take the report only if it is newer than the last
// one they applied, so a partition that read the state as it started and
// the breaker changing at that moment end up agreeing whatever the order.
func (b *breaker) apply(ps []*partition) {
	for _, p := range ps {
		p.valve.SetIfNewer(backpressure.ReasonBreaker, b.open, b.seq)
	}
}

// join gives a partition that just started the breaker's state. The
// partition is in the engine's list before it calls join, so a change
// after join reaches it through apply.
func (b *breaker) join(p *partition) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seq > 0 {
		p.valve.SetIfNewer(backpressure.ReasonBreaker, b.open, b.seq)
	}
}

func (b *breaker) isOpen() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open
}
