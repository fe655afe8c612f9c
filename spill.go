package orderly

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/orderly-go/orderly/internal/actors"
	"github.com/orderly-go/orderly/internal/spill"
)

// spiller is one partition's spilling (KeyOverflowSpill): the bookkeeping
// of its spilled keys (package internal/spill), kept under the group's
// lock, and the re-reader that hands their dropped records back.
//
// The dispatcher (send) drops a record of a spilled or over key under the
// group's lock, in the same hold in which it registers the record's offset,
// so a record is either queued or dropped, never both; its credits come
// back at once, except its place in the uncommitted window (it is not done:
// the watermark waits for it). The re-reader reads the partition again and
// hands each dropped record to its keys under the same lock (internal/spill
// decides which and when); a key leaves the spilled set only in the hold in
// which the re-reader reached the dispatcher's position, so the
// dispatcher's next record of it is queued after every record the
// re-reader handed back. See internal/spill for the invariants.
//
// Goroutines: run is the re-reader, started by the partition's run and
// stopped (readCtx) and waited for (done) by its stop. It blocks only on
// its stream, on credits and on wake, each with readCtx.
type spiller struct {
	p    *partition
	src  Rereader
	keys groupKeys

	// Guarded by the group's lock.
	state   *spill.State
	spilled []*Record // records that spilled keys since the last report (dispatcher only)

	wake chan struct{} // one slot: a key event, or a key spilled that can take records
	done chan struct{} // closed when run returns

	rereading atomic.Bool   // a pass is running, for Stats
	read      atomic.Uint64 // records read again from the log by this claim
	vanished  atomic.Int64  // dropped records the log lost, not yet logged
}

// groupKeys is the key actors' state as internal/spill reads it, under the
// group's lock.
type groupKeys struct{ g *actors.Group[task] }

