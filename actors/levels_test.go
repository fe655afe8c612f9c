package actors_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/orderly-go/orderly/actors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// levelModel is the test's own account of a leveled scheduler: what runs
// and what waits per level, as the Runnables themselves report it, and
// the rules of NewLevelScheduler written out again.
type levelModel struct {
	limit    int
	wip      []int
	reserved []int
	running  []int
	queued   []int
}

func newLevelModel(limit int, cfg []actors.LevelConfig) *levelModel {
	m := &levelModel{limit: limit, running: make([]int, len(cfg)), queued: make([]int, len(cfg))}
	for _, c := range cfg {
		wip := c.WIP
		if wip <= 0 || wip > limit {
			wip = limit
		}
		m.wip = append(m.wip, wip)
		m.reserved = append(m.reserved, c.Reserved)
	}
	return m
}

func (m *levelModel) total() int {
	n := 0
	for _, r := range m.running {
		n += r
	}
	return n
}

func (m *levelModel) unused() int {
	n := 0
	for l := range m.running {
		n += max(0, m.reserved[l]-m.running[l])
	}
	return n
}

// eligible: level l has work waiting, is under its WIP limit, and a slot
// is free that leaves every other level's unused reservation covered.
func (m *levelModel) eligible(l int) bool {
	free := m.limit - m.total()
	others := m.unused() - max(0, m.reserved[l]-m.running[l])
	return m.queued[l] > 0 && m.running[l] < m.wip[l] && free-1 >= others
}

// check states what must hold whenever the scheduler is quiet (every
// worker parked or running a blocked Runnable): no level over its WIP
// limit, no more running than the limit, the free slots covering the
// unused reservations, and no level left waiting that could start
// (work-conserving; so a level within its reservation is never kept
// waiting by others).
func (m *levelModel) check() string {
	if m.total() > m.limit {
		return fmt.Sprintf("%d running, limit %d", m.total(), m.limit)
	}
	for l := range m.running {
		if m.running[l] > m.wip[l] {
			return fmt.Sprintf("level %d runs %d, WIP %d", l, m.running[l], m.wip[l])
		}
		if m.queued[l] > 0 && m.running[l] < m.reserved[l] {
			return fmt.Sprintf("level %d waits with %d running of %d reserved", l, m.running[l], m.reserved[l])
		}
		if m.eligible(l) {
			return fmt.Sprintf("level %d could start but waits (running %v, queued %v)", l, m.running, m.queued)
		}
	}
	if free := m.limit - m.total(); free < m.unused() {
		return fmt.Sprintf("%d slots free, %d reserved unused", free, m.unused())
	}
	return ""
}

// probe is a Runnable that reports its start, then blocks until released.
type probe struct {
	id, level int
	h         *harness
	release   chan struct{}
}

func (p *probe) Run(*actors.Worker) {
	p.h.mu.Lock()
	p.h.model.queued[p.level]--
	p.h.model.running[p.level]++
	p.h.starts = append(p.h.starts, p)
	p.h.runningNow = append(p.h.runningNow, p)
	p.h.mu.Unlock()
	<-p.release
	p.h.mu.Lock()
	p.h.model.running[p.level]--
	p.h.done[p.id]++
	p.h.mu.Unlock()
}

type harness struct {
	mu         sync.Mutex
	model      *levelModel
	sched      *actors.Scheduler
	starts     []*probe
	runningNow []*probe // started and not released, in start order
	done       map[int]int
	next       int
}

func newHarness(limit int, cfg []actors.LevelConfig) *harness {
	return &harness{model: newLevelModel(limit, cfg), done: map[int]int{},
		sched: actors.NewLevelScheduler(limit, time.Minute, nil, cfg)}
}

func (h *harness) submit(level int) {
	h.mu.Lock()
	p := &probe{id: h.next, level: level, h: h, release: make(chan struct{})}
	h.next++
	h.model.queued[level]++
	h.mu.Unlock()
	h.sched.SubmitAt(p, level)
}

