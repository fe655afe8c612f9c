package mailbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrFull is returned by TryPush when the mailbox holds Cap items.
var ErrFull = errors.New("mailbox: full")

// ErrClosed is returned by TryPush and Push after Close (including to
// pushers blocked when Close was called) and by Pop once the mailbox is
// closed and empty.
var ErrClosed = errors.New("mailbox: closed")

// minRing is the ring size a mailbox starts with (or Cap, if smaller) and
// never shrinks below. A ring larger than minRing is released entirely
// when the mailbox empties.
const minRing = 16

// Mailbox is a bounded multi-producer / single-consumer FIFO queue. Make
// one with New; the zero value is not usable. See the package
// documentation for the full contract.
type Mailbox[T any] struct {
	capacity int           // immutable, ≥ 1
	signal   chan struct{} // immutable; capacity 1, see Signal

	// mu guards every field below. It is never held while blocking: the
	// only channel operations under it are a non-blocking send on signal
	// and closing a waiter's ready channel.
	mu sync.Mutex
	// buf is the ring; len(buf) is its current size (0 until the first
	// item, then at most capacity). Items are buf[head], buf[head+1], ...
	// modulo len(buf), n of them. Slots outside that range are zero.
	buf    []T
	head   int
	n      int
	closed bool
	// waitHead and waitTail are the blocked pushers, oldest first. The list
	// is non-empty only while n == capacity: whoever frees a slot moves the
	// oldest waiter's item in before releasing mu (see handoffLocked).
	waitHead, waitTail *pusher[T]
}

// pusher is a Push blocked on a full mailbox.
type pusher[T any] struct {
	v T
	// ready is closed, under mu, when the pusher leaves the wait list
	// because its item was enqueued (err nil) or the mailbox closed (err
	// ErrClosed). A pusher whose ctx ends removes itself instead, also
	// under mu, so exactly one of the two happens.
	ready      chan struct{}
	err        error
	queued     bool // still in the wait list
	prev, next *pusher[T]
}

// New returns an empty mailbox holding at most capacity items. The ring
// buffer is allocated lazily, so a large capacity costs nothing until items
// arrive. A capacity below 1 is a programmer error and panics.
func New[T any](capacity int) *Mailbox[T] {
	if capacity < 1 {
		panic(fmt.Sprintf("mailbox: New called with capacity %d; capacity must be at least 1", capacity))
	}
	return &Mailbox[T]{capacity: capacity, signal: make(chan struct{}, 1)}
}

// TryPush enqueues v if there is room. It never blocks. It returns nil when
// v was enqueued, ErrClosed after Close, and ErrFull when the mailbox holds
// Cap items (then v was not enqueued; blocked pushers keep their turn). Safe
// for concurrent use.
func (m *Mailbox[T]) TryPush(v T) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if m.n == m.capacity {
		return ErrFull
	}
	m.enqueueLocked(v)
	return nil
}

// Push enqueues v, blocking while the mailbox is full. It returns nil once v
// is enqueued, ctx.Err() if ctx is done first (v is then not enqueued), and
// ErrClosed if the mailbox is or becomes closed before v is enqueued.
// Blocked pushers are served in the order they blocked. If there is room,
// Push enqueues v without consulting ctx. Safe for concurrent use.
func (m *Mailbox[T]) Push(ctx context.Context, v T) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	if m.n < m.capacity {
		m.enqueueLocked(v)
		m.mu.Unlock()
		return nil
	}
	if err := ctx.Err(); err != nil {
		m.mu.Unlock()
		return err
	}
	w := &pusher[T]{v: v, ready: make(chan struct{})}
	m.appendWaiterLocked(w)
	m.mu.Unlock()

	select {
	case <-w.ready:
		return w.err
	case <-ctx.Done():
		m.mu.Lock()
		defer m.mu.Unlock()
		if w.queued {
			m.removeWaiterLocked(w)
			return ctx.Err()
		}
		// Granted or closed between ctx ending and us taking mu; err was
		// written under mu, and v's fate is already decided.
		return w.err
	}
}