func (k groupKeys) Over(key uint64) bool { return k.g.IsOverLocked(key) }
func (k groupKeys) Idle(key uint64) bool { return k.g.IdleLocked(key) }

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
	return &spiller{p: p, src: src, keys: groupKeys{p.group}, state: spill.New(),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func (sp *spiller) signal() {
	select {
	case sp.wake <- struct{}{}:
	default:
	}
}

// keyEvent is the group's KeyEvent, under its lock: a spilled key drained
// or went idle.
func (sp *spiller) keyEvent(key uint64) {
	if sp.state.KeyEvent(key) {
		sp.signal()
	}
}

// dropLocked is send's check for a record about to be queued while a key
// is spilled or over: it drops the record (reporting true) when internal/
// spill says so, giving back its record and byte credits. The group's lock
// is held and the record's offset registered.
func (sp *spiller) dropLocked(m *actors.Message[task]) bool {
	var one [1]uint64
	keys := messageKeys(m, one[:0])
	drop, spilled, wake := sp.state.Dispatch(m.Msg.offset, keys, sp.keys)
	if !drop {
		return false
	}
	p := sp.p
	p.releaseCredits(m.Msg.size, m.Msg.level)
	if spilled > 0 {
		p.group.SetKeyEventsLocked(true)
		if len(p.e.cfg.hooks.spill) > 0 {
			sp.spilled = append(sp.spilled, m.Msg.rec)
		}
	}
	if wake {
		sp.signal()
	}
	return true
}

// messageKeys returns m's keys: m.Keys, or its one key appended to buf.
func messageKeys(m *actors.Message[task], buf []uint64) []uint64 {
	switch {
	case len(m.Keys) > 0:
		return m.Keys
	case m.HasKey:
		return append(buf, m.Key)
	}
	return buf
}

// reportSpills calls the spill hooks for the records that spilled keys in
// the last send; no lock is held.
func (sp *spiller) reportSpills() {
	e := sp.p.e
	for _, r := range sp.spilled {
		for _, h := range e.cfg.hooks.spill {
			e.guard("HookSpill", func() { h.OnKeySpilled(r) })
		}
	}
	clear(sp.spilled)
	sp.spilled = sp.spilled[:0]
}

// rereadBackoff bounds the wait after a re-read failed (a stream that
// could not be opened or broke): from the first value, doubling up to the
// second.
var rereadBackoff = [2]time.Duration{100 * time.Millisecond, 5 * time.Second}

// run is the re-reader: it starts a pass whenever internal/spill says a
// spilled key can take records, and otherwise waits for a wake-up.
func (sp *spiller) run() {
	defer close(sp.done)
	p := sp.p
	ctx := p.readCtx
	backoff := rereadBackoff[0]
	for ctx.Err() == nil {
		p.group.Lock()
		from, ok := sp.state.Start(sp.keys)
		p.group.Unlock()
		if !ok {
			select {
			case <-sp.wake:
			case <-ctx.Done():
			}
			continue
		}
		if err := sp.pass(ctx, from); err == nil || ctx.Err() != nil {
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

// pass reads the partition from from until it caught up with the
// dispatcher or has nothing left to do; it returns the read's error when
// the stream failed.
func (sp *spiller) pass(ctx context.Context, from int64) (err error) {
	p := sp.p
	info := RereadInfo{Topic: p.topic, Partition: p.id, From: from, Next: from}
	began := time.Now()
	sp.rereading.Store(true)
	defer func() {
		sp.rereading.Store(false)
		info.Took, info.Err = time.Since(began), err
		if ctx.Err() != nil {
			info.Err = ctx.Err()
		}
		sp.reportReread(info)
	}()
	stream, err := sp.src.ReadFrom(ctx, from)
	if err != nil {
		sp.abortPass()
		if ctx.Err() == nil {
			p.log.Warn("orderly: cannot re-read the partition for its spilled keys; will retry",
				slog.Int64("from", from), slog.Any("error", err))
		}
		return err
	}
	defer stream.Close()
	for {
		b, err := stream.Next(ctx)
		if err != nil {
			sp.abortPass()
			if ctx.Err() == nil {
				p.log.Warn("orderly: the re-read of the partition for its spilled keys failed; will retry",
					slog.Int64("at", info.Next), slog.Any("error", err))
			}
			return err
		}
		info.Read += int64(len(b))
		sp.read.Add(uint64(len(b)))
		over, err := sp.batch(ctx, b, &info)
		if n := sp.vanished.Swap(0); n > 0 {
			p.log.Warn("orderly: records of spilled keys were gone from the log before they were read again; they are skipped",
				slog.Int64("records", n), slog.Int64("before", info.Next))
		}
		if over || err != nil {
			return err
		}
	}
}

// abortPass ends a pass that could not go on: its keys stay spilled.
func (sp *spiller) abortPass() {
	sp.p.group.Lock()
	if sp.state.Reading() {
		sp.state.Abort()
	}
	sp.p.group.Unlock()
}

// batch handles one batch of the stream; over reports that the pass ended
// (caught up, or nothing left to do). err is ctx's error when it was done
// while the pass waited.
func (sp *spiller) batch(ctx context.Context, b []*Record, info *RereadInfo) (over bool, err error) {
	p := sp.p
	p.group.Lock()
	p.counts.reread += uint64(len(b))
	for _, r := range b {
		info.Next = r.Offset + 1
		switch sp.state.Look(r.Offset, sp.vanishedLocked) {
		case spill.CaughtUp:
			info.Next = r.Offset
			info.Back = sp.finishLocked()
			p.group.Unlock()
			return true, nil
		case spill.Dropped:
			p.group.Unlock()
			if over, err := sp.handBack(ctx, r, info); over || err != nil {
				return over, err
			}
			p.group.Lock()
			continue
		}
		if sp.state.CaughtUp() {
			info.Back = sp.finishLocked()
			p.group.Unlock()
			return true, nil
		}
	}
	p.group.Unlock()
	return false, nil
}

// handBack decides, and does, what the pass does with dropped record r:
// hand it to its keys, leave it for a later pass, or wait for a full key
// first. It is called and returns with no lock held.
func (sp *spiller) handBack(ctx context.Context, r *Record, info *RereadInfo) (over bool, err error) {
	p, e := sp.p, sp.p.e
	var now time.Time
	if e.timed {
		now = time.Now()
	}
	m := actors.Message[task]{Msg: task{rec: r, offset: r.Offset, size: r.Size(), dispatched: now, reread: true}}
	m.Weight = m.Msg.size
	e.route(r, &m) // user code: no lock held
	if e.prio != nil {
		m.Level = uint8(p.rereadLevel(r))
		m.Msg.level, m.Msg.runLevel = m.Level, m.Level
	}
	var one [1]uint64
	keys := messageKeys(&m, one[:0])
	if err := p.takeReread(ctx, m.Msg.size, m.Msg.level); err != nil {
		sp.abortPass()
		return true, err
	}
	p.group.Lock()
	d := sp.state.Decide(r.Offset, keys, sp.keys)
	for d == spill.Wait {
		p.group.Unlock()
		select {
		case <-sp.wake:
		case <-ctx.Done():
			p.releaseCredits(m.Msg.size, m.Msg.level)
			sp.abortPass()
			return true, ctx.Err()
		}
		p.group.Lock()
		d = sp.state.Decide(r.Offset, keys, sp.keys)
	}
	if d == spill.Deliver {
		if len(e.cfg.hooks.dispatched) > 0 {
			// Its hooks come before it is queued, with no lock held.
			// Nobody else queues for its keys meanwhile: they are
			// spilled, and only this goroutine brings them back.
			p.group.Unlock()
			ri := RecordInfo{Group: e.group, Dispatched: now, Reread: true}
			for _, h := range e.cfg.hooks.dispatched {
				e.guard("HookRecordDispatched", func() { h.OnRecordDispatched(r, ri) })
			}
			p.group.Lock()
		}
		p.live++
		p.group.SendLocked(&m)
		info.Delivered++
	} else {
		p.releaseCredits(m.Msg.size, m.Msg.level)
	}
	switch {
	case sp.state.CaughtUp():
		info.Back = sp.finishLocked()
		over = true
	case sp.state.Members() == 0:
		sp.state.Stop()
		over = true
	}
	p.group.Unlock()
	return over, nil
}

// finishLocked ends a pass that caught up and returns how many keys are
// back in memory.
func (sp *spiller) finishLocked() int {
	back := sp.state.Finish()
	if sp.state.Spilled() == 0 {
		sp.p.group.SetKeyEventsLocked(false)
	}
	return back
}

// vanishedLocked marks done a dropped record the log no longer has
// (retention or compaction removed it before it was read again): it can
// never be handled, and the watermark must not wait for it.
func (sp *spiller) vanishedLocked(offset int64) {
	p := sp.p
	if passed := p.offsets.Complete(offset); passed > 0 {
		p.window.Release(passed)
	}
	p.cp.MarkDirty()
	sp.vanished.Add(1)
}

// releaseCredits gives back one record's partition and engine credits,
// and its priority level's.
func (p *partition) releaseCredits(size int64, level uint8) {
	p.records.Release(1)
	p.bytes.Release(size)
	p.e.records.Release(1)
	p.e.bytes.Release(size)
	if p.e.prio != nil {
		p.e.prio.release(level, size)
	}
}

// takeReread takes a handed-back record's credits (not its place in the
// uncommitted window: it kept it), its priority level's included, waiting
// for each without pausing the claim: the dispatcher pauses it when it
// finds the credits gone.
func (p *partition) takeReread(ctx context.Context, size int64, level uint8) error {
	type credits interface {
		Acquire(context.Context, int64) error
		Release(int64)
	}
	steps := []struct {
		c credits
		n int64
	}{{p.records, 1}, {p.bytes, size}, {p.e.records, 1}, {p.e.bytes, size}}
	if pr := p.e.prio; pr != nil {
		steps = append(steps, struct {
			c credits
			n int64
		}{pr.records[level], 1}, struct {
			c credits
			n int64
		}{pr.bytes[level], size})
	}
	for i, s := range steps {
		if err := s.c.Acquire(ctx, s.n); err != nil {
			for _, done := range steps[:i] {
				done.c.Release(done.n)
			}
			return err
		}
	}
	return nil
}

func (sp *spiller) reportReread(info RereadInfo) {
	e := sp.p.e
	for _, h := range e.cfg.hooks.spill {
		e.guard("HookSpill", func() { h.OnReread(info) })
	}
}

// stop waits for the re-reader, whose context the partition cancelled.
func (sp *spiller) stop() { <-sp.done }

// spillStats fills the partition's figures of KeyOverflow.
func (p *partition) spillStats(ps *PartitionStats) {
	ps.KeyOverflow = KeyOverflowPause
	sp := p.spill
	if sp == nil {
		return
	}
	ps.KeyOverflow = KeyOverflowSpill
	p.group.Lock()
	ps.SpilledKeys = sp.state.Spilled()
	p.group.Unlock()
	ps.Rereading = sp.rereading.Load()
	ps.RecordsReread = sp.read.Load()
}