// releaseAt releases the i-th running probe (in start order).
func (h *harness) releaseAt(i int) bool {
	h.mu.Lock()
	if len(h.runningNow) == 0 {
		h.mu.Unlock()
		return false
	}
	i %= len(h.runningNow)
	p := h.runningNow[i]
	h.runningNow = append(h.runningNow[:i], h.runningNow[i+1:]...)
	h.mu.Unlock()
	close(p.release)
	return true
}

func drawLevels(t *rapid.T, limit int) []actors.LevelConfig {
	n := rapid.IntRange(1, 4).Draw(t, "levels")
	cfg := make([]actors.LevelConfig, n)
	reservedLeft := limit - 1 // leave a slot unreserved: some level may have none
	shareLeft := 1.0
	for i := range cfg {
		cfg[i].WIP = rapid.IntRange(0, limit+1).Draw(t, "wip")
		wip := cfg[i].WIP
		if wip <= 0 || wip > limit {
			wip = limit
		}
		if rapid.Bool().Draw(t, "reserve") && reservedLeft > 0 {
			cfg[i].Reserved = rapid.IntRange(0, min(wip, reservedLeft)).Draw(t, "reserved")
			reservedLeft -= cfg[i].Reserved
		}
		if rapid.Bool().Draw(t, "share") && shareLeft > 0.01 {
			cfg[i].Share = float64(rapid.IntRange(1, int(shareLeft*100)).Draw(t, "sharePct")) / 100
			shareLeft -= cfg[i].Share
		}
	}
	return cfg
}

// WIP limits, the global limit and reservations hold at every quiet
// moment, whatever is submitted and released in whatever order, and
// everything submitted runs exactly once.
func TestLevelSchedulerLimitsProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		limit := rapid.IntRange(1, 6).Draw(rt, "limit")
		cfg := drawLevels(rt, limit)
		type op struct {
			submit bool
			level  int
			n      int
		}
		ops := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) op {
			return op{
				submit: rapid.Bool().Draw(t, "submit"),
				level:  rapid.IntRange(0, len(cfg)-1).Draw(t, "level"),
				n:      rapid.IntRange(1, 5).Draw(t, "n"),
			}
		}), 1, 40).Draw(rt, "ops")

		var violation string
		synctest.Test(t, func(t *testing.T) {
			h := newHarness(limit, cfg)
			defer h.sched.Close(context.Background())
			check := func(when string) bool {
				synctest.Wait()
				h.mu.Lock()
				defer h.mu.Unlock()
				if v := h.model.check(); v != "" {
					violation = when + ": " + v
					return false
				}
				return true
			}
			for i, o := range ops {
				for range o.n {
					if o.submit {
						h.submit(o.level)
					} else {
						h.releaseAt(o.level)
					}
				}
				if !check(fmt.Sprintf("after op %d", i)) {
					return
				}
			}
			for h.releaseAt(0) {
				if !check("draining") {
					return
				}
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			for id := range h.next {
				if h.done[id] != 1 {
					violation = fmt.Sprintf("probe %d ran %d times", id, h.done[id])
					return
				}
			}
		})
		if violation != "" {
			rt.Fatalf("levels %+v, limit %d: %s", cfg, limit, violation)
		}
	})
}

