package orderly_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// infoKey carries the RecordInfo of the attempt into the handler's
// context (see infoHook).
type infoKey struct{}

// infoHook hands each attempt's RecordInfo to the handler.
type infoHook struct{}

func (infoHook) OnAttemptStarted(ctx context.Context, _ *orderly.Record, info orderly.RecordInfo) context.Context {
	return context.WithValue(ctx, infoKey{}, info)
}

func infoOf(ctx context.Context) orderly.RecordInfo {
	info, _ := ctx.Value(infoKey{}).(orderly.RecordInfo)
	return info
}

// levelFromValue reads the level from values "level|...".
func levelFromValue(r *orderly.Record) (int, bool) {
	head, _, _ := strings.Cut(string(r.Value), "|")
	var l int
	_, err := fmt.Sscan(head, &l)
	return l, err == nil
}

// startLog records handler starts: the record's value and its info.
type startLog struct {
	mu     sync.Mutex
	values []string
	infos  []orderly.RecordInfo
}

func (s *startLog) add(r *orderly.Record, info orderly.RecordInfo) {
	s.mu.Lock()
	s.values = append(s.values, string(r.Value))
	s.infos = append(s.infos, info)
	s.mu.Unlock()
}

func (s *startLog) snapshot() ([]string, []orderly.RecordInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.values...), append([]orderly.RecordInfo(nil), s.infos...)
}

func levelsOf(t *testing.T, eng *orderly.Engine) []orderly.LevelStats {
	t.Helper()
	return eng.Stats().Levels
}

func TestPrioritiesInvalidOptions(t *testing.T) {
	src := memory.NewLog().Member("g", []string{"t"})
	h := orderly.HandlerFunc(func(context.Context, *orderly.Record) error { return nil })
	fn := orderly.PriorityFunc(func(*orderly.Record) (int, bool) { return 0, true })
	two := []orderly.PriorityLevel{{WIP: 4}, {WIP: 2}}
	cases := []struct {
		name string
		opts []orderly.Option
		want string
	}{
		{"no levels", []orderly.Option{orderly.WithPriorities(fn)}, "0 levels"},
		{"too many levels", []orderly.Option{orderly.WithPriorities(fn, make([]orderly.PriorityLevel, 9)...)}, "9 levels"},
		{"no source", []orderly.Option{orderly.WithPriorities(orderly.PriorityOf{}, two...)}, "no level source"},
		{"nil function", []orderly.Option{orderly.WithPriorities(orderly.PriorityFunc(nil), two...)}, "no level source"},
		{"missing WIP", []orderly.Option{orderly.WithPriorities(fn, orderly.PriorityLevel{WIP: 4}, orderly.PriorityLevel{})}, "level 1 has no WIP limit"},
		{"negative WIP", []orderly.Option{orderly.WithPriorities(fn, orderly.PriorityLevel{WIP: -5})}, "WIP -5"},
		{"topic to a missing level", []orderly.Option{orderly.WithPriorities(
			orderly.PriorityByTopic(map[string]int{"paid": 0, "cron": 2}), two...)}, `topic "cron" maps to level 2, which does not exist`},
		{"header value to a missing level", []orderly.Option{orderly.WithPriorities(
			orderly.PriorityByHeader("plan", map[string]int{"x": -1}), two...)}, `header value "x" maps to level -1`},
		{"header without a name", []orderly.Option{orderly.WithPriorities(
			orderly.PriorityByHeader("", map[string]int{"x": 0}), two...)}, "needs a header name"},
		{"shares over 100%", []orderly.Option{orderly.WithPriorities(fn,
			orderly.PriorityLevel{WIP: 4, MinShare: 0.6}, orderly.PriorityLevel{WIP: 2, MinShare: 0.5})}, "MinShares add up to 1.1"},
		{"share out of range", []orderly.Option{orderly.WithPriorities(fn, orderly.PriorityLevel{WIP: 4, MinShare: -0.1})}, "MinShare -0.1"},
		{"reservations over 100%", []orderly.Option{orderly.WithMaxConcurrency(4), orderly.WithPriorities(fn,
			orderly.PriorityLevel{WIP: 4, Reserved: 0.75}, orderly.PriorityLevel{WIP: 4, Reserved: 0.5})}, "reserve 5 slots, more than the concurrency 4"},
		{"everything reserved", []orderly.Option{orderly.WithMaxConcurrency(4), orderly.WithPriorities(fn,
			orderly.PriorityLevel{WIP: 4, Reserved: 1}, orderly.PriorityLevel{WIP: 2})}, "reserve all 4 slots"},
		{"reservation over the WIP limit", []orderly.Option{orderly.WithMaxConcurrency(8), orderly.WithPriorities(fn,
			orderly.PriorityLevel{WIP: 2, Reserved: 0.5}, orderly.PriorityLevel{WIP: 2})}, "reserves 4 slots"},
		{"buffers over 100%", []orderly.Option{orderly.WithPriorities(fn,
			orderly.PriorityLevel{WIP: 4, Buffer: 0.7}, orderly.PriorityLevel{WIP: 2, Buffer: 0.7})}, "Buffer shares add up to 1.4"},
		{"no buffer left", []orderly.Option{orderly.WithPriorities(fn,
			orderly.PriorityLevel{WIP: 4, Buffer: 1}, orderly.PriorityLevel{WIP: 2})}, "level 1 has no Buffer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := orderly.New(src, h, c.opts...)
			require.ErrorIs(t, err, orderly.ErrInvalidOption)
			require.ErrorContains(t, err, c.want)
		})
	}
	// What the checks allow.
	_, err := orderly.New(src, h, orderly.WithMaxConcurrency(8), orderly.WithPriorities(
		orderly.PriorityByTopic(map[string]int{"paid": 0, "free": 1, "cron": 2}),
		orderly.PriorityLevel{WIP: orderly.UnlimitedWIP, Reserved: 0.25},
		orderly.PriorityLevel{WIP: 4, MinShare: 0.1},
		orderly.PriorityLevel{WIP: 100, MinShare: 0.1, Buffer: 0.1}))
	require.NoError(t, err)
}

