package actors_test

import (
	"sync"
	"testing"
	"time"

	"github.com/orderly-go/orderly/internal/actors"
	"github.com/stretchr/testify/require"
)

type walked struct {
	place     actors.Place
	blockedBy uint64
	ahead     string
	behind    int
}

// walk returns what WalkLocked reports, by message name and by key.
func walk(g *actors.Group[string]) (map[string]walked, map[uint64]actors.KeyView[string]) {
	msgs := map[string]walked{}
	keys := map[uint64]actors.KeyView[string]{}
	g.Lock()
	g.WalkLocked(func(k actors.KeyView[string]) { keys[k.Key] = k }, func(m actors.MessageView[string]) {
		w := walked{place: m.Place, blockedBy: m.BlockedBy, behind: m.Behind}
		if m.Ahead != nil {
			w.ahead = *m.Ahead
		}
		if _, dup := msgs[*m.Msg]; dup {
			panic("message visited twice: " + *m.Msg)
		}
		msgs[*m.Msg] = w
	})
	g.Unlock()
	return msgs, keys
}

// WalkLocked tells where every message is: running, ready for a worker,
// delayed for a retry, or queued behind another message of a key (and
// which); messages with no key are found too, and a message of several
// keys is reported once.
func TestWalkReportsWhereEachMessageIs(t *testing.T) {
	sched := actors.NewScheduler(2, 0, nil)
	defer sched.Close()
	release := make(chan struct{})
	started := make(chan string, 10)
	var mu sync.Mutex
	tries := map[string]int{}
	finished := make(chan string, 10)
	g := actors.NewGroup(sched, actors.GroupConfig[string]{Receive: func(m *string) (time.Duration, bool) {
		mu.Lock()
		tries[*m]++
		n := tries[*m]
		mu.Unlock()
		if *m == "D" && n == 1 {
			return time.Hour, true
		}
		started <- *m
		if *m == "A" || *m == "C" {
			<-release
		}
		finished <- *m
		return 0, false
	}})

	send(g, "D", 1, 2)
	require.Eventually(t, func() bool { return g.Delayed() == 1 }, 10*time.Second, time.Millisecond)
	send(g, "A", 1, 1)
	send(g, "C", 1) // no key
	got := []string{<-started, <-started}
	require.ElementsMatch(t, []string{"A", "C"}, got)
	send(g, "B", 1, 1)
	send(g, "E", 1)       // no key: waits for a worker, both are busy
	send(g, "F", 1, 1, 3) // heads key 3, waits on key 1

	msgs, keys := walk(g)
	require.Equal(t, map[string]walked{
		"A": {place: actors.Running, behind: 2},
		"B": {place: actors.Queued, blockedBy: 1, ahead: "A"},
		"C": {place: actors.Running},
		"D": {place: actors.Delayed},
		"E": {place: actors.Ready},
		"F": {place: actors.Queued, blockedBy: 1, ahead: "A"},
	}, msgs)
	require.Len(t, keys, 3)
	require.Equal(t, 3, keys[1].Depth)
	require.Equal(t, actors.Load{Messages: 3, Weight: 3}, keys[1].Load)
	require.Equal(t, "A", *keys[1].Head.Msg)
	require.Equal(t, actors.Running, keys[1].Head.Place)
	require.Equal(t, actors.Delayed, keys[2].Head.Place)
	require.Equal(t, "F", *keys[3].Head.Msg)
	require.Equal(t, actors.Queued, keys[3].Head.Place)
	require.Equal(t, uint64(1), keys[3].Head.BlockedBy)

	close(release)
	g.WakeAll()
	for range 6 {
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Fatal("messages did not finish")
		}
	}
	require.Eventually(t, func() bool { m, k := walk(g); return len(m) == 0 && len(k) == 0 }, 10*time.Second, time.Millisecond)
}

func TestPlaceString(t *testing.T) {
	require.Equal(t, "running", actors.Running.String())
	require.Equal(t, "queued", actors.Queued.String())
	require.Equal(t, "place(?)", actors.Place(0).String())
}
