package orderly

import (
	"context"
	"log/slog"
	"time"

	"github.com/orderly-go/orderly/actors"
	"github.com/orderly-go/orderly/backpressure"
)

// dispatch hands the records read from the claim to their key actors, in
// order: for each run of records, it takes their credits (all of a run at
// once when they fit, else one record's), registers their offsets with
// the committer and sends them to the group. When a record's credits do
// not fit, it and the records after it wait in d.held, the pool that
// lacked is waited for (d.wait) and the claim is paused for its reason;
// the event loop calls dispatch again when the pool gives. Dispatcher
// only.
func (p *partition) dispatch(b []*Record) {
	d := &p.d
	for len(b) > 0 {
		if d.skip != nil {
			if d.skip.Done() {
				d.skip = nil
			} else if d.skip.Skip(b[0].Offset) {
				// Done before a restart: registered as done, holding only
				// its place in the uncommitted window until passed.
				if !p.take([]backpressure.Credit{{Pool: p.window, N: 1, Reason: backpressure.ReasonUncommitted}}, true) {
					d.held = b
					return
				}
				p.cp.RegisterDone(b[0].Offset)
				if p.spill != nil {
					p.spill.state.Advance(b[0].Offset + 1)
				}
				b = b[1:]
				continue
			}
		}
		n := len(b)
		if d.skip != nil {
			n = 1 // one at a time while skip ranges lie ahead
		}
		n = p.takeRecords(b[:n])
		if n == 0 {
			d.held = b
			return
		}
		if p.e.cfg.atMostOnce {
			p.registerDone(b[:n])
		} else {
			p.send(b[:n], d.sizes[:n])
		}
		b = b[n:]
	}
	d.held = nil
}

// credits appends the credits of n records of size bytes (all of one
// priority level) to dst: the window's place (unless re-read: a dropped
// record kept it), the partition's records and bytes, the level's slice,
// the engine's records and bytes.
func (p *partition) credits(dst []backpressure.Credit, n, size int64, level int, window bool) []backpressure.Credit {
	e := p.e
	if window {
		dst = append(dst, backpressure.Credit{Pool: p.window, N: n, Reason: backpressure.ReasonUncommitted})
	}
	dst = append(dst,
		backpressure.Credit{Pool: p.records, N: n, Reason: backpressure.ReasonPartitionRecords},
		backpressure.Credit{Pool: p.bytes, N: size, Reason: backpressure.ReasonPartitionBytes})
	if pr := e.prio; pr != nil {
		dst = append(dst,
			backpressure.Credit{Pool: pr.records[level], N: n, Reason: backpressure.ReasonLevelRecords(level)},
			backpressure.Credit{Pool: pr.bytes[level], N: size, Reason: backpressure.ReasonLevelBytes(level)})
	}
	return append(dst,
		backpressure.Credit{Pool: e.records, N: n, Reason: backpressure.ReasonEngineRecords},
		backpressure.Credit{Pool: e.bytes, N: size, Reason: backpressure.ReasonEngineBytes})
}

// takeRecords takes the credits of b: of all of it when they fit under
// every high mark now (with priorities: of its longest prefix of one
// level), else of its first record alone (which may pass a high mark on
// its own when nothing is held). It returns how many records it took
// credits for; 0 means it waits (see take).
func (p *partition) takeRecords(b []*Record) int {
	level, n := 0, len(b)
	if p.e.prio != nil {
		level = p.levelAt(b, 0)
		n = 1
		for n < len(b) && p.levelAt(b, n) == level {
			n++
		}
	}
	d := &p.d
	var size int64
	d.sizes = d.sizes[:0]
	for _, r := range b[:n] {
		s := r.Size()
		d.sizes = append(d.sizes, s)
		size += s
	}
	if n > 1 && d.granted.Pool == nil {
		cs := p.credits(d.taken[:0], int64(n), size, level, true)
		d.taken = cs
		if backpressure.Take(cs, false) < 0 {
			p.tookLevel(level, n)
			return n
		}
	}
	cs := p.credits(d.taken[:0], 1, d.sizes[0], level, true)
	d.taken = cs
	if !p.take(cs, true) {
		return 0
	}
	p.tookLevel(level, 1)
	return 1
}

// take takes the credit set cs, or, if one of its pools cannot give now,
// waits for that pool: the claim is paused for the pool's reason and
// d.wait will be ready when the pool gives. A credit a granted waiter
// holds (d.granted) counts toward the set. A set is never held in part
// while waiting: the grant is given back if the rest does not fit.
func (p *partition) take(cs []backpressure.Credit, oversize bool) bool {
	d := &p.d
	missing := takeGranted(cs, &d.granted, oversize)
	if missing < 0 {
		return true
	}
	p.waitFor(cs[missing])
	return false
}

// takeGranted takes cs, counting *granted (a credit a granted waiter
// holds; then cleared) toward it when cs has the same credit; a grant the
// set has no use for, or that cannot be completed now, is given back.
func takeGranted(cs []backpressure.Credit, granted *backpressure.Credit, oversize bool) (missing int) {
	g := *granted
	if g.Pool == nil {
		return backpressure.Take(cs, oversize)
	}
	*granted = backpressure.Credit{}
	for i, c := range cs {
		if c.Pool == g.Pool && c.N == g.N {
			missing = backpressure.TakeRest(cs, i, oversize)
			if missing >= 0 {
				g.Pool.Release(g.N)
			}
			return missing
		}
	}
	g.Pool.Release(g.N)
	return backpressure.Take(cs, oversize)
}

