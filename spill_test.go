package orderly_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
)

// spillHooks records what the spill hooks and the re-read mark report.
type spillHooks struct {
	mu        sync.Mutex
	spilled   []int64 // offsets of the records that spilled keys
	rereads   []orderly.RereadInfo
	reread    map[int64]bool // offsets whose attempt was marked Reread
	notReread map[int64]bool // offsets dispatched without the mark
}

func newSpillHooks() *spillHooks {
	return &spillHooks{reread: map[int64]bool{}, notReread: map[int64]bool{}}
}

func (h *spillHooks) OnKeySpilled(r *orderly.Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.spilled = append(h.spilled, r.Offset)
}

func (h *spillHooks) OnReread(info orderly.RereadInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rereads = append(h.rereads, info)
}

func (h *spillHooks) OnAttemptStarted(ctx context.Context, r *orderly.Record, info orderly.RecordInfo) context.Context {
	h.mu.Lock()
	defer h.mu.Unlock()
	if info.Reread {
		h.reread[r.Offset] = true
	} else {
		h.notReread[r.Offset] = true
	}
	return ctx
}

// A stuck key over its buffer spills: the other keys of its partition run
// to the end while it is stuck, the partition is never paused, the engine
// holds only the key's buffer for it, and once it is released its records
// come back from the log, in order, each once; the key is then back in
// memory and the partition is committed to its end.
func TestSpilledKeyIsReadAgainInOrder(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	var keys []string
	for i := range 400 {
		keys = append(keys, "hot")
		keys = append(keys, fmt.Sprint("cold", i))
	}
	produce(t, log, "t", 0, keys...)

	release := make(chan struct{})
	var (
		mu   sync.Mutex
		hot  []int64 // offsets of the hot key, as handled
		cold atomic.Int64
	)
	hooks := newSpillHooks()
	eng, err := orderly.New(log.Member("g", []string{"t"}, memory.WithFetchBuffer(32)),
		orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
			if string(r.Key) != "hot" {
				cold.Add(1)
				return nil
			}
			<-release
			mu.Lock()
			hot = append(hot, r.Offset)
			mu.Unlock()
			return nil
		}),
		orderly.WithKeyBuffer(8, 0), orderly.WithPartitionBuffer(64, 0), orderly.WithHooks(hooks),
		orderly.WithCommitInterval(10*time.Millisecond), orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)

	require.Eventually(t, func() bool { return cold.Load() == 400 && partitionStats(t, eng, 0).HeldRecords == 8 }, 10*time.Second, time.Millisecond,
		"every cold record ran while the hot key was stuck")
	ps := partitionStats(t, eng, 0)
	require.Equal(t, orderly.KeyOverflowSpill, ps.KeyOverflow)
	require.Equal(t, 1, ps.SpilledKeys)
	require.Equal(t, int64(8), ps.HeldRecords, "only the hot key's buffer is held")
	require.False(t, ps.Paused, "no pause for a key: %+v", ps)
	require.Equal(t, int64(0), ps.Watermark, "the stuck key holds the watermark")
	require.Equal(t, int64(800), ps.Uncommitted)
	hooks.mu.Lock()
	require.Equal(t, []int64{16}, hooks.spilled, "the hot key's ninth record spilled it")
	hooks.mu.Unlock()

	close(release)
	require.Eventually(t, func() bool { p, _ := log.Committed("g", "t", 0); return p.Offset == 800 }, 10*time.Second, time.Millisecond)
	var want []int64
	for o := int64(0); o < 800; o += 2 {
		want = append(want, o)
	}
	mu.Lock()
	require.Equal(t, want, hot, "the hot key's records, in order, each once")
	mu.Unlock()

	require.Eventually(t, func() bool {
		hooks.mu.Lock()
		defer hooks.mu.Unlock()
		return eng.Stats().SpilledKeys == 0 && len(hooks.rereads) > 0 && hooks.rereads[len(hooks.rereads)-1].Back == 1
	}, 10*time.Second, time.Millisecond, "the key is back in memory")
	s := eng.Stats()
	require.Zero(t, s.HeldRecords)
	require.Positive(t, s.RecordsReread)
	require.LessOrEqual(t, s.RecordsReread, uint64(800-16), "one pass from the first record dropped")
	hooks.mu.Lock()
	defer hooks.mu.Unlock()
	require.NotEmpty(t, hooks.rereads)
	last := hooks.rereads[len(hooks.rereads)-1]
	require.Equal(t, 1, last.Back, "the last re-read brought the key back: %+v", last)
	require.NoError(t, last.Err)
	var delivered int64
	for _, info := range hooks.rereads {
		delivered += info.Delivered
	}
	require.Equal(t, int64(400-8), delivered, "every dropped record handed back once")
	for o := int64(16); o < 800; o += 2 {
		require.True(t, hooks.reread[o], "offset %d was read again: its attempt is marked", o)
		require.False(t, hooks.notReread[o], "offset %d ran from the first read too", o)
	}
	for o := int64(1); o < 800; o += 2 {
		require.False(t, hooks.reread[o], "cold offset %d is not marked", o)
	}
	require.NoError(t, stop())
}

