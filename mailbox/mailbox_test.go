package mailbox_test

import (
	"testing"

	"github.com/orderly-go/orderly/mailbox"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// model is what a mailbox must do, written plainly.
type model struct {
	cfg   mailbox.Config
	q     []int64 // sizes, FIFO
	bytes int64
	over  bool
}

func (m *model) push(size int64) (bool, mailbox.Event) {
	h := m.cfg.High
	fits := len(m.q) == 0 ||
		((h.Messages == 0 || len(m.q)+1 <= h.Messages) && (h.Bytes == 0 || m.bytes+size <= h.Bytes))
	if m.over {
		return false, mailbox.None
	}
	if !fits {
		m.over = true
		return false, mailbox.High
	}
	m.q = append(m.q, size)
	m.bytes += size
	if (h.Messages > 0 && len(m.q) >= h.Messages) || (h.Bytes > 0 && m.bytes >= h.Bytes) {
		m.over = true
		return true, mailbox.High
	}
	return true, mailbox.None
}

func (m *model) pop() (int64, bool, mailbox.Event) {
	if len(m.q) == 0 {
		return 0, false, mailbox.None
	}
	s := m.q[0]
	m.q = m.q[1:]
	m.bytes -= s
	h, l := m.cfg.High, m.cfg.Low
	if m.over && (h.Messages == 0 || len(m.q) <= l.Messages) && (h.Bytes == 0 || m.bytes <= l.Bytes) {
		m.over = false
		return s, true, mailbox.Low
	}
	return s, true, mailbox.None
}

// TestMailboxAgainstModel drives a mailbox and the model with random
// limits, sizes, pushes and pops, and checks that they agree on every
// answer and event, that order is FIFO, and that the bound holds: a
// mailbox with more than one message never passes a limit.
func TestMailboxAgainstModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var cfg mailbox.Config
		cfg.High.Messages = rapid.IntRange(0, 20).Draw(t, "highMessages")
		cfg.High.Bytes = rapid.Int64Range(0, 200).Draw(t, "highBytes")
		if cfg.High.Messages > 0 {
			cfg.Low.Messages = rapid.IntRange(0, cfg.High.Messages).Draw(t, "lowMessages")
		}
		if cfg.High.Bytes > 0 {
			cfg.Low.Bytes = rapid.Int64Range(0, cfg.High.Bytes).Draw(t, "lowBytes")
		}
		mb := mailbox.New[int](cfg)
		md := &model{cfg: cfg}
		next, want := 0, 0
		for range rapid.IntRange(0, 400).Draw(t, "steps") {
			if rapid.Bool().Draw(t, "push") {
				size := rapid.Int64Range(0, 60).Draw(t, "size")
				ok, ev := mb.Push(next, size)
				mok, mev := md.push(size)
				if ok != mok || ev != mev {
					t.Fatalf("push of %d bytes: (%v, %v), model (%v, %v)", size, ok, ev, mok, mev)
				}
				if ok {
					next++
				}
			} else {
				v, ok, ev := mb.Pop()
				_, mok, mev := md.pop()
				if ok != mok || ev != mev {
					t.Fatalf("pop: (%v, %v), model (%v, %v)", ok, ev, mok, mev)
				}
				if ok {
					if v != want {
						t.Fatalf("pop %d, want %d (FIFO)", v, want)
					}
					want++
				}
			}
			if mb.Len() != len(md.q) || mb.Bytes() != md.bytes || mb.Over() != md.over {
				t.Fatalf("state (%d, %d, %v), model (%d, %d, %v)", mb.Len(), mb.Bytes(), mb.Over(), len(md.q), md.bytes, md.over)
			}
			if mb.Len() > 1 {
				if cfg.High.Messages > 0 && mb.Len() > cfg.High.Messages {
					t.Fatalf("%d messages over the limit %d", mb.Len(), cfg.High.Messages)
				}
				if cfg.High.Bytes > 0 && mb.Bytes() > cfg.High.Bytes {
					t.Fatalf("%d bytes over the limit %d", mb.Bytes(), cfg.High.Bytes)
				}
			}
		}
	})
}

func TestConfigCheck(t *testing.T) {
	require.Error(t, (&mailbox.Config{High: mailbox.Limits{Messages: 2}, Low: mailbox.Limits{Messages: 3}}).Check())
	require.Error(t, (&mailbox.Config{High: mailbox.Limits{Bytes: -1}}).Check())
	require.NoError(t, (&mailbox.Config{High: mailbox.Limits{Messages: 2, Bytes: 10}, Low: mailbox.Limits{Messages: 1, Bytes: 10}}).Check())
	require.Panics(t, func() {
		mailbox.New[int](mailbox.Config{High: mailbox.Limits{Messages: 1}, Low: mailbox.Limits{Messages: 5}})
	})
	require.Panics(t, func() { mailbox.New[int](mailbox.Config{}).Push(1, -1) })
}