// Records waiting for a slot start highest level first; a lower level
// without a minimum share waits while higher ones have work.
func TestPrioritiesHighestLevelFirst(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("hi", 1))
	require.NoError(t, log.CreateTopic("lo", 1))
	release := make(chan struct{})
	var first atomic.Bool
	var starts startLog
	eng, err := orderly.New(log.Member("g", []string{"hi", "lo"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		starts.add(r, infoOf(ctx))
		if first.CompareAndSwap(false, true) {
			<-release
		}
		return nil
	}), orderly.WithMaxConcurrency(1), orderly.WithLogger(quiet), orderly.WithHooks(infoHook{}),
		orderly.WithPriorities(orderly.PriorityByTopic(map[string]int{"hi": 0, "lo": 1}),
			orderly.PriorityLevel{WIP: orderly.UnlimitedWIP}, orderly.PriorityLevel{WIP: orderly.UnlimitedWIP}))
	require.NoError(t, err)
	stop := sync.OnceValue(running(t, eng))
	defer stop()

	produce(t, log, "lo", 0, "block")
	require.Eventually(t, func() bool { return first.Load() }, 10*time.Second, time.Millisecond)
	for i := range 20 {
		produce(t, log, "lo", 0, fmt.Sprint("lo", i))
	}
	for i := range 10 {
		produce(t, log, "hi", 0, fmt.Sprint("hi", i))
	}
	require.Eventually(t, func() bool {
		l := levelsOf(t, eng)
		return l[0].Ready == 10 && l[1].Ready == 20
	}, 10*time.Second, time.Millisecond, "every record queued behind the blocked one")
	close(release)
	require.Eventually(t, func() bool { v, _ := starts.snapshot(); return len(v) == 31 }, 10*time.Second, time.Millisecond)
	_, infos := starts.snapshot()
	var got []int
	for _, info := range infos[1:] {
		got = append(got, info.Priority)
		require.Equal(t, info.Priority, info.RunPriority)
	}
	require.Equal(t, []int{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, got)
	require.NoError(t, stop())
	st := eng.Stats()
	require.Len(t, st.Levels, 2)
	require.Equal(t, uint64(10), st.Levels[0].Started)
	require.Equal(t, uint64(21), st.Levels[1].Started)
}

