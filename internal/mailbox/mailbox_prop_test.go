package mailbox

import (
	"context"
	"errors"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// TestModel checks single-goroutine sequences of operations against a
// slice model: contents, order, errors, Len and Closed must always agree,
// and the ring must never hold a value outside the queued range.
func TestModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		capacity := rapid.IntRange(1, 70).Draw(t, "capacity")
		m := New[int](capacity)
		var model []int
		closed := false
		next := 1 // pushed values are distinct and non-zero, so zeroed slots are recognisable
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()

		pushErr := func() error {
			switch {
			case closed:
				return ErrClosed
			case len(model) == capacity:
				return ErrFull
			}
			return nil
		}

		t.Repeat(map[string]func(*rapid.T){
			"TryPush": func(t *rapid.T) {
				want := pushErr()
				if err := m.TryPush(next); !errors.Is(err, want) || (want == nil && err != nil) {
					t.Fatalf("TryPush = %v, want %v", err, want)
				}
				if want == nil {
					model = append(model, next)
				}
				next++
			},
			"PushCancelledCtx": func(t *rapid.T) {
				// Never blocks: room means success, full means ctx.Err().
				want := pushErr()
				if errors.Is(want, ErrFull) {
					want = context.Canceled
				}
				if err := m.Push(cancelled, next); !errors.Is(err, want) || (want == nil && err != nil) {
					t.Fatalf("Push = %v, want %v", err, want)
				}
				if want == nil {
					model = append(model, next)
				}
				next++
			},
			"TryPop": func(t *rapid.T) {
				v, ok := m.TryPop()
				if len(model) == 0 {
					if ok {
						t.Fatalf("TryPop = %d, true on empty model", v)
					}
					return
				}
				if !ok || v != model[0] {
					t.Fatalf("TryPop = %d, %v; want %d, true", v, ok, model[0])
				}
				model = model[1:]
			},
			"PopCancelledCtx": func(t *rapid.T) {
				v, err := m.Pop(cancelled)
				switch {
				case len(model) > 0:
					if err != nil || v != model[0] {
						t.Fatalf("Pop = %d, %v; want %d, nil", v, err, model[0])
					}
					model = model[1:]
				case closed:
					if !errors.Is(err, ErrClosed) {
						t.Fatalf("Pop = %d, %v; want ErrClosed", v, err)
					}
				default:
					if !errors.Is(err, context.Canceled) {
						t.Fatalf("Pop = %d, %v; want context.Canceled", v, err)
					}
				}
			},
			"Drain": func(t *rapid.T) {
				max := rapid.IntRange(-1, capacity+1).Draw(t, "max")
				prefix := []int{-7}
				got := m.Drain(slices.Clone(prefix), max)
				k := len(model)
				if max > 0 && max < k {
					k = max
				}
				want := append(prefix, model[:k]...)
				if !slices.Equal(got, want) {
					t.Fatalf("Drain(%v, %d) = %v, want %v", prefix, max, got, want)
				}
				model = model[k:]
			},
			"Close": func(t *rapid.T) {
				m.Close()
				closed = true
			},
			"": func(t *rapid.T) {
				if m.Len() != len(model) || m.Closed() != closed || m.Cap() != capacity {
					t.Fatalf("Len, Closed, Cap = %d, %v, %d; want %d, %v, %d",
						m.Len(), m.Closed(), m.Cap(), len(model), closed, capacity)
				}
				checkRing(t, m, model)
			},
		})
	})
}

func checkRing(t *rapid.T, m *Mailbox[int], model []int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	size := len(m.buf)
	if size > m.capacity || size < m.n {
		t.Fatalf("ring size %d with %d items, capacity %d", size, m.n, m.capacity)
	}
	if m.n == 0 && size > minRing {
		t.Fatalf("empty mailbox keeps a ring of %d slots", size)
	}
	for i := range size {
		off := (i - m.head + size) % size // position in FIFO order
		if off < m.n {
			if m.buf[i] != model[off] {
				t.Fatalf("slot %d = %d, want %d", i, m.buf[i], model[off])
			}
		} else if m.buf[i] != 0 {
			t.Fatalf("slot %d outside the queue holds %d, want zeroed", i, m.buf[i])
		}
	}
}
