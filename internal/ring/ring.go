// Package ring is a FIFO queue on a circular buffer, the storage of the
// engine's mailboxes and run queues. It is not a building block of its own:
// it has no limits and no events (see package mailbox for those).
package ring

// Ring is a FIFO queue that grows by doubling and shrinks back when it has
// drained well below a large size, so a queue that once held very many
// items does not keep their memory, while one that swings between empty
// and a few hundred items (a batch's worth) keeps its storage instead of
// reallocating it on every swing. The zero value is an empty ring ready to
// use. Not safe for concurrent use: each ring has one owner.
type Ring[T any] struct {
	buf  []T
	head int
	n    int
	// Keep, when set, never shrinks the storage: for a long-lived, busy
	// queue whose size swings widely.
	Keep bool
}

const (
	minCap = 4
	// keepCap is the capacity under which a ring never shrinks.
	keepCap = 1024
)

// Len is the number of items queued.
func (q *Ring[T]) Len() int { return q.n }

// Push appends v at the tail.
func (q *Ring[T]) Push(v T) {
	if q.n == len(q.buf) {
		q.resize(max(minCap, 2*len(q.buf)))
	}
	i := q.head + q.n
	if i >= len(q.buf) {
		i -= len(q.buf)
	}
	q.buf[i] = v
	q.n++
}

// Peek returns the head without removing it.
func (q *Ring[T]) Peek() (T, bool) {
	if q.n == 0 {
		var zero T
		return zero, false
	}
	return q.buf[q.head], true
}

// At returns the i-th item from the head; 0 ≤ i < Len, or it panics.
func (q *Ring[T]) At(i int) T {
	if i < 0 || i >= q.n {
		panic("ring: index out of range")
	}
	j := q.head + i
	if j >= len(q.buf) {
		j -= len(q.buf)
	}
	return q.buf[j]
}

// Pop removes and returns the head.
func (q *Ring[T]) Pop() (T, bool) {
	var zero T
	if q.n == 0 {
		return zero, false
	}
	v := q.buf[q.head]
	q.buf[q.head] = zero
	q.head++
	if q.head == len(q.buf) {
		q.head = 0
	}
	q.n--
	if !q.Keep && len(q.buf) > keepCap && q.n < len(q.buf)/8 {
		q.resize(max(minCap, len(q.buf)/4))
	}
	return v, true
}

// PopBack removes and returns the tail.
func (q *Ring[T]) PopBack() (T, bool) {
	var zero T
	if q.n == 0 {
		return zero, false
	}
	i := q.head + q.n - 1
	if i >= len(q.buf) {
		i -= len(q.buf)
	}
	v := q.buf[i]
	q.buf[i] = zero
	q.n--
	return v, true
}

// Each calls f for every item, head first.
func (q *Ring[T]) Each(f func(T)) {
	for i := 0; i < q.n; i++ {
		f(q.At(i))
	}
}

// Clear removes every item, keeping the storage.
func (q *Ring[T]) Clear() {
	for q.n > 0 {
		q.Pop()
	}
}

func (q *Ring[T]) resize(size int) {
	buf := make([]T, size)
	for i := 0; i < q.n; i++ {
		buf[i] = q.At(i)
	}
	q.buf, q.head = buf, 0
}