// A low-priority key head with a high-priority record behind it runs at
// the high level, although its own level's only slot is taken.
func TestPrioritiesInheritance(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	gates := map[string]chan struct{}{"block": make(chan struct{}), "head": make(chan struct{})}
	var starts startLog
	eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		starts.add(r, infoOf(ctx))
		_, name, _ := strings.Cut(string(r.Value), "|")
		if g := gates[name]; g != nil {
			<-g
		}
		return nil
	}), orderly.WithMaxConcurrency(4), orderly.WithLogger(quiet), orderly.WithHooks(infoHook{}),
		orderly.WithPriorities(orderly.PriorityFunc(levelFromValue),
			orderly.PriorityLevel{WIP: orderly.UnlimitedWIP}, orderly.PriorityLevel{WIP: 4}, orderly.PriorityLevel{WIP: 1}))
	require.NoError(t, err)
	stop := sync.OnceValue(running(t, eng))
	defer stop()

	_, err = log.ProduceTo("t", 0, []byte("other"), []byte("2|block")) // takes level 2's only slot
	require.NoError(t, err)
	require.Eventually(t, func() bool { v, _ := starts.snapshot(); return len(v) == 1 }, 10*time.Second, time.Millisecond)
	_, err = log.ProduceTo("t", 0, []byte("k"), []byte("2|head")) // waits for level 2's slot
	require.NoError(t, err)
	require.Eventually(t, func() bool { return levelsOf(t, eng)[2].Ready == 1 }, 10*time.Second, time.Millisecond)
	_, err = log.ProduceTo("t", 0, []byte("k"), []byte("0|urgent")) // behind it on key k
	require.NoError(t, err)

	require.Eventually(t, func() bool { v, _ := starts.snapshot(); return len(v) == 2 }, 10*time.Second, time.Millisecond,
		"the head runs while level 2's slot is still taken")
	values, infos := starts.snapshot()
	require.Equal(t, "2|head", values[1])
	require.Equal(t, 2, infos[1].Priority)
	require.Equal(t, 0, infos[1].RunPriority, "inherited from the record behind it")
	st := levelsOf(t, eng)
	require.Equal(t, 1, st[0].InFlight, "the inherited call counts at level 0")
	require.Equal(t, 1, st[2].InFlight)

	close(gates["head"])
	require.Eventually(t, func() bool { v, _ := starts.snapshot(); return len(v) == 3 }, 10*time.Second, time.Millisecond)
	values, infos = starts.snapshot()
	require.Equal(t, "0|urgent", values[2], "key order kept")
	require.Equal(t, 0, infos[2].RunPriority)
	close(gates["block"])
	require.NoError(t, stop())
}

// A level's reserved slots stay free while a lower level floods, so its
// record starts at once.
func TestPrioritiesReservedLevelIsNotBlocked(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("paid", 1))
	require.NoError(t, log.CreateTopic("cron", 1))
	release := make(chan struct{})
	var paid atomic.Int64
	eng, err := orderly.New(log.Member("g", []string{"paid", "cron"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		if r.Topic == "paid" {
			paid.Add(1)
			return nil
		}
		<-release
		return nil
	}), orderly.WithMaxConcurrency(4), orderly.WithLogger(quiet),
		orderly.WithPriorities(orderly.PriorityByTopic(map[string]int{"paid": 0, "cron": 1}),
			orderly.PriorityLevel{WIP: orderly.UnlimitedWIP, Reserved: 0.25}, orderly.PriorityLevel{WIP: orderly.UnlimitedWIP}))
	require.NoError(t, err)
	stop := sync.OnceValue(running(t, eng))
	defer stop()
	for i := range 20 {
		produce(t, log, "cron", 0, fmt.Sprint("c", i))
	}
	require.Eventually(t, func() bool {
		l := levelsOf(t, eng)
		return l[1].InFlight == 3 && l[1].Ready == 17
	}, 10*time.Second, time.Millisecond, "cron takes 3 slots and leaves the reserved one")
	produce(t, log, "paid", 0, "p")
	require.Eventually(t, func() bool { return paid.Load() == 1 }, 10*time.Second, time.Millisecond,
		"paid runs while every cron call is still blocked")
	require.Equal(t, 3, levelsOf(t, eng)[1].InFlight)
	close(release)
	require.NoError(t, stop())
}