// A claim that cannot re-read keeps pausing for a key over its buffer, and
// Stats says so.
func TestKeyOverflowPausesWithoutRereader(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	produce(t, log, "t", 0, "hot", "hot", "hot", "hot", "hot", "cold")
	release := make(chan struct{})
	eng, err := orderly.New(noReread{log.Member("g", []string{"t"})},
		orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
			if string(r.Key) == "hot" {
				<-release
			}
			return nil
		}), orderly.WithKeyBuffer(2, 0), orderly.WithCommitInterval(10*time.Millisecond), orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)
	require.Eventually(t, func() bool {
		return slices.Contains(partitionStats(t, eng, 0).Reasons, orderly.PauseKey)
	}, 10*time.Second, time.Millisecond)
	ps := partitionStats(t, eng, 0)
	require.Equal(t, orderly.KeyOverflowPause, ps.KeyOverflow)
	require.Zero(t, ps.SpilledKeys)
	close(release)
	require.Eventually(t, func() bool { p, _ := log.Committed("g", "t", 0); return p.Offset == 6 }, 10*time.Second, time.Millisecond)
	require.NoError(t, stop())
}

// lossyClaim is a memory claim whose re-reads skip some offsets (as a log
// whose retention or compaction removed records after they were first
// read) or fail to open a few times.
type lossySource struct {
	orderly.Source
	lost      func(offset int64) bool
	failOpens int
}

type lossyClaim struct {
	orderly.Claim
	rr    orderly.Rereader
	src   *lossySource
	mu    sync.Mutex
	opens int
}

func (s *lossySource) Consume(ctx context.Context, serve func(orderly.Claim)) error {
	return s.Source.Consume(ctx, func(c orderly.Claim) {
		serve(&lossyClaim{Claim: c, rr: c.(orderly.Rereader), src: s})
	})
}

func (c *lossyClaim) ReadFrom(ctx context.Context, offset int64) (orderly.RecordStream, error) {
	c.mu.Lock()
	c.opens++
	n := c.opens
	c.mu.Unlock()
	if n <= c.src.failOpens {
		return nil, fmt.Errorf("planned failure %d", n)
	}
	s, err := c.rr.ReadFrom(ctx, offset)
	if err != nil {
		return nil, err
	}
	return lossyStream{s, c.src.lost}, nil
}

type lossyStream struct {
	orderly.RecordStream
	lost func(int64) bool
}

func (s lossyStream) Next(ctx context.Context) ([]*orderly.Record, error) {
	for {
		b, err := s.RecordStream.Next(ctx)
		if err != nil {
			return nil, err
		}
		b = slices.DeleteFunc(slices.Clone(b), func(r *orderly.Record) bool { return s.lost(r.Offset) })
		if len(b) > 0 {
			return b, nil
		}
	}
}

