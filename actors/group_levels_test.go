package actors_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/orderly-go/orderly/actors"
	"github.com/stretchr/testify/assert"
	"pgregory.net/rapid"
)

// lmsg is a message of the leveled group tests.
type lmsg struct {
	id    int
	level int
	keys  []int
}

// levelWorld runs a leveled group whose messages block in Receive until
// the test releases them, and keeps the test's own account of them.
type levelWorld struct {
	mu      sync.Mutex
	sent    []lmsg
	started map[int]int // id -> level it ran at
	order   []int       // ids in start order
	done    map[int]bool
	release map[int]chan struct{}
	model   *levelModel // running per run level
	bad     []string
	g       *actors.Group[lmsg]
	o       *owner[lmsg]
	sched   *actors.Scheduler
}

// close stops the world's owner and scheduler, releasing what still runs.
func (w *levelWorld) close() {
	for w.releaseRunning(0) {
	}
	w.o.stop()
	w.sched.Close(context.Background())
}

func newLevelWorld(limit int, cfg []actors.LevelConfig) *levelWorld {
	w := &levelWorld{started: map[int]int{}, done: map[int]bool{}, release: map[int]chan struct{}{},
		model: newLevelModel(limit, cfg)}
	w.sched = actors.NewLevelScheduler(limit, time.Minute, nil, cfg)
	w.g = actors.NewGroup(w.sched, actors.GroupConfig[lmsg]{Receive: func(m *lmsg, wk *actors.Worker) (time.Duration, bool) {
		level := wk.Level()
		w.mu.Lock()
		if level > m.level {
			w.bad = append(w.bad, fmt.Sprintf("message %d of level %d ran at level %d", m.id, m.level, level))
		}
		w.started[m.id] = level
		w.order = append(w.order, m.id)
		w.model.running[level]++
		ch := w.release[m.id]
		w.mu.Unlock()
		<-ch
		w.mu.Lock()
		w.model.running[level]--
		w.done[m.id] = true
		w.mu.Unlock()
		return 0, false
	}})
	w.o = runOwner(w.g, nil)
	return w
}

func (w *levelWorld) send(ms ...lmsg) {
	batch := make([]actors.Message[lmsg], len(ms))
	w.mu.Lock()
	for i, m := range ms {
		w.sent = append(w.sent, m)
		w.release[m.id] = make(chan struct{})
		batch[i] = message(m, m.keys...)
		batch[i].Level = uint8(m.level)
	}
	w.mu.Unlock()
	w.o.send(batch...)
}

// releaseRunning releases the i-th running message (in start order).
func (w *levelWorld) releaseRunning(i int) bool {
	w.mu.Lock()
	var running []int
	for _, id := range w.order {
		if !w.done[id] && w.release[id] != nil {
			running = append(running, id)
		}
	}
	if len(running) == 0 {
		w.mu.Unlock()
		return false
	}
	id := running[i%len(running)]
	ch := w.release[id]
	w.release[id] = nil
	w.mu.Unlock()
	close(ch)
	return true
}

func shareKey(a, b []int) bool {
	for _, k := range a {
		if slices.Contains(b, k) {
			return true
		}
	}
	return false
}