// Under a flood of level 0, level 1 with a minimum share gets a start
// within the stated bound each time, end to end through the engine.
func TestPrioritiesMinimumShareUnderFlood(t *testing.T) {
	const hi, lo = 200, 40
	share := 0.2
	levels := []orderly.PriorityLevel{{WIP: orderly.UnlimitedWIP}, {WIP: orderly.UnlimitedWIP, MinShare: share}}
	bound := levels[1].StarvationBound(1)
	require.Equal(t, 4, bound)

	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("hi", 1))
	require.NoError(t, log.CreateTopic("lo", 1))
	release := make(chan struct{})
	var first atomic.Bool
	var starts startLog
	eng, err := orderly.New(log.Member("g", []string{"hi", "lo"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		if first.CompareAndSwap(false, true) {
			<-release
			return nil
		}
		starts.add(r, infoOf(ctx))
		return nil
	}), orderly.WithMaxConcurrency(1), orderly.WithLogger(quiet), orderly.WithHooks(infoHook{}),
		orderly.WithPriorities(orderly.PriorityByTopic(map[string]int{"hi": 0, "lo": 1}), levels...))
	require.NoError(t, err)
	stop := sync.OnceValue(running(t, eng))
	defer stop()
	produce(t, log, "hi", 0, "block")
	require.Eventually(t, func() bool { return first.Load() }, 10*time.Second, time.Millisecond)
	for i := range hi {
		produce(t, log, "hi", 0, fmt.Sprint("h", i))
	}
	for i := range lo {
		produce(t, log, "lo", 0, fmt.Sprint("l", i))
	}
	require.Eventually(t, func() bool {
		l := levelsOf(t, eng)
		return l[0].Ready == hi && l[1].Ready == lo
	}, 10*time.Second, time.Millisecond, "both levels queued in full")
	close(release)
	require.Eventually(t, func() bool { v, _ := starts.snapshot(); return len(v) == hi+lo }, 10*time.Second, time.Millisecond)
	_, infos := starts.snapshot()
	gap, seen, longest := 0, 0, 0
	for _, info := range infos {
		if seen == lo {
			break
		}
		if info.Priority == 1 {
			seen++
			gap = 0
			continue
		}
		gap++
		longest = max(longest, gap)
	}
	require.LessOrEqual(t, longest, bound, "level 1 waited longer than its bound")
	require.Equal(t, bound, longest, "the flood used what the bound allows")
	require.NoError(t, stop())
}

// Each level holds credit from its own slice of the engine buffer: a
// blocked flood of the low level fills its slice and pauses its
// partition, while the high level's records keep flowing.
func TestPrioritiesBufferSlices(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("paid", 1))
	require.NoError(t, log.CreateTopic("cron", 1))
	release := make(chan struct{})
	var paid, cron atomic.Int64
	m := log.Member("g", []string{"paid", "cron"}, memory.WithFetchBuffer(4))
	eng, err := orderly.New(m, orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		if r.Topic == "paid" {
			paid.Add(1)
			return nil
		}
		<-release
		cron.Add(1)
		return nil
	}), orderly.WithMaxConcurrency(4), orderly.WithLogger(quiet), orderly.WithEngineBuffer(100, 1<<20),
		orderly.WithPriorities(orderly.PriorityByTopic(map[string]int{"paid": 0, "cron": 1}),
			orderly.PriorityLevel{WIP: orderly.UnlimitedWIP, Reserved: 0.25},
			orderly.PriorityLevel{WIP: orderly.UnlimitedWIP, Buffer: 0.1}))
	require.NoError(t, err)
	stop := sync.OnceValue(running(t, eng))
	defer stop()
	for i := range 200 {
		produce(t, log, "cron", 0, fmt.Sprint("c", i))
	}
	require.Eventually(t, func() bool { return m.Paused("cron", 0) }, 10*time.Second, time.Millisecond)
	ps := partitionStatsOf(eng, "cron")
	require.Contains(t, ps.Reasons, orderly.PausePriorityRecords)
	l := levelsOf(t, eng)
	require.Equal(t, orderly.Limits{Records: 10, Bytes: 1 << 20 / 10}, l[1].Buffer)
	require.Equal(t, int64(90), l[0].Buffer.Records)
	require.LessOrEqual(t, l[1].HeldRecords, int64(10))

	for i := range 150 {
		produce(t, log, "paid", 0, fmt.Sprint("p", i))
	}
	require.Eventually(t, func() bool { return paid.Load() == 150 }, 10*time.Second, time.Millisecond,
		"paid records flow while cron's slice is full")
	close(release)
	require.Eventually(t, func() bool { return cron.Load() == 200 }, 20*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return !m.Paused("cron", 0) }, 10*time.Second, time.Millisecond)
	require.NoError(t, stop())
	for _, lv := range eng.Stats().Levels {
		require.Zero(t, lv.HeldRecords)
		require.Zero(t, lv.HeldBytes)
	}
}

