package mailbox_test

import (
	"fmt"

	"github.com/orderly-go/orderly/mailbox"
)

// A mailbox of at most 3 messages that accepts pushes again once it is
// down to 1: the owner pauses its producer on High and resumes it on Low.
func Example() {
	m := mailbox.New[string](mailbox.Config{
		High: mailbox.Limits{Messages: 3},
		Low:  mailbox.Limits{Messages: 1},
	})
	for _, s := range []string{"a", "b", "c", "d"} {
		ok, ev := m.Push(s, int64(len(s)))
		fmt.Println("push", s, ok, ev)
	}
	for m.Len() > 0 {
		v, _, ev := m.Pop()
		fmt.Println("pop", v, ev, "over:", m.Over())
	}
	// Output:
	// push a true none
	// push b true none
	// push c true high
	// push d false none
	// pop a none over: true
	// pop b low over: false
	// pop c none over: false
}

// Limits in bytes: a message that would pass the bound is refused, except
// into an empty mailbox, so that one large message is never refused
// forever.
func Example_bytes() {
	m := mailbox.New[string](mailbox.Config{High: mailbox.Limits{Bytes: 10}, Low: mailbox.Limits{Bytes: 5}})
	fmt.Println(m.Push("four", 4))
	fmt.Println(m.Push("eight!!!", 8))
	m.Pop()
	fmt.Println(m.Push("a message of 32 bytes, too large", 32))
	// Output:
	// true none
	// false high
	// true high
}