// inheritance checks, at a quiet moment, that no message waits behind a
// ready key head that could run at the message's level: for each ready
// head (not started, no unfinished earlier message on any of its keys),
// the level it must be queued at is the highest of it and everything
// that waits for it, and that level must be unable to start (at its WIP
// limit, or no slot free for it). w.mu is held.
func (w *levelWorld) inheritance() string {
	unfinished := func(m lmsg) bool { return !w.done[m.id] }
	for i, h := range w.sent {
		if _, ok := w.started[h.id]; ok || !unfinished(h) {
			continue
		}
		blocked := false
		for _, e := range w.sent[:i] {
			if unfinished(e) && shareKey(e.keys, h.keys) {
				blocked = true
				break
			}
		}
		if blocked {
			continue
		}
		// h heads every key it has: the level it runs at is the highest
		// of the messages that wait for it, directly or through others.
		want := h.level
		waits := map[int]bool{h.id: true}
		for j := i + 1; j < len(w.sent); j++ {
			m := w.sent[j]
			for _, e := range w.sent[i:j] {
				if waits[e.id] && shareKey(e.keys, m.keys) {
					waits[m.id] = true
					want = min(want, m.level)
					break
				}
			}
		}
		md := w.model
		saved := md.queued[want]
		md.queued[want] = 1
		can := md.eligible(want)
		md.queued[want] = saved
		if can {
			return fmt.Sprintf("message %d (level %d) heads its keys, is wanted at level %d, which could start (running %v)",
				h.id, h.level, want, md.running)
		}
	}
	return ""
}

// Whatever the keys and levels: per-key order holds, no run level goes
// over its WIP limit, a message never runs below its own level, and no
// message waits behind a head that could run at its level.
func TestGroupLevelsProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		limit := rapid.IntRange(1, 5).Draw(rt, "limit")
		cfg := drawLevels(rt, limit)
		universe := rapid.IntRange(1, 5).Draw(rt, "keys")
		type op struct {
			msgs    []lmsg
			release int
		}
		id := 0
		ops := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) op {
			if rapid.Bool().Draw(t, "send") {
				n := rapid.IntRange(1, 4).Draw(t, "batch")
				var o op
				for range n {
					m := lmsg{id: id, level: rapid.IntRange(0, len(cfg)-1).Draw(t, "level")}
					id++
					for range rapid.IntRange(0, 3).Draw(t, "nkeys") {
						m.keys = append(m.keys, rapid.IntRange(0, universe-1).Draw(t, "key"))
					}
					o.msgs = append(o.msgs, m)
				}
				return o
			}
			return op{release: rapid.IntRange(0, 7).Draw(t, "release")}
		}), 1, 30).Draw(rt, "ops")

		var violation string
		synctest.Test(t, func(t *testing.T) {
			w := newLevelWorld(limit, cfg)
			defer w.close()
			quiet := func(when string) bool {
				synctest.Wait()
				w.mu.Lock()
				defer w.mu.Unlock()
				for l := range w.model.running {
					if w.model.running[l] > w.model.wip[l] {
						violation = fmt.Sprintf("%s: level %d runs %d, WIP %d", when, l, w.model.running[l], w.model.wip[l])
						return false
					}
				}
				if len(w.bad) > 0 {
					violation = when + ": " + w.bad[0]
					return false
				}
				if v := w.inheritance(); v != "" {
					violation = when + ": " + v
					return false
				}
				return true
			}
			for i, o := range ops {
				if o.msgs != nil {
					w.send(o.msgs...)
				} else {
					w.releaseRunning(o.release)
				}
				if !quiet(fmt.Sprintf("after op %d", i)) {
					return
				}
			}
			for w.releaseRunning(0) {
				if !quiet("draining") {
					return
				}
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			if len(w.done) != len(w.sent) {
				violation = fmt.Sprintf("%d of %d messages ran", len(w.done), len(w.sent))
				return
			}
			// Per key, start order is send order.
			pos := map[int]int{}
			for i, id := range w.order {
				pos[id] = i
			}
			for i, a := range w.sent {
				for _, b := range w.sent[i+1:] {
					if shareKey(a.keys, b.keys) && pos[b.id] < pos[a.id] {
						violation = fmt.Sprintf("message %d overtook %d, which shares a key", b.id, a.id)
						return
					}
				}
			}
			if w.g.Keys() != 0 {
				violation = fmt.Sprintf("%d keys still busy", w.g.Keys())
			}
		})
		if violation != "" {
			rt.Fatalf("levels %+v, limit %d: %s", cfg, limit, violation)
		}
	})
}