func partitionStatsOf(eng *orderly.Engine, topic string) orderly.PartitionStats {
	for _, ps := range eng.Stats().Partitions {
		if ps.Topic == topic {
			return ps
		}
	}
	return orderly.PartitionStats{Partition: -1}
}

// lineCounter counts log lines that contain a string.
type lineCounter struct {
	mu    sync.Mutex
	lines []string
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, string(p))
	return len(p), nil
}

func (c *lineCounter) count(s string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.lines {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// A record whose level cannot be determined runs at the lowest level,
// with one warning per partition (rate-limited), and is not lost.
func TestPrioritiesUndeterminedLevel(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 2))
	var lines lineCounter
	logger := slog.New(slog.NewTextHandler(&lines, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var starts startLog
	eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		starts.add(r, infoOf(ctx))
		return nil
	}), orderly.WithLogger(logger), orderly.WithHooks(infoHook{}),
		orderly.WithPriorities(orderly.PriorityFunc(func(r *orderly.Record) (int, bool) {
			switch v := string(r.Value); {
			case strings.HasPrefix(v, "panic"):
				panic("no level")
			case strings.HasPrefix(v, "none"):
				return 0, false
			case strings.HasPrefix(v, "nine"):
				return 9, true
			}
			return levelFromValue(r)
		}), orderly.PriorityLevel{WIP: 4}, orderly.PriorityLevel{WIP: 4}, orderly.PriorityLevel{WIP: 4}))
	require.NoError(t, err)
	stop := sync.OnceValue(running(t, eng))
	defer stop()
	want := map[string]int{}
	for p := range int32(2) {
		for i := range 30 {
			v := []string{"panic", "none", "nine", "0|ok", "1|ok"}[i%5] + fmt.Sprint("/", p, "/", i)
			_, err := log.ProduceTo("t", p, []byte(fmt.Sprint("k", i)), []byte(v))
			require.NoError(t, err)
			want[v] = map[int]int{3: 0, 4: 1}[i%5]
			if i%5 < 3 {
				want[v] = 2
			}
		}
	}
	require.Eventually(t, func() bool { v, _ := starts.snapshot(); return len(v) == 60 }, 10*time.Second, time.Millisecond)
	values, infos := starts.snapshot()
	for i, v := range values {
		require.Equal(t, want[v], infos[i].Priority, v)
	}
	require.NoError(t, stop())
	require.Equal(t, 2, lines.count("record priority undetermined"), "one warning per partition within the interval: %v", lines.lines)
}

// PriorityByHeader maps a header's values to levels; Stats and hooks
// carry them.
func TestPrioritiesByHeader(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	var starts startLog
	eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		starts.add(r, infoOf(ctx))
		return nil
	}), orderly.WithLogger(quiet), orderly.WithHooks(infoHook{}),
		orderly.WithPriorities(orderly.PriorityByHeader("plan", map[string]int{"paid": 0, "free": 1}),
			orderly.PriorityLevel{WIP: 8}, orderly.PriorityLevel{WIP: 2}))
	require.NoError(t, err)
	stop := sync.OnceValue(running(t, eng))
	defer stop()
	for i, plan := range []string{"paid", "free", "paid"} {
		_, err := log.ProduceTo("t", 0, []byte(fmt.Sprint("k", i)), []byte(plan), orderly.Header{Key: "plan", Value: []byte(plan)})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { v, _ := starts.snapshot(); return len(v) == 3 }, 10*time.Second, time.Millisecond)
	values, infos := starts.snapshot()
	for i, v := range values {
		require.Equal(t, map[string]int{"paid": 0, "free": 1}[v], infos[i].Priority)
	}
	require.NoError(t, stop())
	st := eng.Stats()
	require.Equal(t, uint64(2), st.Levels[0].Started)
	require.Equal(t, uint64(1), st.Levels[1].Started)
	require.Equal(t, 8, st.Levels[0].WIP)
}

