package mailbox

// This file holds the ring buffer and wait-list helpers. Every function
// here must be called with m.mu held.

// enqueueLocked appends v, growing the ring if needed, and signals the
// consumer on an empty→non-empty transition. The caller has checked
// n < capacity.
func (m *Mailbox[T]) enqueueLocked(v T) {
	if m.n == len(m.buf) {
		size := min(max(2*len(m.buf), minRing), m.capacity)
		m.resizeLocked(size)
	}
	i := m.head + m.n
	if i >= len(m.buf) {
		i -= len(m.buf)
	}
	m.buf[i] = v
	m.n++
	if m.n == 1 {
		m.notifyLocked()
	}
}

// dequeueLocked removes and returns the oldest item, zeroing its slot. The
// caller has checked n > 0 and must call afterConsumeLocked afterwards.
func (m *Mailbox[T]) dequeueLocked() T {
	var zero T
	v := m.buf[m.head]
	m.buf[m.head] = zero
	m.head++
	if m.head == len(m.buf) {
		m.head = 0
	}
	m.n--
	return v
}

// afterConsumeLocked runs after the consumer removed items: it lets blocked
// pushers into the freed slots, oldest first, then gives memory back if
// the ring is mostly empty.
func (m *Mailbox[T]) afterConsumeLocked() {
	for m.waitHead != nil && m.n < m.capacity {
		w := m.waitHead
		m.removeWaiterLocked(w)
		m.enqueueLocked(w.v)
		w.v = *new(T)
		w.err = nil
		close(w.ready)
	}
	if len(m.buf) <= minRing {
		return
	}
	switch {
	case m.n == 0:
		m.buf, m.head = nil, 0
	case m.n <= len(m.buf)/4:
		m.resizeLocked(max(len(m.buf)/2, minRing))
	}
}

// resizeLocked moves the items, in order, to a new ring of the given size
// (≥ n) starting at index 0.
func (m *Mailbox[T]) resizeLocked(size int) {
	buf := make([]T, size)
	if m.n > 0 {
		k := copy(buf, m.buf[m.head:min(m.head+m.n, len(m.buf))])
		copy(buf[k:], m.buf[:m.n-k])
	}
	m.buf, m.head = buf, 0
}

// notifyLocked leaves a value in the signal channel unless one is already
// there.
func (m *Mailbox[T]) notifyLocked() {
	select {
	case m.signal <- struct{}{}:
	default:
	}
}

func (m *Mailbox[T]) appendWaiterLocked(w *pusher[T]) {
	w.queued = true
	w.prev = m.waitTail
	if m.waitTail == nil {
		m.waitHead = w
	} else {
		m.waitTail.next = w
	}
	m.waitTail = w
}

func (m *Mailbox[T]) removeWaiterLocked(w *pusher[T]) {
	if w.prev == nil {
		m.waitHead = w.next
	} else {
		w.prev.next = w.next
	}
	if w.next == nil {
		m.waitTail = w.prev
	} else {
		w.next.prev = w.prev
	}
	w.queued, w.prev, w.next = false, nil, nil
}
