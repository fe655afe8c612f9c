// Package parking is a table of parked keys: keys whose records are sent
// after a failed one instead of being handled, until a time or until
// released.
package parking

import (
	"sync"
	"sync/atomic"
	"time"
)

// Table is a set of parked keys, each with the time its parking ends (the
// zero time: until Release). The zero value is an empty table ready to
// use; all methods are safe for concurrent use and never block beyond the
// table's own lock, a leaf. Expired keys are forgotten when they are next
// looked at.
type Table struct {
	n  atomic.Int32 // len(m), read without the lock so that an empty table costs one load
	mu sync.Mutex   // guards m
	m  map[string]time.Time
}

// Park parks keys until until (the zero time: until Release).
func (t *Table) Park(keys []string, until time.Time) {
	if len(keys) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[string]time.Time)
	}
	for _, k := range keys {
		t.m[k] = until
	}
	t.n.Store(int32(len(t.m)))
}

// Any reports whether any of keys is parked at now() (called only when
// the table is not empty, so an empty table costs no clock read).
func (t *Table) Any(keys []string, now func() time.Time) bool {
	if t.n.Load() == 0 || len(keys) == 0 {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	parked := false
	for _, k := range keys {
		until, ok := t.m[k]
		switch {
		case !ok:
		case !until.IsZero() && now().After(until):
			delete(t.m, k)
		default:
			parked = true
		}
	}
	t.n.Store(int32(len(t.m)))
	return parked
}

// Release unparks key and reports whether it was parked.
func (t *Table) Release(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.m[key]
	delete(t.m, key)
	t.n.Store(int32(len(t.m)))
	return ok
}

// Len is the number of keys parked at now.
func (t *Table) Len(now time.Time) int {
	if t.n.Load() == 0 {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, until := range t.m {
		if !until.IsZero() && now.After(until) {
			delete(t.m, k)
		}
	}
	t.n.Store(int32(len(t.m)))
	return len(t.m)
}

// Keys returns the keys parked at now with the time each is parked until
// (the zero time: until released).
func (t *Table) Keys(now time.Time) map[string]time.Time {
	if t.n.Load() == 0 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]time.Time, len(t.m))
	for k, until := range t.m {
		if until.IsZero() || !now.After(until) {
			out[k] = until
		}
	}
	return out
}
