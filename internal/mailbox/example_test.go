package mailbox_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/orderly-go/orderly/internal/mailbox"
)

func Example() {
	ctx := context.Background()
	mb := mailbox.New[string](2)

	fmt.Println(mb.TryPush("a"), mb.TryPush("b"))
	fmt.Println(mb.TryPush("c")) // full: refused, not dropped silently

	mb.Close()
	fmt.Println(mb.Push(ctx, "d"))

	// The consumer still receives what was queued before Close.
	for {
		v, err := mb.Pop(ctx)
		if errors.Is(err, mailbox.ErrClosed) {
			fmt.Println("done:", err)
			return
		}
		fmt.Println("got", v)
	}
	// Output:
	// <nil> <nil>
	// mailbox: full
	// mailbox: closed
	// got a
	// got b
	// done: mailbox: closed
}