// TryPop removes and returns the oldest item. It never blocks; ok is false
// when the mailbox is empty. Freeing a slot lets the oldest blocked pusher
// in. Consumer side: see the package documentation on concurrency.
func (m *Mailbox[T]) TryPop() (v T, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == 0 {
		return v, false
	}
	v = m.dequeueLocked()
	m.afterConsumeLocked()
	return v, true
}

// Pop removes and returns the oldest item, blocking while the mailbox is
// empty. It returns ErrClosed once the mailbox is closed and empty, and
// ctx.Err() if ctx is done while waiting. If an item is queued, Pop returns
// it without consulting ctx. Consumer side: see the package documentation
// on concurrency.
func (m *Mailbox[T]) Pop(ctx context.Context) (T, error) {
	var zero T
	waited := false
	for {
		m.mu.Lock()
		if m.n > 0 {
			v := m.dequeueLocked()
			m.afterConsumeLocked()
			if waited && m.n > 0 {
				// We took the wake-up for an empty→non-empty transition;
				// pass it on in case another Pop is (wrongly) waiting too.
				m.notifyLocked()
			}
			m.mu.Unlock()
			return v, nil
		}
		if m.closed {
			if waited {
				m.notifyLocked() // same: let any other waiting Pop see Close
			}
			m.mu.Unlock()
			return zero, ErrClosed
		}
		m.mu.Unlock()
		select {
		case <-m.signal:
			waited = true
		case <-ctx.Done():
			return zero, ctx.Err()
		}
	}
}

// Drain appends up to max queued items (all of them if max ≤ 0) to dst in
// FIFO order and returns the extended slice. It never blocks. The slots it
// frees go to blocked pushers, oldest first, whose items stay queued for
// the next call. Consumer side: see the package documentation on
// concurrency.
func (m *Mailbox[T]) Drain(dst []T, max int) []T {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := m.n
	if max > 0 && max < k {
		k = max
	}
	if k == 0 {
		return dst
	}
	// The k items are buf[head:end] followed, if they wrap, by buf[:k-first].
	end := m.head + k
	first := k
	if end > len(m.buf) {
		end, first = len(m.buf), len(m.buf)-m.head
	}
	dst = append(dst, m.buf[m.head:end]...)
	clear(m.buf[m.head:end])
	dst = append(dst, m.buf[:k-first]...)
	clear(m.buf[:k-first])
	m.head = (m.head + k) % len(m.buf)
	m.n -= k
	m.afterConsumeLocked()
	return dst
}

// Signal returns the consumer's wake-up channel. It has capacity 1 and
// receives a value, coalesced with any value not yet received, whenever an
// item is pushed into an empty mailbox and when the mailbox is closed. After
// each receive the consumer must take items until the mailbox is empty; a
// receive with nothing queued is possible and harmless. Pop waits on the
// same channel, so a consumer should either select on Signal or call Pop,
// not both at once. The channel is never closed.
func (m *Mailbox[T]) Signal() <-chan struct{} { return m.signal }

// Close closes the mailbox. Later pushes return ErrClosed and blocked
// pushers wake with ErrClosed; queued items stay for the consumer, and the
// consumer is signalled. Close is idempotent and safe for concurrent use.
func (m *Mailbox[T]) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.closed = true
	for w := m.waitHead; w != nil; {
		next := w.next
		w.err = ErrClosed
		w.v = *new(T)
		w.queued, w.prev, w.next = false, nil, nil
		close(w.ready)
		w = next
	}
	m.waitHead, m.waitTail = nil, nil
	m.notifyLocked()
}

// Closed reports whether Close has been called. Safe for concurrent use.
func (m *Mailbox[T]) Closed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// Len returns the number of queued items, not counting blocked pushers.
// Safe for concurrent use; the answer may be stale by the time it is used.
func (m *Mailbox[T]) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n
}

// Cap returns the capacity given to New. Safe for concurrent use.
func (m *Mailbox[T]) Cap() int { return m.capacity }