// A re-read that cannot be opened is retried; records of a spilled key
// that the log lost before they were read again are skipped (marked done,
// with a warning), never waited for: the partition is committed to its
// end and the rest of the key's records run in order.
func TestSpillSurvivesLostRecordsAndFailedReads(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	var keys []string
	for i := range 100 {
		keys = append(keys, "hot", fmt.Sprint("cold", i))
	}
	produce(t, log, "t", 0, keys...)
	lost := func(o int64) bool { return o%2 == 0 && o%10 == 0 && o > 20 } // hot records only
	release := make(chan struct{})
	var (
		mu  sync.Mutex
		hot []int64
	)
	src := &lossySource{Source: log.Member("g", []string{"t"}), lost: lost, failOpens: 2}
	eng, err := orderly.New(src, orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		if string(r.Key) == "hot" {
			<-release
			mu.Lock()
			hot = append(hot, r.Offset)
			mu.Unlock()
		}
		return nil
	}), orderly.WithKeyBuffer(4, 0), orderly.WithCommitInterval(10*time.Millisecond), orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)
	require.Eventually(t, func() bool { return partitionStats(t, eng, 0).SpilledKeys == 1 }, 10*time.Second, time.Millisecond)
	close(release)
	if !assertEventually(func() bool { p, _ := log.Committed("g", "t", 0); return p.Offset == 200 }, 10*time.Second) {
		mu.Lock()
		t.Fatalf("not committed to the end: %+v; hot handled %v", eng.Stats(), hot)
	}
	var want []int64
	for o := int64(0); o < 200; o += 2 {
		if !lost(o) || o < 8 { // the first four hot records were never dropped
			want = append(want, o)
		}
	}
	mu.Lock()
	require.Equal(t, want, hot)
	mu.Unlock()
	require.Eventually(t, func() bool { return eng.Stats().SpilledKeys == 0 }, 10*time.Second, time.Millisecond)
	require.NoError(t, stop())
}

// Under ByKeys a record that shares a spilled key spills its other keys
// with it: their later records wait behind it, in order.
func TestSpillCarriesSharedKeys(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	// Values name the record's keys: "a", "a,b", "b".
	var vals []string
	for range 10 {
		vals = append(vals, "a")
	}
	vals = append(vals, "a,b")
	for range 10 {
		vals = append(vals, "b")
	}
	for i, v := range vals {
		_, err := log.ProduceTo("t", 0, nil, []byte(strconv.Itoa(i)+"|"+v))
		require.NoError(t, err)
	}
	release := make(chan struct{})
	var (
		mu    sync.Mutex
		order = map[string][]int64{}
	)
	keysOf := func(r *orderly.Record) []string { return parseProp(r).keys }
	eng, err := orderly.New(log.Member("g", []string{"t"}), orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		ks := keysOf(r)
		if slices.Contains(ks, "a") {
			<-release
		}
		mu.Lock()
		for _, k := range ks {
			order[k] = append(order[k], r.Offset)
		}
		mu.Unlock()
		return nil
	}), orderly.WithOrdering(orderly.ByKeys(keysOf)), orderly.WithKeyBuffer(3, 0),
		orderly.WithCommitInterval(10*time.Millisecond), orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)
	require.Eventually(t, func() bool { return partitionStats(t, eng, 0).SpilledKeys == 2 }, 10*time.Second, time.Millisecond,
		"b spilled with the record it shares with the spilled a")
	mu.Lock()
	require.Empty(t, order["b"], "b's records wait behind the shared one")
	mu.Unlock()
	close(release)
	require.Eventually(t, func() bool { p, _ := log.Committed("g", "t", 0); return p.Offset == 21 }, 10*time.Second, time.Millisecond)
	mu.Lock()
	require.Equal(t, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, order["a"])
	require.Equal(t, []int64{10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, order["b"])
	mu.Unlock()
	require.NoError(t, stop())
}

// assertEventually waits for cond, polling, up to d; it reports whether
// cond became true (the caller then says what was wrong).
func assertEventually(cond func() bool, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// gatedKeys is a handler whose keys each wait for a token (or for their
// gate to be opened for good) before a record of theirs returns, and that
// records each key's offsets in the order they ran.
type gatedKeys struct {
	mu     sync.Mutex
	tokens map[string]chan struct{}
	order  map[string][]int64
}

func newGatedKeys(keys ...string) *gatedKeys {
	g := &gatedKeys{tokens: map[string]chan struct{}{}, order: map[string][]int64{}}
	for _, k := range keys {
		g.tokens[k] = make(chan struct{}, 1000)
	}
	return g
}

func (g *gatedKeys) give(key string, n int) {
	for range n {
		g.tokens[key] <- struct{}{}
	}
}

func (g *gatedKeys) open(key string) { close(g.tokens[key]) }

func (g *gatedKeys) Handle(ctx context.Context, r *orderly.Record) error {
	if ch := g.tokens[string(r.Key)]; ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	g.mu.Lock()
	g.order[string(r.Key)] = append(g.order[string(r.Key)], r.Offset)
	g.mu.Unlock()
	return nil
}

func (g *gatedKeys) ran(key string) []int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.order[key])
}

