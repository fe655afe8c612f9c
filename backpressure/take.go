package backpressure

// Credit is an amount of one pool, and the reason a holder waits when the
// pool cannot give it.
type Credit struct {
	Pool   *Pool
	N      int64
	Reason Reason
}

// Take takes every credit of cs, all or nothing, without blocking: it
// returns -1 when it took them all, or the index of the first credit that
// did not fit, having taken none (and that pool is marked tripped). With
// one item's credits (oversize), each pool applies the fit rule's
// oversized clause, so that an item larger than a pool's high mark passes
// alone; a batch's credits (not oversize) must fit under every high mark.
// Credits with a nil Pool or N == 0 are skipped.
//
// Take and Give are the one way the engine takes and returns credits: a
// holder that cannot take a set waits for the pool that refused (Pool.Wait)
// and takes the set again, never holding part of it while it waits.
func Take(cs []Credit, oversize bool) (missing int) {
	for i, c := range cs {
		if c.Pool == nil || c.N == 0 {
			continue
		}
		ok := false
		if oversize {
			ok = c.Pool.TryAcquire(c.N)
		} else {
			ok = c.Pool.TryAcquireWithin(c.N)
		}
		if !ok {
			Give(cs[:i])
			return i
		}
	}
	return -1
}

// TakeRest is Take for a set of which the caller already holds cs[held]
// (a waiter for it was granted): it takes every other credit, all or
// nothing, and returns -1 or the index of the first that did not fit,
// having taken none of the others (cs[held] stays the caller's). A waiter
// that, once granted, gave its credits back and took the whole set again
// could lose them to the next waiter in line, and that one to the next:
// holding the grant while taking the rest is what lets the line move.
func TakeRest(cs []Credit, held int, oversize bool) (missing int) {
	for i, c := range cs {
		if i == held || c.Pool == nil || c.N == 0 {
			continue
		}
		ok := false
		if oversize {
			ok = c.Pool.TryAcquire(c.N)
		} else {
			ok = c.Pool.TryAcquireWithin(c.N)
		}
		if !ok {
			for j, d := range cs[:i] {
				if j != held && d.Pool != nil && d.N != 0 {
					d.Pool.Release(d.N)
				}
			}
			return i
		}
	}
	return -1
}

// Give releases every credit of cs (taken with Take). Credits with a nil
// Pool or N == 0 are skipped.
func Give(cs []Credit) {
	for _, c := range cs {
		if c.Pool != nil && c.N != 0 {
			c.Pool.Release(c.N)
		}
	}
}
