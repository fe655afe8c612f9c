package actors

// ring is a FIFO queue that grows by doubling and shrinks back when it has
// drained well below a large size, so a queue that once held very many
// items does not keep their memory, while one that swings between empty
// and a few hundred items (a batch's worth) keeps its storage instead of
// reallocating it on every swing. Not safe for concurrent use.
type ring[T any] struct {
	buf  []T
	head int
	n    int
	keep bool // never shrink: the storage of a long-lived, busy queue
}

const (
	ringMinCap = 4
	// ringKeep is the size under which a ring never shrinks.
	ringKeep = 1024
)

func (q *ring[T]) len() int { return q.n }

func (q *ring[T]) push(v T) {
	if q.n == len(q.buf) {
		q.resize(max(ringMinCap, 2*len(q.buf)))
	}
	q.buf[(q.head+q.n)%len(q.buf)] = v
	q.n++
}

func (q *ring[T]) peek() (T, bool) {
	if q.n == 0 {
		var zero T
		return zero, false
	}
	return q.buf[q.head], true
}

// at returns the i-th item from the head (0 ≤ i < len).
func (q *ring[T]) at(i int) T { return q.buf[(q.head+i)%len(q.buf)] }

func (q *ring[T]) pop() (T, bool) {
	var zero T
	if q.n == 0 {
		return zero, false
	}
	v := q.buf[q.head]
	q.buf[q.head] = zero
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	if !q.keep && len(q.buf) > ringKeep && q.n < len(q.buf)/8 {
		q.resize(max(ringMinCap, len(q.buf)/4))
	}
	return v, true
}

func (q *ring[T]) resize(size int) {
	buf := make([]T, size)
	for i := 0; i < q.n; i++ {
		buf[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf, q.head = buf, 0
}