// While a level with a share has work waiting and nothing limits it (no
// WIP limit, no reservations), no more than ShareBound starts in a row go
// to other levels, however the higher levels flood.
func TestLevelSchedulerShareBoundProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		limit := rapid.IntRange(1, 4).Draw(rt, "limit")
		n := rapid.IntRange(2, 5).Draw(rt, "levels")
		cfg := make([]actors.LevelConfig, n)
		left := 100
		withShare := 0
		for i := range cfg {
			if left > 0 && rapid.Bool().Draw(rt, "share") {
				pct := rapid.IntRange(1, left).Draw(rt, "sharePct")
				cfg[i].Share = float64(pct) / 100
				left -= pct
				withShare++
			}
		}
		backlog := make([]int, n)
		for i := range backlog {
			backlog[i] = rapid.IntRange(0, 120).Draw(rt, "backlog")
		}

		var violation string
		synctest.Test(t, func(t *testing.T) {
			h := newHarness(limit, cfg)
			defer h.sched.Close(context.Background())
			// Fill every slot first, so that the backlogs queue up whole
			// before anything is chosen among them.
			for range limit {
				h.submit(0)
			}
			synctest.Wait()
			h.mu.Lock()
			head := len(h.starts)
			h.mu.Unlock()
			for l, b := range backlog {
				for range b {
					h.submit(l)
				}
			}
			// One release, one start: the oldest running probe ends, and
			// its worker starts the next one.
			for h.releaseAt(0) {
				synctest.Wait()
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			starts := h.starts[head:]
			for l, c := range cfg {
				if c.Share == 0 || backlog[l] == 0 {
					continue
				}
				bound := actors.ShareBound(c.Share, withShare)
				gap := 0
				seen := 0
				for _, p := range starts {
					if seen == backlog[l] {
						break // the level's work is all started: no longer waiting
					}
					if p.level == l {
						gap = 0
						seen++
						continue
					}
					gap++
					if gap > bound {
						violation = fmt.Sprintf("level %d (share %v): %d starts of others in a row, bound %d", l, c.Share, gap, bound)
						return
					}
				}
			}
		})
		if violation != "" {
			rt.Fatalf("levels %+v, limit %d, backlog %v: %s", cfg, limit, backlog, violation)
		}
	})
}

// With every level ready, the highest starts first; within a level, FIFO.
func TestLevelSchedulerHighestFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(1, []actors.LevelConfig{{}, {}, {}})
		defer h.sched.Close(context.Background())
		h.submit(0) // holds the only slot
		synctest.Wait()
		for _, l := range []int{2, 1, 2, 0, 1, 0} {
			h.submit(l)
		}
		for h.releaseAt(0) {
			synctest.Wait()
		}
		var got []string
		for _, p := range h.starts[1:] {
			got = append(got, fmt.Sprintf("%d:%d", p.level, p.id))
		}
		assert.Equal(t, []string{"0:4", "0:6", "1:2", "1:5", "2:1", "2:3"}, got)
	})
}

// A level at its WIP limit lets lower levels have the free slots.
func TestLevelSchedulerWIPLimitLetsLowerLevelsRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(4, []actors.LevelConfig{{WIP: 1}, {WIP: 2}})
		defer h.sched.Close(context.Background())
		for range 3 {
			h.submit(0)
			h.submit(1)
		}
		synctest.Wait()
		h.mu.Lock()
		assert.Equal(t, []int{1, 2}, h.model.running, "level 0 is held at 1, level 1 at 2")
		assert.Equal(t, []int{2, 1}, h.model.queued)
		h.mu.Unlock()
		st := h.sched.LevelStats()
		require.Equal(t, 1, st[0].Running)
		require.Equal(t, 2, st[0].Ready)
		require.Equal(t, 2, st[1].Running)
		for h.releaseAt(0) {
			synctest.Wait()
		}
	})
}

// A reserved slot stays free for its level while another level floods.
func TestLevelSchedulerReservationHeldForItsLevel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(3, []actors.LevelConfig{{Reserved: 1}, {}})
		defer h.sched.Close(context.Background())
		for range 5 {
			h.submit(1)
		}
		synctest.Wait()
		h.mu.Lock()
		assert.Equal(t, []int{0, 2}, h.model.running, "level 1 leaves level 0's reserved slot free")
		h.mu.Unlock()
		h.submit(0)
		synctest.Wait()
		h.mu.Lock()
		assert.Equal(t, []int{1, 2}, h.model.running, "level 0 started at once")
		h.mu.Unlock()
		for h.releaseAt(0) {
			synctest.Wait()
		}
	})
}

func TestShareBound(t *testing.T) {
	require.Equal(t, 9, actors.ShareBound(0.1, 1))
	require.Equal(t, 10, actors.ShareBound(0.1, 2))
	require.Equal(t, 2, actors.ShareBound(1.0/3, 1))
	require.Equal(t, 0, actors.ShareBound(1, 1))
	require.Equal(t, -1, actors.ShareBound(0, 1))
}
