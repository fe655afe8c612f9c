package mailbox

import (
	"fmt"

	"github.com/orderly-go/orderly/internal/ring"
)

// Limits bounds a mailbox: the messages it may hold and their summed size
// in bytes (as the caller measures it). A zero field is unlimited.
type Limits struct {
	Messages int
	Bytes    int64
}

// Config is a mailbox's water marks. High bounds the mailbox; Low is where
// an over mailbox accepts pushes again. Low must not exceed High in a
// limited field; a zero Low field means 0 (accept again only when empty
// of that measure). Many mailboxes may share one Config: a Mailbox keeps a
// pointer to it, which must not change while in use.
type Config struct {
	High Limits
	Low  Limits
}

// Check reports a Config whose Low exceeds its High, or which has a
// negative field.
func (c *Config) Check() error {
	switch {
	case c.High.Messages < 0 || c.High.Bytes < 0 || c.Low.Messages < 0 || c.Low.Bytes < 0:
		return fmt.Errorf("mailbox: negative limit in %+v", *c)
	case c.High.Messages > 0 && c.Low.Messages > c.High.Messages:
		return fmt.Errorf("mailbox: low mark %d messages above the high mark %d", c.Low.Messages, c.High.Messages)
	case c.High.Bytes > 0 && c.Low.Bytes > c.High.Bytes:
		return fmt.Errorf("mailbox: low mark %d bytes above the high mark %d", c.Low.Bytes, c.High.Bytes)
	}
	return nil
}

// Event is a water-mark crossing, reported by the Push or Pop that made it.
type Event uint8

const (
	// None: no crossing.
	None Event = iota
	// High: the mailbox became over (filled to a limit, or refused a
	// push); it refuses pushes until Low.
	High
	// Low: the mailbox fell to its low mark while over; it accepts pushes
	// again.
	Low
)

func (e Event) String() string {
	switch e {
	case High:
		return "high"
	case Low:
		return "low"
	}
	return "none"
}

type entry[T any] struct {
	v    T
	size int64
}

// Mailbox is a bounded FIFO of messages; see the package doc. The zero
// value is unusable: make one with New, or Init a Mailbox embedded in a
// larger struct.
type Mailbox[T any] struct {
	cfg   *Config
	q     ring.Ring[entry[T]]
	bytes int64
	over  bool
}

// New returns an empty mailbox with cfg's marks. It panics if cfg is
// invalid (see Config.Check): limits are the caller's configuration,
// validated where they come from.
func New[T any](cfg Config) *Mailbox[T] {
	m := &Mailbox[T]{}
	m.Init(&cfg)
	return m
}

// Init makes m an empty mailbox with the marks of *cfg, which it keeps a
// pointer to (so that many mailboxes share one Config). It panics if cfg is
// invalid. Init on a mailbox in use empties it.
func (m *Mailbox[T]) Init(cfg *Config) {
	if err := cfg.Check(); err != nil {
		panic(err.Error())
	}
	m.q.Clear()
	m.cfg, m.bytes, m.over = cfg, 0, false
}

// Len is the number of messages queued.
func (m *Mailbox[T]) Len() int { return m.q.Len() }

// Bytes is the summed size of the messages queued.
func (m *Mailbox[T]) Bytes() int64 { return m.bytes }

// Over reports whether the mailbox is over its high mark: it reached a
// limit or refused a push, and has not fallen to its low mark since.
func (m *Mailbox[T]) Over() bool { return m.over }

// Accepts reports whether Push would accept a message of the given size
// now, without changing anything.
func (m *Mailbox[T]) Accepts(size int64) bool {
	if m.over {
		return false
	}
	h := m.cfg.High
	n := m.q.Len()
	return n == 0 || ((h.Messages == 0 || n+1 <= h.Messages) && (h.Bytes == 0 || m.bytes+size <= h.Bytes))
}

// Push queues v, of the given size, at the tail, unless the mailbox is
// over or v would take it past a limit: then it refuses v (ok is false,
// nothing is queued) and the mailbox is over. An empty mailbox accepts a
// message of any size. ev is High when this push, accepted or refused,
// made the mailbox over. A negative size panics.
func (m *Mailbox[T]) Push(v T, size int64) (ok bool, ev Event) {
	if size < 0 {
		panic(fmt.Sprintf("mailbox: Push of negative size %d", size))
	}
	h := m.cfg.High
	n := m.q.Len()
	if !m.Accepts(size) {
		if m.over {
			return false, None
		}
		m.over = true
		return false, High
	}
	m.q.Push(entry[T]{v, size})
	m.bytes += size
	if (h.Messages > 0 && n+1 >= h.Messages) || (h.Bytes > 0 && m.bytes >= h.Bytes) {
		m.over = true
		return true, High
	}
	return true, None
}

// Peek returns the head without removing it.
func (m *Mailbox[T]) Peek() (v T, ok bool) {
	e, ok := m.q.Peek()
	return e.v, ok
}

// At returns the i-th message from the head (0 ≤ i < Len), or panics.
func (m *Mailbox[T]) At(i int) T { return m.q.At(i).v }

// Pop removes and returns the head. ev is Low when this pop brought an
// over mailbox to its low mark in both limits (it accepts pushes again).
func (m *Mailbox[T]) Pop() (v T, ok bool, ev Event) {
	e, ok := m.q.Pop()
	if !ok {
		return v, false, None
	}
	m.bytes -= e.size
	if m.over && m.under() {
		m.over = false
		ev = Low
	}
	return e.v, true, ev
}

// under reports whether the mailbox is at or below its low mark in every
// limited measure.
func (m *Mailbox[T]) under() bool {
	h, l := m.cfg.High, m.cfg.Low
	return (h.Messages == 0 || m.q.Len() <= l.Messages) && (h.Bytes == 0 || m.bytes <= l.Bytes)
}

// Each calls f for every message, head first, with its size.
func (m *Mailbox[T]) Each(f func(v T, size int64)) {
	m.q.Each(func(e entry[T]) { f(e.v, e.size) })
}
