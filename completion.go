package orderly

// completion is what one Collect gathered: the counters and the credits
// to give back, summed so that each pool and counter is touched once per
// batch of completions, not once per record.
type completion struct {
	counts    counts
	n, size   int64    // records collected and their bytes
	levelN    [8]int64 // per priority level
	levelSize [8]int64 // per priority level
	any       bool
	_         struct{}
}

// collect applies what the workers finished since the last collect (and
// the retry delays that ended): every record whose journey ended is marked
// done with the committer (abandoned ones are not: the next owner handles
// them), its credits come back, and the counters move; then the key
// actors move on. Dispatcher only.
func (p *partition) collect() {
	var c completion
	events, _ := p.group.Collect(func(t **task) { p.done(*t, &c) })
	// The group has let go of the collected tasks (Inspect may read them
	// until it does): they may be reused now.
	for i, t := range p.d.collected {
		p.freeTask(t)
		p.d.collected[i] = nil
	}
	p.d.collected = p.d.collected[:0]
	if c.any {
		p.giveBack(c.n, c.size)
		if pr := p.e.prio; pr != nil {
			for l := range pr.n {
				if c.levelN[l] > 0 {
					pr.records[l].Release(c.levelN[l])
					pr.bytes[l].Release(c.levelSize[l])
				}
			}
		}
		p.counts.add(c.counts)
	}
	if p.spill != nil {
		p.spill.keyEvents(events)
	} else {
		p.keysOver()
	}
}

// done is the group's collect callback for one record whose journey
// ended (it runs on the dispatcher, before the record leaves its keys).
func (p *partition) done(t *task, c *completion) {
	p.d.live--
	c.any = true
	if t.outcome != OutcomeAbandoned && !p.e.cfg.atMostOnce {
		p.cp.Complete(t.offset)
	}
	switch t.outcome {
	case OutcomeHandled:
		c.counts.handled++
	case OutcomeRecovered:
		c.counts.recovered++
	case OutcomeDeadLettered:
		c.counts.deadLettered++
	case OutcomeFailed:
		c.counts.failed++
	}
	c.n++
	c.size += t.size
	if p.e.prio != nil {
		c.levelN[t.level]++
		c.levelSize[t.level] += t.size
	}
	p.d.collected = append(p.d.collected, t)
}