// Whatever the levels, keys and ordering: per-key order holds, no level
// runs more handler calls than its WIP limit at any instant, a record
// never runs below its own level, and every record is handled once.
func TestPrioritiesProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		mode := rapid.SampledFrom([]string{"key", "keys", "unordered"}).Draw(t, "mode")
		concurrency := rapid.IntRange(1, 8).Draw(t, "concurrency")
		n := rapid.IntRange(1, 4).Draw(t, "levels")
		levels := make([]orderly.PriorityLevel, n)
		reservedLeft := concurrency - 1
		shareLeft := 100
		for i := range levels {
			levels[i].WIP = rapid.IntRange(1, concurrency).Draw(t, "wip")
			if rapid.Bool().Draw(t, "unlimited") {
				levels[i].WIP = orderly.UnlimitedWIP
			}
			wip := levels[i].WIP
			if wip < 0 {
				wip = concurrency
			}
			if slots := rapid.IntRange(0, min(wip, reservedLeft)).Draw(t, "reserved"); slots > 0 {
				levels[i].Reserved = float64(slots) / float64(concurrency)
				reservedLeft -= slots
			}
			if shareLeft > 0 {
				pct := rapid.IntRange(0, shareLeft).Draw(t, "sharePct")
				levels[i].MinShare = float64(pct) / 100
				shareLeft -= pct
			}
		}
		partitions := rapid.IntRange(1, 3).Draw(t, "partitions")
		nkeys := rapid.IntRange(1, 8).Draw(t, "keys")
		nrecords := rapid.IntRange(1, 150).Draw(t, "records")
		fetch := rapid.IntRange(1, 32).Draw(t, "fetchBuffer")
		partBuf := rapid.IntRange(1, 64).Draw(t, "partitionBuffer")

		log := memory.NewLog()
		if err := log.CreateTopic("t", partitions); err != nil {
			t.Fatal(err)
		}
		type rec struct {
			level int
			keys  []string
		}
		recs := make([]rec, nrecords)
		for i := range recs {
			recs[i].level = rapid.IntRange(0, n-1).Draw(t, "level")
			k := 1
			if mode == "keys" {
				k = rapid.IntRange(0, 3).Draw(t, "ids")
			}
			for range k {
				recs[i].keys = append(recs[i].keys, fmt.Sprint("k", rapid.IntRange(0, nkeys-1).Draw(t, "key")))
			}
			p := int32(rapid.IntRange(0, partitions-1).Draw(t, "partition"))
			var key []byte
			if len(recs[i].keys) > 0 {
				key = []byte(recs[i].keys[0])
			}
			v := fmt.Sprintf("%d|%d|%s", recs[i].level, i, strings.Join(recs[i].keys, ","))
			if _, err := log.ProduceTo("t", p, key, []byte(v)); err != nil {
				t.Fatal(err)
			}
		}
		parse := func(r *orderly.Record) (id int, keys []string) {
			parts := strings.SplitN(string(r.Value), "|", 3)
			fmt.Sscan(parts[1], &id)
			if parts[2] != "" {
				keys = strings.Split(parts[2], ",")
			}
			return id, keys
		}
		var ordering orderly.Ordering
		switch mode {
		case "key":
			ordering = orderly.ByKey()
		case "keys":
			ordering = orderly.ByKeys(func(r *orderly.Record) []string { _, ks := parse(r); return ks })
		default:
			ordering = orderly.Unordered()
		}

		var (
			mu       sync.Mutex
			inFlight = make([]int, n)
			runningK = map[string]int{}
			seen     = map[string][]int{} // partition/key -> ids in start order
			handled  = map[int]int{}
			bad      []string
			done     atomic.Int64
		)
		wip := func(l int) int {
			if levels[l].WIP < 0 {
				return concurrency
			}
			return levels[l].WIP
		}
		eng, err := orderly.New(log.Member("g", []string{"t"}, memory.WithFetchBuffer(fetch)),
			orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
				info := infoOf(ctx)
				id, keys := parse(r)
				if mode == "unordered" {
					keys = nil
				}
				mu.Lock()
				inFlight[info.RunPriority]++
				if inFlight[info.RunPriority] > wip(info.RunPriority) {
					bad = append(bad, fmt.Sprintf("level %d: %d in flight, WIP %d", info.RunPriority, inFlight[info.RunPriority], wip(info.RunPriority)))
				}
				if info.Priority != recs[id].level || info.RunPriority > info.Priority {
					bad = append(bad, fmt.Sprintf("record %d of level %d: Priority %d, RunPriority %d", id, recs[id].level, info.Priority, info.RunPriority))
				}
				for _, k := range dedupe(keys) {
					pk := fmt.Sprint(r.Partition, "/", k)
					if other, busy := runningK[pk]; busy {
						bad = append(bad, fmt.Sprintf("key %s: %d and %d at once", pk, other, id))
					}
					runningK[pk] = id
					seen[pk] = append(seen[pk], id)
				}
				mu.Unlock()
				time.Sleep(time.Duration(id%3) * 50 * time.Microsecond)
				mu.Lock()
				for _, k := range dedupe(keys) {
					delete(runningK, fmt.Sprint(r.Partition, "/", k))
				}
				inFlight[info.RunPriority]--
				handled[id]++
				mu.Unlock()
				done.Add(1)
				return nil
			}),
			orderly.WithOrdering(ordering), orderly.WithMaxConcurrency(concurrency), orderly.WithLogger(quiet),
			orderly.WithHooks(infoHook{}), orderly.WithPartitionBuffer(partBuf, 0),
			orderly.WithPriorities(orderly.PriorityFunc(levelFromValue), levels...))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan error, 1)
		go func() { ran <- eng.Run(ctx) }()
		deadline := time.After(30 * time.Second)
		for done.Load() < int64(nrecords) {
			select {
			case <-deadline:
				cancel()
				t.Fatalf("%d of %d handled; stats %+v", done.Load(), nrecords, eng.Stats().Levels)
			case <-time.After(time.Millisecond):
			}
		}
		cancel()
		if err := <-ran; err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(bad) > 0 {
			t.Fatalf("levels %+v: %v", levels, bad[0])
		}
		for id := range nrecords {
			if handled[id] != 1 {
				t.Fatalf("record %d handled %d times", id, handled[id])
			}
		}
		// Per partition and key, start order is offset order, which is id
		// order within a partition.
		for pk, ids := range seen {
			for i := 1; i < len(ids); i++ {
				if ids[i] < ids[i-1] {
					t.Fatalf("key %s ran %v: out of order", pk, ids)
				}
			}
		}
	})
}

