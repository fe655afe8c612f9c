package orderly

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/orderly-go/orderly/actors"
	"github.com/orderly-go/orderly/backpressure"
	"github.com/orderly-go/orderly/internal/spill"
)

// spiller is one partition's spilling (KeyOverflowSpill): the bookkeeping
// of its spilled keys (package internal/spill), owned by the dispatcher,
// and the re-reader that reads the partition again for them.
//
// The dispatcher drops a record of a spilled key instead of queueing it,
// and a record whose key's mailbox refuses it (the key is over its buffer)
// spills the key: in both cases the record stays registered with the
// committer and not done (the watermark waits for it), and its credits
// come back at once, except its place in the uncommitted window. The
// re-reader, a goroutine of its own, reads the partition again and hands
// each batch it reads to the dispatcher (spillMsg), which decides, record
// by record, what internal/spill says: hand it to its keys, leave it for a
// later pass, or wait for a full key or for credit first. A key leaves the
// spilled set only when a pass reached the dispatcher's position, so the
// dispatcher's next record of it is queued after every record handed
// back. See internal/spill for the invariants.
//
// Goroutines: the re-reader is started by the dispatcher (start) and
// stopped and joined by it (stop); it blocks only on its stream, on the
// dispatcher's replies and on wake, each with the partition's read
// context.
type spiller struct {
	p   *partition
	src Rereader

	inbox chan spillMsg   // re-reader → dispatcher
	wake  chan struct{}   // one slot: dispatcher → re-reader: a pass may start
	done  chan struct{}   // closed when the re-reader returns
	ctx   context.Context // the partition's read context

	// Owned by the dispatcher.
	state   *spill.State
	spilled []*Record // records that spilled keys in the last send, for the hooks
	pass    *passState
	held    *spillMsg // a batch being handed back, waiting for credit or a key
	heldAt  int       // its next record
	wait    *backpressure.Waiter
	waitFor backpressure.Credit
	granted backpressure.Credit // credits a granted waiter holds, until the next take counts them
	credits []backpressure.Credit
	msg     [1]actors.Message[*task]
	view    keysView // reused: an interface value made of it costs no allocation

	// For Stats.
	rereading atomic.Bool
	read      atomic.Uint64 // records read again from the log by this claim
	keys      atomic.Int64  // keys spilled now
}

// passState is the running pass, as the dispatcher sees it.
type passState struct {
	info     RereadInfo
	began    time.Time
	vanished int64
}

type spillMsgKind uint8

const (
	spillStart  spillMsgKind = iota // may a pass start, and from where?
	spillBatch                      // a batch of the stream
	spillFailed                     // the stream failed or could not be opened
)

// spillMsg is a message from the re-reader; the dispatcher answers each
// on reply (buffered).
type spillMsg struct {
	kind  spillMsgKind
	recs  []*Record
	err   error
	reply chan spillReply
}

type spillReply struct {
	from  int64
	start bool // spillStart: a pass starts at from
	over  bool // spillBatch: the pass is over
}

// spillable reports whether a partition of this claim spills keys over
// their buffer rather than pausing (see KeyOverflow), and how it re-reads.
func (e *Engine) spillable(c Claim) (Rereader, bool) {
	rr, ok := c.(Rereader)
	o := &e.cfg.ordering
	if !ok || e.cfg.atMostOnce || o.serial || (o.one == nil && o.many == nil) {
		return nil, false
	}
	return rr, true
}

// keyLimits is a key's buffer: what WithKeyBuffer set, and otherwise the
// default, which depends on what a key over it does. Spilling costs a
// re-read, so a key may hold half its partition's buffer before it
// spills, leaving the other half to the other keys (a quarter made a
// merely hot key with a fast handler spill and read the log again over and
// over: Zipf keys with a no-op handler cost 2 µs a record instead of 0.3);
// pausing stalls every key of the partition, so a key may hold the whole
// buffer before it pauses.
func (c *config) keyLimits(spills bool) limits {
	l := c.partition
	if spills {
		l = limits{records: max(c.partition.records/2, 1), bytes: max(c.partition.bytes/2, 1)}
	}
	if c.keyRecords > 0 {
		l.records = c.keyRecords
	}
	if c.keyBytes > 0 {
		l.bytes = c.keyBytes
	}
	return l
}