func offsets(from, to int64) []int64 {
	var out []int64
	for o := from; o < to; o++ {
		out = append(out, o)
	}
	return out
}

// A key that fills up again while it is being read back, with another
// spilled key starving meanwhile: the re-read leaves the first key behind
// (it spills again from there), brings the other back to memory, and a
// later re-read brings the rest of the first back, each key in order.
func TestKeySpillsAgainWhileReadBack(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	var keys []string
	for range 30 {
		keys = append(keys, "a")
	}
	for range 6 {
		keys = append(keys, "b")
	}
	for range 30 {
		keys = append(keys, "a")
	}
	produce(t, log, "t", 0, keys...)
	h := newGatedKeys("a", "b")
	hooks := newSpillHooks()
	eng, err := orderly.New(log.Member("g", []string{"t"}), h, orderly.WithKeyBuffer(3, 0), orderly.WithHooks(hooks),
		orderly.WithCommitInterval(10*time.Millisecond), orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)
	held := func(n int64) func() bool {
		return func() bool { return partitionStats(t, eng, 0).HeldRecords == n }
	}
	if !assertEventually(func() bool { return held(6)() && partitionStats(t, eng, 0).Uncommitted == 66 }, 5*time.Second) {
		t.Fatalf("a and b do not hold their buffers: %+v", partitionStats(t, eng, 0))
	}
	require.Equal(t, 2, partitionStats(t, eng, 0).SpilledKeys)

	// a drains to its low mark: a re-read hands it offsets 3 and 4, fills
	// it up again, and waits with offset 5 (which holds no credit while it
	// waits), b still having work.
	h.give("a", 2)
	if !assertEventually(func() bool { return held(6)() && len(h.ran("a")) == 2 && partitionStats(t, eng, 0).Rereading }, 5*time.Second) {
		t.Fatalf("no re-read waiting with a full: %+v; a ran %v", partitionStats(t, eng, 0), h.ran("a"))
	}

	// b runs dry: the re-read leaves a behind and brings b back.
	h.open("b")
	rereads := func() []orderly.RereadInfo {
		hooks.mu.Lock()
		defer hooks.mu.Unlock()
		return slices.Clone(hooks.rereads)
	}
	require.Eventually(t, func() bool {
		return partitionStats(t, eng, 0).SpilledKeys == 1 && len(h.ran("b")) == 6 && len(rereads()) == 1
	}, 10*time.Second, time.Millisecond)
	require.Equal(t, offsets(30, 36), h.ran("b"))
	first := rereads()[0]
	require.Equal(t, 1, first.Back, "b is back: %+v", first)
	require.Equal(t, int64(3), first.From)
	require.Equal(t, int64(5), first.Delivered, "a's 3 and 4, b's 33 to 35: %+v", first)

	h.open("a")
	require.Eventually(t, func() bool { p, _ := log.Committed("g", "t", 0); return p.Offset == 66 }, 10*time.Second, time.Millisecond)
	require.Equal(t, append(offsets(0, 30), offsets(36, 66)...), h.ran("a"))
	require.Eventually(t, func() bool { return eng.Stats().SpilledKeys == 0 && rereads()[len(rereads())-1].Back == 1 },
		10*time.Second, time.Millisecond)
	last := rereads()[len(rereads())-1]
	require.Equal(t, int64(5), last.From, "the later re-read starts where a was left behind: %+v", last)
	require.Equal(t, 1, last.Back)
	require.NoError(t, stop())
}