// A low head raised by a high message behind it runs at once at the high
// level, while its own level's only slot is taken.
func TestGroupLevelsInheritanceByKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newLevelWorld(3, []actors.LevelConfig{{}, {}, {WIP: 1}})
		defer w.close()
		w.send(lmsg{id: 0, level: 2, keys: []int{9}}) // takes level 2's slot
		synctest.Wait()
		w.send(lmsg{id: 1, level: 2, keys: []int{1}}) // waits for level 2's slot
		synctest.Wait()
		w.mu.Lock()
		assert.NotContains(t, w.started, 1)
		w.mu.Unlock()
		w.send(lmsg{id: 2, level: 0, keys: []int{1}}) // behind it on its key
		synctest.Wait()
		w.mu.Lock()
		assert.Contains(t, w.started, 1, "the head was raised to level 0")
		assert.Equal(t, 0, w.started[1])
		w.mu.Unlock()
		w.releaseRunning(1) // message 1
		synctest.Wait()
		w.mu.Lock()
		assert.Equal(t, 0, w.started[2])
		assert.Equal(t, []int{0, 1, 2}, w.order)
		w.mu.Unlock()
		for w.releaseRunning(0) {
			synctest.Wait()
		}
	})
}

// Through several keys: a message waiting on two keys passes a high level
// on to the head of the other key.
func TestGroupLevelsInheritanceThroughKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newLevelWorld(3, []actors.LevelConfig{{}, {}, {WIP: 1}})
		defer w.close()
		w.send(lmsg{id: 0, level: 2, keys: []int{9}}) // takes level 2's slot
		synctest.Wait()
		w.send(
			lmsg{id: 1, level: 2, keys: []int{2}},    // ready, waits for a level-2 slot
			lmsg{id: 2, level: 2, keys: []int{1, 2}}, // waits for 1 on key 2
			lmsg{id: 3, level: 2, keys: []int{2}},    // waits for 2 on key 2
		)
		synctest.Wait()
		w.send(lmsg{id: 4, level: 1, keys: []int{1}}) // waits for 2 on key 1
		synctest.Wait()
		w.mu.Lock()
		assert.Equal(t, 1, w.started[1], "message 1 runs for message 4, through message 2")
		w.mu.Unlock()
		w.releaseRunning(1)
		synctest.Wait()
		w.mu.Lock()
		assert.Equal(t, 1, w.started[2])
		w.mu.Unlock()
		w.releaseRunning(1)
		synctest.Wait()
		w.mu.Lock()
		assert.Equal(t, 1, w.started[4])
		assert.NotContains(t, w.started, 3, "message 3 waits for its level's slot: nothing high waits for it")
		w.mu.Unlock()
		for w.releaseRunning(0) {
			synctest.Wait()
		}
		w.mu.Lock()
		assert.Equal(t, 2, w.started[3])
		w.mu.Unlock()
	})
}

// WakeAll puts a group's waiting work at level 0, so a stopping group
// does not wait for its levels' slots.
func TestGroupLevelsWakeAllHurries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newLevelWorld(4, []actors.LevelConfig{{}, {WIP: 1}})
		defer w.close()
		w.send(lmsg{id: 0, level: 1, keys: []int{9}})
		w.send(lmsg{id: 1, level: 1, keys: []int{1}}, lmsg{id: 2, level: 1, keys: []int{1}}, lmsg{id: 3, level: 1})
		synctest.Wait()
		w.mu.Lock()
		assert.Len(t, w.started, 1)
		w.mu.Unlock()
		w.o.do(w.g.WakeAll)
		synctest.Wait()
		w.mu.Lock()
		assert.Equal(t, 0, w.started[1])
		assert.Equal(t, 0, w.started[3])
		w.mu.Unlock()
		w.releaseRunning(1) // message 1: message 2 follows at level 0
		synctest.Wait()
		w.mu.Lock()
		assert.Equal(t, 0, w.started[2])
		w.mu.Unlock()
		for w.releaseRunning(0) {
			synctest.Wait()
		}
	})
}
