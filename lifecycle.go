package orderly

import (
	"context"
	"log/slog"
	"time"
)

// run is the dispatcher: the claim's event loop, from grant to final
// commit. Each round it waits for one event (a batch from the claim,
// finished turns or a retry delay from the group, credit it waited for, a
// message from the re-reader, the revoke), handles it, and tells the
// committer what was dispatched and completed in one message. The claim
// is read only while nothing waits for credit.
func (p *partition) run() {
	defer p.cancelHandlers()
	if p.e.breaker != nil {
		p.e.breaker.join(p)
	}
	p.valve.Flush()
	if p.spill != nil {
		p.spill.start()
	}
	recs := p.claim.Records()
	revoked := p.claim.Revoked()
	for {
		d := &p.d
		var (
			in   <-chan []*Record
			wait <-chan struct{}
		)
		if len(d.held) == 0 && d.wait == nil {
			in = recs
		}
		if d.wait != nil {
			wait = d.wait.Ready()
		}
		if in != nil && len(d.pending) > 0 {
			select {
			case b, ok := <-in:
				if !ok {
					goto stop
				}
				p.dispatch(b)
				p.cp.Send()
				continue
			default:
				p.flushPending() // nothing more is ready: let at-most-once work start
			}
		}
		select {
		case b, ok := <-in:
			if !ok {
				goto stop
			}
			p.dispatch(b)
		case <-wait:
			p.resumeWaiting()
			p.dispatch(d.held)
		case <-p.group.Ready():
			p.collect()
		case <-p.group.Due():
			p.collect()
		case m := <-p.spillInbox():
			p.spill.handle(m)
		case <-p.spillWait():
			p.spill.resumeWaiting()
		case <-revoked:
			goto stop
		case <-p.readCtx.Done():
			goto stop
		}
		p.cp.Send()
	}
stop:
	p.stop()
}

// cancelGrace is how long a partition that cancelled its handlers' contexts
// at the revoke (or drain) timeout waits for them to return.
const cancelGrace = time.Second

// stop ends the claim: no new records start (records not yet started are
// abandoned, and those waiting for a retry give up), running handlers get
// the revoke (or drain) timeout, then their contexts are cancelled and
// they get cancelGrace more, then the final position is committed (within
// the commit timeout). Meanwhile the dispatcher keeps collecting. So a
// revoke takes at most the revoke timeout plus cancelGrace plus the commit
// timeout, and Run returns within the drain timeout plus cancelGrace plus
// the commit timeout, whatever handlers and the broker do.
func (p *partition) stop() {
	d := &p.d
	p.flushPending()
	p.stopping.Store(true)
	p.cancelRead()
	p.cancelWait()
	d.held = nil
	if p.spill != nil {
		p.spill.stop() // the re-reader hands nothing back from now on
	}
	p.group.WakeAll() // records waiting to retry give up now
	timeout := p.e.cfg.revokeTimeout
	if p.e.runCtx.Err() != nil {
		timeout = p.e.cfg.drainTimeout
	}
	if !p.drain(timeout) {
		p.log.Warn("orderly: handlers still running at the revoke timeout; cancelling them",
			slog.Int64("running", p.e.running(p)), slog.Duration("timeout", timeout))
		p.cancelHandlers()
		// A handler that honours its context returns now: wait a little
		// for it, so that Run does not return under it. One that ignores
		// its context is left running; its record is not committed and
		// its result is ignored.
		if !p.drain(cancelGrace) {
			p.log.Warn("orderly: handlers ignore their cancelled context; leaving them running",
				slog.Int64("running", p.e.running(p)), slog.Duration("grace", cancelGrace))
		}
	}
	p.cp.Send()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.e.runCtx), p.e.cfg.commitTimeout)
	defer cancel()
	_ = p.cp.Close(ctx) // a failure is logged by the committer
	p.group.Close()
	p.valve.Close() // no pause or resume reaches the claim after this
}

// drain collects until every record the group holds is collected, or
// for at most d; it reports whether all were.
func (p *partition) drain(d time.Duration) bool {
	if p.d.live == 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	for p.d.live > 0 {
		select {
		case <-p.group.Ready():
			p.collect()
		case <-p.group.Due():
			p.collect()
		case <-timer.C:
			return false
		}
		p.cp.Send()
	}
	return true
}
