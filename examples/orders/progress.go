package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/orderly-go/orderly"
)

// progress prints a line of live figures every quarter second while the
// engine works through the events.
type progress struct {
	out     io.Writer
	eng     *orderly.Engine
	offsets *partitionOffsets
	led     *ledger
	start   time.Time
	quiet   bool
}

// follow returns once every event was applied, or failed to decode, or
// was dead-lettered (failed() counts those two), or with an error when
// producing failed (produced is closed once the producers returned
// produceErr), the engine stopped (ran is closed once Run returned runErr)
// or ctx is done.
func (p *progress) follow(ctx context.Context, records int64, produced <-chan struct{}, produceErr *error, ran <-chan struct{}, runErr *error, failed func() int64) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	last, lastAt := int64(0), p.start
	for p.led.applied.Load()+failed() < records {
		select {
		case <-produced:
			if *produceErr != nil {
				return *produceErr
			}
			produced = nil // done; keep following
		case <-ctx.Done():
			return ctx.Err()
		case <-ran:
			return fmt.Errorf("engine stopped early: %v", *runErr)
		case now := <-tick.C:
			if p.quiet || now.Sub(lastAt) < 250*time.Millisecond {
				continue
			}
			n := p.led.applied.Load()
			p.line(now, n, float64(n-last)/now.Sub(lastAt).Seconds())
			last, lastAt = n, now
		}
	}
	if !p.quiet {
		now := time.Now()
		n := p.led.applied.Load()
		p.line(now, n, float64(n-last)/max(now.Sub(lastAt).Seconds(), 1e-9))
	}
	return nil
}

// line prints: time since producing started, events produced and
// handled, handled per second since the last line, handler calls in
// flight, committed lag (events produced and not yet committed) and
// partitions paused by backpressure.
func (p *progress) line(now time.Time, handled int64, rate float64) {
	s := p.eng.Stats()
	first, end, sent := p.offsets.snapshot()
	committed := make(map[int32]int64, len(s.Partitions))
	for _, ps := range s.Partitions {
		committed[ps.Partition] = ps.Committed
	}
	var lag int64
	for i := range end {
		if first[i] < 0 {
			continue
		}
		c, ok := committed[int32(i)]
		if !ok || c < first[i] {
			c = first[i]
		}
		lag += max(end[i]-c, 0)
	}
	fmt.Fprintf(p.out, "%6.2fs  produced %7d  handled %7d  %8.0f events/s  in flight %4d  committed lag %7d  paused %d/%d\n",
		now.Sub(p.start).Seconds(), sent, handled, rate, s.InFlight, lag, s.PausedTotal, len(s.Partitions))
}