// waitFor waits for c's pool to give c's credits.
func (p *partition) waitFor(c backpressure.Credit) {
	d := &p.d
	p.valve.Set(c.Reason, true)
	p.valve.Flush() // paused before we wait: the source stops fetching now
	d.waitFor = c
	d.wait = c.Pool.Wait(c.N)
}

// resumeWaiting is called when d.wait is ready: the waited-for credits
// are ours (d.granted) until the next take counts them toward its set. If
// the pool's holdings fell to its low mark before the claim was paused,
// its reason is lifted here, as no later release will.
func (p *partition) resumeWaiting() {
	d := &p.d
	c := d.waitFor
	d.wait, d.waitFor = nil, backpressure.Credit{}
	d.granted = c
	if !c.Pool.Tripped() {
		p.valve.Set(c.Reason, false)
	}
}

// cancelWait gives up waiting (the claim is ending).
func (p *partition) cancelWait() {
	d := &p.d
	if d.granted.Pool != nil {
		d.granted.Pool.Release(d.granted.N)
		d.granted = backpressure.Credit{}
	}
	if d.wait == nil {
		return
	}
	if d.wait.Cancel() {
		d.waitFor.Pool.Release(d.waitFor.N)
	}
	d.wait, d.waitFor = nil, backpressure.Credit{}
}

// send hands b, whose credits are taken, to its key actors: keys, levels
// and dispatch hooks first (user code, on the dispatcher, no lock held),
// then offsets registered with the committer, then the group. With spilled
// keys, a record of one is dropped instead (see spiller), and a record a
// full key refuses spills it. sizes are b's sizes when known (nil: not).
func (p *partition) send(b []*Record, sizes []int64) {
	e := p.e
	d := &p.d
	var now time.Time
	if e.timed {
		now = time.Now()
	}
	born := dispatchStamp(now) // one clock reading per batch, for Inspect's ages
	quiet := p.observe(b)
	msgs := d.msgs[:0]
	for i, r := range b {
		var size int64
		if sizes != nil {
			size = sizes[i]
		} else {
			size = r.Size()
		}
		m := actors.Message[*task]{Msg: p.newTask(r, size, now, born)}
		m.Weight = m.Msg.size
		e.route(r, &m)
		if e.prio != nil {
			m.Level = d.prio.nextLevel()
			m.Msg.level, m.Msg.runLevel = m.Level, m.Level
		}
		if quiet != nil {
			m.Msg.quiet = quiet[i]
		}
		msgs = append(msgs, m)
		if len(e.cfg.hooks.dispatched) > 0 && (quiet == nil || !e.cfg.hooks.silent(quiet[i])) {
			info := RecordInfo{Group: e.group, Dispatched: now, Priority: int(m.Level), RunPriority: int(m.Level)}
			for _, h := range e.cfg.hooks.dispatched {
				if m.Msg.quiet&h.bit == 0 {
					e.guard("HookRecordDispatched", func() { h.h.OnRecordDispatched(r, info) })
				}
			}
		}
	}
	for i := range msgs {
		p.cp.Register(msgs[i].Msg.offset)
	}
	if p.spill != nil {
		p.spill.send(msgs)
	} else {
		p.group.Send(msgs) // Hold: nothing is refused
		d.live += int64(len(msgs))
		p.keysOver()
	}
	clear(msgs)
	d.msgs = msgs[:0]
}

// keysOver sets the key pause reason while a key holds more than its
// buffer (a partition that cannot spill). Dispatcher only.
func (p *partition) keysOver() {
	over := p.group.Over() > 0
	if over != p.d.keysOut {
		p.d.keysOut = over
		p.valve.Set(backpressure.ReasonKey, over)
	}
}

// registerDone registers b as done at dispatch (at-most-once): their
// commit comes before they run (flushPending), and they wait in pending
// until then.
func (p *partition) registerDone(b []*Record) {
	for _, r := range b {
		p.cp.RegisterDone(r.Offset)
	}
	p.d.pending = append(p.d.pending, b...)
	if len(p.d.pending) >= 256 {
		p.flushPending()
	}
}

// flushPending commits the at-most-once records registered so far, then
// lets them run. If the commit fails they are dropped unhandled, which is
// what at-most-once allows.
func (p *partition) flushPending() {
	d := &p.d
	if len(d.pending) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(p.readCtx, p.e.cfg.commitTimeout)
	err := p.cp.Flush(ctx)
	cancel()
	if err != nil {
		p.log.Warn("orderly: at-most-once commit failed; records dropped unhandled", slog.Int("records", len(d.pending)), slog.Any("error", err))
		var n, size int64
		for _, r := range d.pending {
			n++
			size += r.Size()
			if p.e.prio != nil {
				p.e.prio.release(d.prio.nextLevel(), r.Size())
			}
		}
		p.giveBack(n, size)
	} else {
		p.send(d.pending, nil)
	}
	clear(d.pending)
	d.pending = d.pending[:0]
}

// giveBack returns n records' partition and engine credits (not their
// window: the committer gives that back as the watermark passes).
func (p *partition) giveBack(n, size int64) {
	if n == 0 {
		return
	}
	p.records.Release(n)
	p.bytes.Release(size)
	p.e.records.Release(n)
	p.e.bytes.Release(size)
}
