package actors_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/orderly-go/orderly/actors"
)

// One owner goroutine sends messages keyed by account; up to four run at
// once, but an account's messages run one at a time, in order. The owner
// collects what the workers finished, as orderly's partition dispatcher
// does.
func Example() {
	sched := actors.NewScheduler(4, 0, nil)
	var mu sync.Mutex
	balance := map[string]int{}
	var log []string
	g := actors.NewGroup(sched, actors.GroupConfig[[2]string]{
		Receive: func(m *[2]string, _ *actors.Worker) (time.Duration, bool) {
			mu.Lock()
			defer mu.Unlock()
			if m[1] == "deposit" {
				balance[m[0]] += 10
			} else {
				balance[m[0]] -= 10
			}
			if m[0] == "alice" {
				log = append(log, m[1])
			}
			return 0, false
		},
	})
	ops := [][2]string{{"alice", "deposit"}, {"bob", "deposit"}, {"alice", "withdraw"}, {"alice", "deposit"}}
	batch := make([]actors.Message[[2]string], len(ops))
	for i, op := range ops {
		batch[i] = actors.Message[[2]string]{Msg: op, Key: uint64(len(op[0])), HasKey: true} // a real caller hashes the key
	}
	g.Send(batch)
	for collected := 0; collected < len(ops); {
		<-g.Ready()
		_, n := g.Collect(func(*[2]string) {})
		collected += n
	}
	g.Close()
	sched.Close(context.Background())
	fmt.Println(strings.Join(log, " then "))
	fmt.Println(balance["alice"], balance["bob"])
	// Output:
	// deposit then withdraw then deposit
	// 10 10
}