// A revoke while a re-read is running (here: waiting for its key to
// drain) ends it with the claim: the member leaves promptly, commits what
// is done, and the next owner handles the rest of the key, in order, none
// twice.
func TestRevokeDuringReread(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	var keys []string
	for i := range 100 {
		keys = append(keys, "hot", fmt.Sprint("cold", i))
	}
	produce(t, log, "t", 0, keys...)
	h := newGatedKeys("hot")
	opts := []orderly.Option{orderly.WithKeyBuffer(4, 0), orderly.WithDrainTimeout(50 * time.Millisecond),
		orderly.WithCommitInterval(10 * time.Millisecond), orderly.WithLogger(quiet)}
	first, err := orderly.New(log.Member("g", []string{"t"}), h, opts...)
	require.NoError(t, err)
	stop := running(t, first)
	require.Eventually(t, func() bool { return len(h.ran("cold99")) == 1 && partitionStats(t, first, 0).SpilledKeys == 1 },
		10*time.Second, time.Millisecond)
	h.give("hot", 6) // a re-read starts, hands some back, and waits
	require.Eventually(t, func() bool { return partitionStats(t, first, 0).Rereading && len(h.ran("hot")) == 6 },
		10*time.Second, time.Millisecond)
	require.NoError(t, stop(), "the member leaves while its re-read waits")
	pos, _ := log.Committed("g", "t", 0)
	require.Equal(t, int64(12), pos.Offset, "the first unhandled hot record")

	second, err := orderly.New(log.Member("g", []string{"t"}), h, opts...)
	require.NoError(t, err)
	stop = running(t, second)
	h.open("hot")
	require.Eventually(t, func() bool { p, _ := log.Committed("g", "t", 0); return p.Offset == 200 }, 10*time.Second, time.Millisecond)
	require.NoError(t, stop())
	var want []int64
	for o := int64(0); o < 200; o += 2 {
		want = append(want, o)
	}
	require.Equal(t, want, h.ran("hot"), "in order, none twice, across the two claims")
	for i := range 100 {
		require.Len(t, h.ran(fmt.Sprint("cold", i)), 1, "cold%d once: it was done above the watermark and skipped", i)
	}
}

// Spilling and priority levels together: a spilled key's dropped records
// give back their level's credit, and the records read back take it again
// at their own level, so that every level's slice ends empty and the key's
// records still run in order, each once.
func TestSpillWithPriorities(t *testing.T) {
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic("t", 1))
	var keys []string
	for i := range 300 {
		keys = append(keys, "hot", fmt.Sprint("cold", i))
	}
	produce(t, log, "t", 0, keys...)
	release := make(chan struct{})
	var (
		mu  sync.Mutex
		hot []int64
	)
	eng, err := orderly.New(log.Member("g", []string{"t"}, memory.WithFetchBuffer(32)),
		orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
			if string(r.Key) == "hot" {
				<-release
				mu.Lock()
				hot = append(hot, r.Offset)
				mu.Unlock()
			}
			return nil
		}),
		// Even offsets (the hot key) at level 1, odd ones at level 0.
		orderly.WithPriorities(orderly.PriorityFunc(func(r *orderly.Record) (int, bool) { return int(1 - r.Offset%2), true }),
			orderly.PriorityLevel{WIP: orderly.UnlimitedWIP}, orderly.PriorityLevel{WIP: orderly.UnlimitedWIP}),
		orderly.WithKeyBuffer(8, 0), orderly.WithPartitionBuffer(64, 0),
		orderly.WithCommitInterval(10*time.Millisecond), orderly.WithLogger(quiet))
	require.NoError(t, err)
	stop := running(t, eng)
	require.Eventually(t, func() bool { return eng.Stats().SpilledKeys == 1 }, 10*time.Second, time.Millisecond)
	close(release)
	require.Eventually(t, func() bool { p, _ := log.Committed("g", "t", 0); return p.Offset == 600 }, 10*time.Second, time.Millisecond)
	require.Eventually(t, func() bool {
		s := eng.Stats()
		held := int64(0)
		for _, l := range s.Levels {
			held += l.HeldRecords + l.HeldBytes
		}
		return s.HeldRecords == 0 && held == 0 && s.SpilledKeys == 0
	}, 10*time.Second, time.Millisecond, "every credit came back, at every level")
	var want []int64
	for o := int64(0); o < 600; o += 2 {
		want = append(want, o)
	}
	mu.Lock()
	require.Equal(t, want, hot, "the hot key's records, in order, each once")
	mu.Unlock()
	require.Positive(t, eng.Stats().RecordsReread)
	require.NoError(t, stop())
}