// At-most-once holds taken records until their commit, then queues them:
// each still runs at its own level, and every level's credit comes back.
func TestPrioritiesAtMostOnce(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 2))
	var starts startLog
	eng, err := orderly.New(log.Member("g", []string{"t"}, memory.WithFetchBuffer(7)), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		starts.add(r, infoOf(ctx))
		return nil
	}), orderly.WithAtMostOnce(), orderly.WithLogger(quiet), orderly.WithHooks(infoHook{}),
		orderly.WithPriorities(orderly.PriorityFunc(levelFromValue),
			orderly.PriorityLevel{WIP: 4}, orderly.PriorityLevel{WIP: 2}, orderly.PriorityLevel{WIP: 1}))
	require.NoError(t, err)
	stop := sync.OnceValue(running(t, eng))
	defer stop()
	const n = 300
	for i := range n {
		_, err := log.ProduceTo("t", int32(i%2), []byte(fmt.Sprint("k", i%17)), []byte(fmt.Sprintf("%d|%d", (i/3)%3, i)))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { v, _ := starts.snapshot(); return len(v) == n }, 20*time.Second, time.Millisecond)
	values, infos := starts.snapshot()
	for i, v := range values {
		var l int
		fmt.Sscan(strings.SplitN(v, "|", 2)[0], &l)
		require.Equal(t, l, infos[i].Priority, v)
	}
	require.NoError(t, stop())
	for _, lv := range eng.Stats().Levels {
		require.Zero(t, lv.HeldRecords)
	}
}