func newSpiller(p *partition, src Rereader) *spiller {
	return &spiller{p: p, src: src, state: spill.New(), inbox: make(chan spillMsg),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// spillInbox is what the dispatcher selects on for the re-reader: nil
// without spilling.
func (p *partition) spillInbox() <-chan spillMsg {
	if p.spill == nil {
		return nil
	}
	return p.spill.inbox
}

// spillWait is the re-read's credit waiter, for the dispatcher's select.
func (p *partition) spillWait() <-chan struct{} {
	if p.spill == nil || p.spill.wait == nil {
		return nil
	}
	return p.spill.wait.Ready()
}

// start starts the re-reader. Dispatcher only.
func (sp *spiller) start() {
	sp.ctx = sp.p.readCtx
	// Owned by the dispatcher: stop cancels it (the read context) and
	// waits for it.
	go sp.reread()
}

// stop waits for the re-reader, whose context the partition cancelled,
// and gives back the credits of a re-read batch left waiting.
func (sp *spiller) stop() {
	<-sp.done
	if sp.wait != nil {
		if sp.wait.Cancel() {
			sp.waitFor.Pool.Release(sp.waitFor.N)
		}
		sp.wait = nil
	}
	if sp.granted.Pool != nil {
		sp.granted.Pool.Release(sp.granted.N)
		sp.granted = backpressure.Credit{}
	}
	sp.held = nil
}

func (sp *spiller) signal() {
	select {
	case sp.wake <- struct{}{}:
	default:
	}
}

// keysView is the key actors as internal/spill reads them, for a record
// of the given weight: a key is over when its mailbox would refuse it.
type keysView struct {
	g      *actors.Group[*task]
	weight int64
}

func (k *keysView) Over(key uint64) bool { return !k.g.Accepts(key, k.weight) }
func (k *keysView) Idle(key uint64) bool { return k.g.KeyIdle(key) }

// keysFor is the keys as seen by a record of the given weight.
func (sp *spiller) keysFor(weight int64) *keysView {
	sp.view = keysView{g: sp.p.group, weight: weight}
	return &sp.view
}

// send queues msgs, whose offsets are registered and credits taken, with
// the group: a record of a spilled key is dropped, and one its key's
// mailbox refuses spills the key. The group takes runs of records and
// stops at a refusal, so every drop is decided in offset order, before
// any later record of its keys is queued. Dispatcher only.
func (sp *spiller) send(msgs []actors.Message[*task]) {
	p := sp.p
	if len(msgs) == 0 {
		return
	}
	next := msgs[len(msgs)-1].Msg.offset + 1 // read now: a dropped record's task is freed
	for i := 0; i < len(msgs); {
		if sp.state.Spilled() > 0 && sp.anySpilled(&msgs[i]) {
			sp.drop(&msgs[i])
			i++
			continue
		}
		j := i + 1
		for j < len(msgs) && (sp.state.Spilled() == 0 || !sp.anySpilled(&msgs[j])) {
			j++
		}
		n := p.group.Send(msgs[i:j])
		p.d.live += int64(n)
		i += n
		if i < j {
			sp.drop(&msgs[i]) // refused: its key is over its buffer
			i++
		}
	}
	sp.state.Advance(next)
	sp.keys.Store(int64(sp.state.Spilled()))
	if len(sp.spilled) > 0 {
		e := p.e
		for _, r := range sp.spilled {
			for _, h := range e.cfg.hooks.spill {
				e.guard("HookSpill", func() { h.OnKeySpilled(r) })
			}
		}
		clear(sp.spilled)
		sp.spilled = sp.spilled[:0]
	}
}

func (sp *spiller) anySpilled(m *actors.Message[*task]) bool {
	var one [1]uint64
	for _, k := range messageKeys(m, one[:0]) {
		if sp.state.IsSpilled(k) {
			return true
		}
	}
	return false
}

// drop drops a record of a spilled key, or one its key refused (which
// spills the key), giving back its credits but its window's place.
func (sp *spiller) drop(m *actors.Message[*task]) {
	p := sp.p
	var one [1]uint64
	keys := messageKeys(m, one[:0])
	drop, spilled, wake := sp.state.Dispatch(m.Msg.offset, keys, sp.keysFor(m.Weight))
	if !drop {
		// Cannot happen (offsets increase and a refusing key is over): a
		// record neither queued nor dropped would never be handled, so
		// say so loudly.
		p.log.LogAttrs(context.Background(), slog.LevelError, "orderly: a record refused by its key was not spilled; it will not be handled",
			recordAttrs(m.Msg.rec)...)
	}
	p.giveBack(1, m.Msg.size)
	if pr := p.e.prio; pr != nil {
		pr.release(m.Msg.level, m.Msg.size)
	}
	if spilled > 0 && len(p.e.cfg.hooks.spill) > 0 {
		sp.spilled = append(sp.spilled, m.Msg.rec)
	}
	p.freeTask(m.Msg)
	if wake {
		sp.signal()
	}
}

// messageKeys returns m's keys: m.Keys, or its one key appended to buf.
func messageKeys(m *actors.Message[*task], buf []uint64) []uint64 {
	switch {
	case len(m.Keys) > 0:
		return m.Keys
	case m.HasKey:
		return append(buf, m.Key)
	}
	return buf
}

// keyEvents hands the group's key events to internal/spill: a spilled key
// that drained or went idle may let a pass start, or a waiting batch go
// on. Dispatcher only.
func (sp *spiller) keyEvents(evs []actors.KeyEvent) {
	if sp.state.Spilled() == 0 {
		return
	}
	moved := false
	for _, ev := range evs {
		if sp.state.KeyEvent(ev.Key) {
			moved = true
		}
	}
	if moved {
		sp.signal()
		if sp.held != nil && sp.wait == nil {
			sp.handBack()
		}
	}
}

// handle answers a message of the re-reader. Dispatcher only.
func (sp *spiller) handle(m spillMsg) {
	switch m.kind {
	case spillStart:
		from, ok := sp.state.Start(sp.keysFor(0))
		if ok {
			sp.pass = &passState{info: RereadInfo{Topic: sp.p.topic, Partition: sp.p.id, From: from, Next: from}, began: time.Now()}
			sp.rereading.Store(true)
		}
		m.reply <- spillReply{from: from, start: ok}
	case spillFailed:
		if sp.state.Reading() {
			sp.state.Abort()
		}
		sp.endPass(m.err)
		m.reply <- spillReply{over: true}
	case spillBatch:
		sp.read.Add(uint64(len(m.recs)))
		sp.p.counts.reread.Add(uint64(len(m.recs)))
		if sp.pass != nil {
			sp.pass.info.Read += int64(len(m.recs))
		}
		sp.held, sp.heldAt = &m, 0
		sp.handBack()
	}
}

// handBack goes on with the held re-read batch: it hands each dropped
// record back to its keys, in order, until the batch is done (the
// re-reader is answered) or a record must wait (for credit: sp.wait; for
// a full key: a key event).
func (sp *spiller) handBack() {
	p, e := sp.p, sp.p.e
	m := sp.held
	for sp.heldAt < len(m.recs) {
		r := m.recs[sp.heldAt]
		if sp.pass != nil {
			sp.pass.info.Next = r.Offset + 1
		}
		switch sp.state.Look(r.Offset, sp.vanished) {
		case spill.CaughtUp:
			if sp.pass != nil {
				sp.pass.info.Next = r.Offset
			}
			sp.finish()
			return
		case spill.Dropped:
			var now time.Time
			if e.timed {
				now = time.Now()
			}
			msg := &sp.msg[0]
			*msg = actors.Message[*task]{Msg: p.newTask(r, r.Size(), now, dispatchStamp(now))}
			msg.Msg.reread = true
			msg.Weight = msg.Msg.size
			e.route(r, msg) // user code: no lock held
			level := 0
			if e.prio != nil {
				level = p.rereadLevel(r)
				msg.Level = uint8(level)
				msg.Msg.level, msg.Msg.runLevel = msg.Level, msg.Level
			}
			// Its credits first (not its window's place: it kept it);
			// without them it waits, and is looked at again when they come.
			sp.credits = p.credits(sp.credits[:0], 1, msg.Msg.size, level, false)
			if missing := takeGranted(sp.credits, &sp.granted, true); missing >= 0 {
				sp.waitFor = sp.credits[missing]
				sp.wait = sp.waitFor.Pool.Wait(sp.waitFor.N)
				p.freeTask(msg.Msg)
				clear(sp.msg[:])
				return
			}
			var one [1]uint64
			keys := messageKeys(msg, one[:0])
			switch sp.state.Decide(r.Offset, keys, sp.keysFor(msg.Weight)) {
			case spill.Wait:
				backpressure.Give(sp.credits)
				p.freeTask(msg.Msg)
				clear(sp.msg[:])
				return // a key event (keyEvents) goes on
			case spill.Pass:
				backpressure.Give(sp.credits)
				p.freeTask(msg.Msg)
			case spill.Deliver:
				if q := p.observe(m.recs[sp.heldAt : sp.heldAt+1]); q != nil {
					msg.Msg.quiet = q[0]
				}
				if len(e.cfg.hooks.dispatched) > 0 {
					ri := RecordInfo{Group: e.group, Dispatched: now, Reread: true, Priority: level, RunPriority: level}
					for _, h := range e.cfg.hooks.dispatched {
						if msg.Msg.quiet&h.bit == 0 {
							e.guard("HookRecordDispatched", func() { h.h.OnRecordDispatched(r, ri) })
						}
					}
				}
				if p.group.Send(sp.msg[:]) == 0 {
					// Cannot happen: Decide delivers only to keys that
					// accept it, and nothing else sends meanwhile.
					p.log.LogAttrs(context.Background(), slog.LevelError, "orderly: a key refused a record handed back to it; it will not be handled",
						recordAttrs(r)...)
					backpressure.Give(sp.credits)
					p.freeTask(msg.Msg)
				} else {
					p.d.live++
					if sp.pass != nil {
						sp.pass.info.Delivered++
					}
				}
			}
			clear(sp.msg[:])
		}
		sp.heldAt++
		switch {
		case sp.state.CaughtUp():
			sp.finish()
			return
		case sp.state.Reading() && sp.state.Members() == 0:
			sp.state.Stop()
			sp.endPass(nil)
			sp.answer(true)
			return
		}
	}
	sp.answer(false)
}

// resumeWaiting is called when the re-read's credit waiter is ready: the
// credits are held (granted) until the held batch, going on, counts them
// toward its record's set.
func (sp *spiller) resumeWaiting() {
	sp.granted = sp.waitFor
	sp.wait, sp.waitFor = nil, backpressure.Credit{}
	if sp.held != nil {
		sp.handBack()
	}
	if sp.held == nil && sp.granted.Pool != nil {
		sp.granted.Pool.Release(sp.granted.N)
		sp.granted = backpressure.Credit{}
	}
}

// finish ends a pass that caught up with the dispatcher.
func (sp *spiller) finish() {
	back := sp.state.Finish()
	sp.keys.Store(int64(sp.state.Spilled()))
	if sp.pass != nil {
		sp.pass.info.Back = back
	}
	sp.endPass(nil)
	sp.answer(true)
}

// answer replies to the held batch.
func (sp *spiller) answer(over bool) {
	if sp.held != nil {
		sp.held.reply <- spillReply{over: over}
		sp.held = nil
	}
}

// endPass reports the pass that ended.
func (sp *spiller) endPass(err error) {
	sp.rereading.Store(false)
	ps := sp.pass
	sp.pass = nil
	if ps == nil {
		return
	}
	ps.info.Took, ps.info.Err = time.Since(ps.began), err
	if ps.vanished > 0 {
		sp.p.log.Warn("orderly: records of spilled keys were gone from the log before they were read again; they are skipped",
			slog.Int64("records", ps.vanished), slog.Int64("before", ps.info.Next))
	}
	e := sp.p.e
	for _, h := range e.cfg.hooks.spill {
		e.guard("HookSpill", func() { h.OnReread(ps.info) })
	}
}

// vanished marks done a dropped record the log no longer has (retention
// or compaction removed it before it was read again): it can never be
// handled, and the watermark must not wait for it.
func (sp *spiller) vanished(offset int64) {
	sp.p.cp.Complete(offset)
	if sp.pass != nil {
		sp.pass.vanished++
	}
}

// rereadBackoff bounds the wait after a re-read failed (a stream that
// could not be opened or broke): from the first value, doubling up to the
// second.
var rereadBackoff = [2]time.Duration{100 * time.Millisecond, 5 * time.Second}

// reread is the re-reader: it asks the dispatcher whether a pass may
// start, runs it, and otherwise waits for a wake-up.
func (sp *spiller) reread() {
	defer close(sp.done)
	ctx := sp.ctx
	backoff := rereadBackoff[0]
	for ctx.Err() == nil {
		r, ok := sp.ask(spillMsg{kind: spillStart})
		if !ok {
			return
		}
		if !r.start {
			select {
			case <-sp.wake:
			case <-ctx.Done():
			}
			continue
		}
		if err := sp.passFrom(r.from); err == nil || ctx.Err() != nil {
			backoff = rereadBackoff[0]
			continue
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		backoff = min(2*backoff, rereadBackoff[1])
	}
}

// passFrom reads the partition from from, handing each batch to the
// dispatcher, until the dispatcher says the pass is over; it returns the
// stream's error when the stream failed.
func (sp *spiller) passFrom(from int64) error {
	ctx := sp.ctx
	stream, err := sp.src.ReadFrom(ctx, from)
	if err != nil {
		if ctx.Err() == nil {
			sp.p.log.Warn("orderly: cannot re-read the partition for its spilled keys; will retry",
				slog.Int64("from", from), slog.Any("error", err))
		}
		sp.ask(spillMsg{kind: spillFailed, err: err})
		return err
	}
	defer stream.Close()
	for {
		b, err := stream.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				sp.p.log.Warn("orderly: the re-read of the partition for its spilled keys failed; will retry",
					slog.Any("error", err))
			}
			sp.ask(spillMsg{kind: spillFailed, err: err})
			return err
		}
		r, ok := sp.ask(spillMsg{kind: spillBatch, recs: b})
		if !ok {
			return ctx.Err()
		}
		if r.over {
			return nil
		}
	}
}

// ask sends m to the dispatcher and waits for its answer; false when the
// partition's read context ended first.
func (sp *spiller) ask(m spillMsg) (spillReply, bool) {
	m.reply = make(chan spillReply, 1)
	select {
	case sp.inbox <- m:
	case <-sp.ctx.Done():
		return spillReply{}, false
	}
	select {
	case r := <-m.reply:
		return r, true
	case <-sp.ctx.Done():
		return spillReply{}, false
	}
}

// spillStats fills the partition's figures of KeyOverflow.
func (p *partition) spillStats(ps *PartitionStats) {
	ps.KeyOverflow = KeyOverflowPause
	sp := p.spill
	if sp == nil {
		return
	}
	ps.KeyOverflow = KeyOverflowSpill
	ps.SpilledKeys = int(sp.keys.Load())
	ps.Rereading = sp.rereading.Load()
	ps.RecordsReread = sp.read.Load()
}
