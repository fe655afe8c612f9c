package actors

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A level that is never popped while its queued heads keep being raised
// keeps a bounded queue: stale entries are compacted away.
func TestLevelStaleEntriesAreBounded(t *testing.T) {
	s := NewLevelScheduler(1, time.Minute, nil, []LevelConfig{{}, {}})
	defer s.Close(context.Background())
	release := make(chan struct{})
	block := make(chan struct{})
	g := NewGroup(s, GroupConfig[int]{Receive: func(m *int, _ *Worker) (time.Duration, bool) {
		if *m < 0 {
			close(block)
			<-release
		}
		return 0, false
	}})
	// The test goroutine is the group's owner until the end.
	g.Send([]Message[int]{{Msg: -1, Key: 1 << 40, HasKey: true}}) // takes the only slot
	<-block
	const keys = 1000
	for k := range keys {
		// A level-1 head, then a level-0 message behind it: the head is
		// raised, and its level-1 entry goes stale.
		g.Send([]Message[int]{{Msg: k, Key: uint64(k), HasKey: true, Level: 1}}) // queued at level 1
		g.Send([]Message[int]{{Msg: k, Key: uint64(k), HasKey: true, Level: 0}}) // raises it
	}
	s.mu.Lock()
	live, held, high := s.levels.lv[1].queued, s.levels.lv[1].ready.Len(), s.levels.lv[0].queued
	s.mu.Unlock()
	close(release)
	require.Zero(t, live)
	require.Less(t, held, keys/10, "stale entries are compacted (at most staleSlack of them stay)")
	require.Equal(t, keys, high)
	deadline := time.After(10 * time.Second)
	for g.Keys() > 0 {
		select {
		case <-g.Ready():
			g.Collect(func(*int) {})
		case <-deadline:
			t.Fatal("the group did not drain")
		}
	}
}
