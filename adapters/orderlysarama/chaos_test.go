package orderlysarama_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/internal/committer"
)

// chaosSeedEnv replays a chaos run: ORDERLY_CHAOS_SEED=<seed printed by a
// failed run> go test -race -run TestChaos ./adapters/orderlysarama
const chaosSeedEnv = "ORDERLY_CHAOS_SEED"

// TestChaos runs a consumer group under load while members join, leave and
// one vanishes without committing (its connections drop and no dial
// succeeds again, as when its process is killed), with records flowing
// throughout: 8 partitions, 100 keys, 20,000 records.
//
// What it checks, and why each holds:
//   - every produced record is handled at least once, and the group's
//     committed offsets end at every partition's end;
//   - within each claim (one owner's run over a partition) each key's
//     records start in offset order, and no record is completed twice;
//   - committed offsets never decrease: per claim, per partition over all
//     claims in the order commits returned, in what an admin client reads
//     from the broker while the test runs, and each claim starts at or
//     above the last successful commit of its partition;
//   - the vanished member stores nothing after it vanished: every Commit
//     it starts afterwards fails;
//   - duplicates only come from the uncommitted window: when claims C1
//     and C2 (granted in that order) both completed a record, C1's last
//     successful commit does not cover it (the record is at or above that
//     commit's offset and outside the ranges its metadata lists as done).
//     A commit that covers a record is inherited by every later owner,
//     so such a record is never delivered again. For members that leave
//     gracefully the final commit covers everything they completed, so in
//     practice only the vanished member's records repeat;
//   - the records the vanished member had completed but not committed
//     when it vanished are handled again by another member (the crash
//     really lost its window).
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run skipped in -short mode")
	}
	seed := rand.Uint64()
	if s := os.Getenv(chaosSeedEnv); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "%s", chaosSeedEnv)
	}
	t.Logf("seed %d (replay with %s=%d)", seed, chaosSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0xc4a05))

	const (
		partitions = 8
		keys       = 100
		records    = 20000
		topic      = "chaos"
		group      = "chaos"
	)
	strategy := strategies[rng.IntN(len(strategies))]
	t.Logf("rebalance strategy %s", strategy.name)

	c := cluster(t, 3, partitions, topic)
	ch := newChaos(t, c, group, topic, partitions, strategy.new)
	go ch.pollCommitted()

	// The scenario: each step runs when this share of the records has
	// been produced; the producer waits at each step until the change has
	// been set going, then keeps producing while it plays out.
	type step struct {
		at   float64
		name string
		do   func()
	}
	live := func() []*chaosMember { return ch.liveMembers() }
	steps := []step{
		{0.15, "a fourth member joins", func() { ch.join("m4") }},
		{0.30, "a member leaves", func() { ch.leave(pick(rng, live())) }},
		{0.45, "a member vanishes", func() { ch.crash(pick(rng, live())) }},
		{0.60, "a member joins", func() { ch.join("m5") }},
		{0.75, "a member leaves", func() { ch.leave(pick(rng, live())) }},
	}
	for _, name := range []string{"m1", "m2", "m3"} {
		ch.join(name)
	}

	gate := make(chan chan struct{})
	produced := make(chan error, 1)
	go func() {
		produced <- ch.produce(records, keys, rng.Uint64(), func(n int, next int) bool { return n >= int(steps[next].at*records) }, len(steps), gate)
	}()
	for _, s := range steps {
		var resume chan struct{}
		select {
		case resume = <-gate:
		case err := <-produced:
			t.Fatalf("producer ended before step %q: %v", s.name, err)
		}
		t.Logf("%s: %s (handled %d)", time.Now().Format("15:04:05.000"), s.name, ch.completedCount())
		s.do()
		close(resume)
		ch.waitSettled(s.name)
	}
	require.NoError(t, <-produced)
	ch.waitFor("every record handled and committed to the end of every partition", ch.allDoneAndCommitted)
	for _, m := range ch.liveMembers() {
		ch.leave(m)
	}
	ch.stopAll()
	ch.check()
}

func pick(rng *rand.Rand, ms []*chaosMember) *chaosMember { return ms[rng.IntN(len(ms))] }

// chaosAt names one record.
type chaosAt struct {
	p int32
	o int64
}

// chaos is the test's journal: claims granted, records started and
// completed per claim, commits and what the broker stores.
type chaos struct {
	t          *testing.T
	c          *kfake.Cluster
	group      string
	topic      string
	partitions int32
	strategy   func() sarama.BalanceStrategy
	// byRecord maps a record handed to the engine to the claim it came
	// from (records of different claims are different values).
	byRecord sync.Map

	// mu guards everything below. Lock order: chaosMember's dialer mu
	// may be taken while holding mu, never the other way round.
	mu        sync.Mutex
	seq       int // order of claim grants and commit returns
	members   []*chaosMember
	claims    []*chaosClaim
	commits   []chaosCommit
	expected  map[chaosAt]string        // produced record → key
	done      map[chaosAt][]*chaosClaim // record → claims that completed it, in order
	doneCount int
	problems  []string
	end       []int64 // per partition, the produced end offset
	stored    []int64 // per partition, the last committed offset the admin poll saw
	pollDone  chan struct{}
	stopPoll  chan struct{}
	// unsaved are the records the vanished member had completed but not
	// committed when it vanished.
	unsaved []chaosAt
}

func newChaos(t *testing.T, c *kfake.Cluster, group, topic string, partitions int32, strategy func() sarama.BalanceStrategy) *chaos {
	ch := &chaos{
		t: t, c: c, group: group, topic: topic, partitions: partitions, strategy: strategy,
		expected: make(map[chaosAt]string),
		done:     make(map[chaosAt][]*chaosClaim),
		end:      make([]int64, partitions),
		stored:   make([]int64, partitions),
		pollDone: make(chan struct{}),
		stopPoll: make(chan struct{}),
	}
	for i := range ch.stored {
		ch.stored[i] = -1
	}
	t.Cleanup(ch.stopAll)
	return ch
}

// chaosMember is one engine over one Source, with a dialer that can make
// it vanish.
type chaosMember struct {
	name    string
	dialer  *vanishingDialer
	cancel  context.CancelFunc
	ran     chan error
	left    bool // Run's context was cancelled (a graceful leave); guarded by chaos.mu
	crashed bool // vanished; guarded by chaos.mu
	// inflight counts Commit calls running; guarded by chaos.mu.
	inflight int
}

func (ch *chaos) join(name string) {
	t := ch.t
	cfg := config(ch.strategy)
	// A vanished member's session is noticed after Session.Timeout.
	cfg.Consumer.Group.Session.Timeout = 1500 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Timeout = 6 * time.Second
	d := &vanishingDialer{}
	cfg.Net.Proxy.Enable = true
	cfg.Net.Proxy.Dialer = d
	m := &chaosMember{name: name, dialer: d, ran: make(chan error, 1)}
	src := newSource(t, ch.c, ch.group, cfg, ch.topic)
	eng, err := orderly.New(chaosSource{Source: src, ch: ch, m: m}, orderly.HandlerFunc(ch.handle),
		orderly.WithLogger(quiet),
		orderly.WithCommitInterval(100*time.Millisecond),
		orderly.WithRevokeTimeout(2*time.Second),
		orderly.WithDrainTimeout(2*time.Second))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	ch.mu.Lock()
	ch.members = append(ch.members, m)
	ch.mu.Unlock()
	go func() { m.ran <- eng.Run(ctx) }()
}

// leave cancels m's Run (drain, final commits, leave the group) and waits
// for it to return.
func (ch *chaos) leave(m *chaosMember) {
	ch.mu.Lock()
	m.left = true
	ch.mu.Unlock()
	m.cancel()
	select {
	case err := <-m.ran:
		require.NoError(ch.t, err, "%s: Run", m.name)
		m.ran <- err // for stopAll
	case <-time.After(30 * time.Second):
		ch.t.Fatalf("%s: Run did not return within 30s of leaving", m.name)
	}
}

// crash makes m vanish while it has completed records its last commit
// does not cover and no commit in flight: its connections are closed and
// it can dial none again, so it sends nothing more (no commit, no leave,
// no heartbeat) and the group expels it after the session timeout.
func (ch *chaos) crash(m *chaosMember) {
	ch.waitFor(m.name+" to hold completed records beyond its last commit, with no commit in flight", func() (bool, string) {
		ch.mu.Lock()
		defer ch.mu.Unlock()
		if m.inflight > 0 {
			return false, "a commit is in flight"
		}
		unsaved := ch.unsavedLocked(m)
		if len(unsaved) == 0 {
			return false, "everything it completed is committed"
		}
		// Under mu no Commit of m can start (chaosClaim.Commit counts
		// itself in inflight under mu first): nothing is stored after
		// this point.
		m.dialer.vanish()
		m.crashed = true
		ch.unsaved = unsaved
		return true, ""
	})
	ch.t.Logf("%s vanished with %d completed records not committed", m.name, len(ch.unsaved))
}

// unsavedLocked lists the records m's claims completed that their last
// successful commit does not cover.
func (ch *chaos) unsavedLocked(m *chaosMember) []chaosAt {
	var out []chaosAt
	for _, cl := range ch.claims {
		if cl.m != m {
			continue
		}
		last, ok := ch.lastCommitLocked(cl)
		for _, o := range cl.completed {
			if !ok || !covers(last, o) {
				out = append(out, chaosAt{cl.Partition(), o})
			}
		}
	}
	return out
}

func (ch *chaos) liveMembers() []*chaosMember {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	var out []*chaosMember
	for _, m := range ch.members {
		if !m.left && !m.crashed {
			out = append(out, m)
		}
	}
	return out
}

// waitSettled waits until every partition is held by exactly one live
// member and every live member holds a partition (or there are more
// members than partitions).
func (ch *chaos) waitSettled(step string) {
	ch.waitFor("the group to settle after: "+step, func() (bool, string) {
		ch.mu.Lock()
		defer ch.mu.Unlock()
		holders := make(map[int32][]string)
		holds := make(map[*chaosMember]bool)
		for _, cl := range ch.claims {
			if cl.serving && !cl.revoked() && !cl.m.crashed && !cl.m.left {
				holders[cl.Partition()] = append(holders[cl.Partition()], cl.m.name)
				holds[cl.m] = true
			}
		}
		for p := range ch.partitions {
			if len(holders[p]) != 1 {
				return false, fmt.Sprintf("holders %v", holders)
			}
		}
		for _, m := range ch.members {
			if !m.left && !m.crashed && !holds[m] {
				return false, fmt.Sprintf("%s holds no partition; holders %v", m.name, holders)
			}
		}
		return true, ""
	})
}

// waitFor polls cond until it holds, failing the test after a minute.
func (ch *chaos) waitFor(what string, cond func() (bool, string)) {
	ch.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			ch.t.Fatalf("waiting for %s: %s", what, why)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// produce sends n records with keys drawn from keys, in batches. Before
// each batch it asks atStep whether the next step is due; if so it hands
// the scenario a channel on gate and waits for it to be closed.
func (ch *chaos) produce(n, keys int, seed uint64, atStep func(produced, step int) bool, steps int, gate chan<- chan struct{}) error {
	cfg := config(nil)
	cfg.Producer.Return.Successes = true
	p, err := sarama.NewSyncProducer(ch.c.ListenAddrs(), cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	rng := rand.New(rand.NewPCG(seed, 1))
	const batch = 40
	step := 0
	for sent := 0; sent < n; {
		if step < steps && atStep(sent, step) {
			resume := make(chan struct{})
			gate <- resume
			<-resume
			step++
		}
		msgs := make([]*sarama.ProducerMessage, min(batch, n-sent))
		for i := range msgs {
			key := "k" + strconv.Itoa(rng.IntN(keys))
			msgs[i] = &sarama.ProducerMessage{Topic: ch.topic, Key: sarama.StringEncoder(key), Value: sarama.StringEncoder(strconv.Itoa(sent + i))}
		}
		// Hold the journal while sending: a record may reach a handler
		// before SendMessages returns its offset.
		ch.mu.Lock()
		err := p.SendMessages(msgs)
		if err == nil {
			for _, m := range msgs {
				k, _ := m.Key.Encode()
				ch.expected[chaosAt{m.Partition, m.Offset}] = string(k)
				ch.end[m.Partition] = max(ch.end[m.Partition], m.Offset+1)
			}
		}
		ch.mu.Unlock()
		if err != nil {
			return err
		}
		sent += len(msgs)
		time.Sleep(3 * time.Millisecond) // keep the flow going through the steps
	}
	if step < steps {
		return fmt.Errorf("only %d of %d steps reached", step, steps)
	}
	return nil
}

// handle is every member's handler: a short simulated I/O wait between
// noting the start and the completion of a record.
func (ch *chaos) handle(ctx context.Context, r *orderly.Record) error {
	v, ok := ch.byRecord.LoadAndDelete(r)
	if !ok {
		ch.problem(fmt.Sprintf("record %d@%d reached a handler without passing its claim's Records", r.Partition, r.Offset))
		return nil
	}
	cl := v.(*chaosClaim)
	ch.begin(cl, r)
	t := time.NewTimer(time.Duration(rand.N(300)) * time.Microsecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err() // not completed
	}
	ch.complete(cl, r)
	return nil
}

func (ch *chaos) problem(s string) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.problems = append(ch.problems, s)
}

// begin checks that the claim starts each key's records in offset order.
func (ch *chaos) begin(cl *chaosClaim, r *orderly.Record) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	k := string(r.Key)
	if prev, ok := cl.lastStarted[k]; ok && r.Offset <= prev {
		ch.problems = append(ch.problems, fmt.Sprintf("%s, claim #%d of partition %d: key %s started offset %d after %d",
			cl.m.name, cl.id, r.Partition, k, r.Offset, prev))
	}
	cl.lastStarted[k] = r.Offset
}

func (ch *chaos) complete(cl *chaosClaim, r *orderly.Record) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	rec := chaosAt{r.Partition, r.Offset}
	if want, ok := ch.expected[rec]; !ok || want != string(r.Key) {
		ch.problems = append(ch.problems, fmt.Sprintf("record %d@%d key %q: produced %v with key %q", rec.p, rec.o, r.Key, ok, want))
	}
	if slices.Contains(ch.done[rec], cl) {
		ch.problems = append(ch.problems, fmt.Sprintf("%s, claim #%d: record %d@%d completed twice in one claim", cl.m.name, cl.id, rec.p, rec.o))
	}
	if len(ch.done[rec]) == 0 {
		ch.doneCount++
	}
	ch.done[rec] = append(ch.done[rec], cl)
	cl.completed = append(cl.completed, r.Offset)
}

func (ch *chaos) completedCount() int {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.doneCount
}

// allDoneAndCommitted: every produced record completed, and the last
// admin poll saw every partition committed at its end.
func (ch *chaos) allDoneAndCommitted() (bool, string) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.doneCount != len(ch.expected) {
		return false, fmt.Sprintf("%d of %d records handled", ch.doneCount, len(ch.expected))
	}
	if !slices.Equal(ch.stored, ch.end) {
		return false, fmt.Sprintf("committed %v, ends %v", ch.stored, ch.end)
	}
	return true, ""
}

// pollCommitted reads the group's committed offsets from the broker until
// stopPoll is closed, noting any that went back.
func (ch *chaos) pollCommitted() {
	defer close(ch.pollDone)
	admin, err := sarama.NewClusterAdmin(ch.c.ListenAddrs(), config(nil))
	if err != nil {
		ch.problem("admin client: " + err.Error())
		return
	}
	defer admin.Close()
	parts := make([]int32, ch.partitions)
	for i := range parts {
		parts[i] = int32(i)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ch.stopPoll:
			return
		case <-tick.C:
		}
		resp, err := admin.ListConsumerGroupOffsets(ch.group, map[string][]int32{ch.topic: parts})
		if err != nil {
			continue // a coordinator moving; the next poll will do
		}
		ch.mu.Lock()
		for _, p := range parts {
			b := resp.GetBlock(ch.topic, p)
			if b == nil || !errors.Is(b.Err, sarama.ErrNoError) {
				continue
			}
			if b.Offset < ch.stored[p] {
				ch.problems = append(ch.problems, fmt.Sprintf("partition %d: the broker's committed offset went back from %d to %d", p, ch.stored[p], b.Offset))
			}
			ch.stored[p] = b.Offset
		}
		ch.mu.Unlock()
	}
}

// stopAll stops the admin poll and every member still running; it is
// idempotent.
func (ch *chaos) stopAll() {
	ch.mu.Lock()
	select {
	case <-ch.stopPoll:
	default:
		close(ch.stopPoll)
	}
	members := slices.Clone(ch.members)
	ch.mu.Unlock()
	<-ch.pollDone
	for _, m := range members {
		m.cancel()
		select {
		case err := <-m.ran:
			m.ran <- err
		case <-time.After(30 * time.Second):
			ch.t.Errorf("%s: Run did not return within 30s", m.name)
		}
	}
}

// covers reports whether a committed position says offset o is done.
func covers(pos orderly.Position, o int64) bool {
	if o < pos.Offset {
		return true
	}
	ranges, _ := committer.DecodeMetadata(pos.Offset, pos.Metadata)
	for _, r := range ranges {
		if r.First <= o && o <= r.Last {
			return true
		}
	}
	return false
}

// lastCommitLocked is the claim's last successful commit.
func (ch *chaos) lastCommitLocked(cl *chaosClaim) (orderly.Position, bool) {
	var last orderly.Position
	found := false
	for _, ev := range ch.commits {
		if ev.claim == cl && ev.err == nil {
			last, found = ev.pos, true
		}
	}
	return last, found
}

// check asserts the properties listed on TestChaos over the whole run.
func (ch *chaos) check() {
	t := ch.t
	ch.mu.Lock()
	defer ch.mu.Unlock()
	require.Empty(t, ch.problems)

	// Commits never go back: per claim, per partition in the order they
	// returned, and each claim starts at or above its partition's last
	// successful commit when it was granted.
	perClaim := make(map[*chaosClaim]int64)
	perPartition := make(map[int32]chaosCommit)
	events := make([]any, 0, len(ch.claims)+len(ch.commits))
	ci, mi := 0, 0
	for ci < len(ch.claims) || mi < len(ch.commits) {
		if mi == len(ch.commits) || (ci < len(ch.claims) && ch.claims[ci].seq < ch.commits[mi].seq) {
			events = append(events, ch.claims[ci])
			ci++
		} else {
			events = append(events, ch.commits[mi])
			mi++
		}
	}
	crashedCommits := 0
	for _, ev := range events {
		switch ev := ev.(type) {
		case *chaosClaim:
			if prev, ok := perPartition[ev.Partition()]; ok {
				require.GreaterOrEqual(t, ev.start.Offset, prev.pos.Offset,
					"partition %d: %s's claim #%d starts at %d, below the last successful commit %d (by %s)",
					ev.Partition(), ev.m.name, ev.id, ev.start.Offset, prev.pos.Offset, prev.claim.m.name)
			}
		case chaosCommit:
			if ev.afterCrash {
				crashedCommits++
				require.Error(t, ev.err, "%s committed %d for partition %d after it vanished", ev.claim.m.name, ev.pos.Offset, ev.claim.Partition())
				continue
			}
			if ev.err != nil {
				continue
			}
			cl := ev.claim
			if start := cl.start.Offset; start >= 0 {
				require.GreaterOrEqual(t, ev.pos.Offset, start, "partition %d: %s committed below its claim's start", cl.Partition(), cl.m.name)
			}
			if prev, ok := perClaim[cl]; ok {
				require.GreaterOrEqual(t, ev.pos.Offset, prev, "partition %d: %s's claim committed %d after %d", cl.Partition(), cl.m.name, ev.pos.Offset, prev)
			}
			perClaim[cl] = ev.pos.Offset
			if prev, ok := perPartition[cl.Partition()]; ok {
				require.GreaterOrEqual(t, ev.pos.Offset, prev.pos.Offset, "partition %d: %s committed %d after %s committed %d",
					cl.Partition(), cl.m.name, ev.pos.Offset, prev.claim.m.name, prev.pos.Offset)
			}
			perPartition[cl.Partition()] = ev
		}
	}

	// Every record handled at least once; duplicates only where the
	// earlier claim's last successful commit did not cover the record.
	duplicates := 0
	byMember := make(map[string]int)
	for rec := range ch.expected {
		by := ch.done[rec]
		require.NotEmpty(t, by, "record %d@%d never handled", rec.p, rec.o)
		if len(by) < 2 {
			continue
		}
		duplicates += len(by) - 1
		grants := slices.Clone(by)
		slices.SortFunc(grants, func(a, b *chaosClaim) int { return a.seq - b.seq })
		for _, cl := range grants[:len(grants)-1] {
			byMember[cl.m.name]++
			last, ok := ch.lastCommitLocked(cl)
			require.False(t, ok && covers(last, rec.o),
				"record %d@%d was handled by %s's claim #%d, whose last successful commit (%d, %q) covers it, and handled again",
				rec.p, rec.o, cl.m.name, cl.id, last.Offset, last.Metadata)
		}
	}
	for _, rec := range ch.unsaved {
		require.GreaterOrEqual(t, len(ch.done[rec]), 2,
			"record %d@%d was completed but not committed by the vanished member; another member must handle it again", rec.p, rec.o)
	}
	require.NotEmpty(t, ch.unsaved, "a member vanished with completed records not committed")
	t.Logf("%d records, %d claims, %d commits; %d records handled again (first handled by %v); the vanished member had %d records not committed and started %d commits after vanishing (all failed)",
		len(ch.expected), len(ch.claims), len(ch.commits), duplicates, byMember, len(ch.unsaved), crashedCommits)
}

// chaosCommit is one Commit call, noted when it returned.
type chaosCommit struct {
	seq        int
	claim      *chaosClaim
	pos        orderly.Position
	err        error
	afterCrash bool // started after the member vanished
}

// chaosSource wraps a member's Source so that the journal sees its claims.
type chaosSource struct {
	orderly.Source
	ch *chaos
	m  *chaosMember
}

func (s chaosSource) Consume(ctx context.Context, serve func(orderly.Claim)) error {
	return s.Source.Consume(ctx, func(c orderly.Claim) {
		cl := s.ch.granted(s.m, c)
		defer cl.returned()
		serve(cl)
	})
}

// chaosClaim is a claim whose records and commits the journal sees: its
// Records are forwarded by one goroutine that tags each record with the
// claim, so that the handler knows which claim (owner run) it serves.
type chaosClaim struct {
	orderly.Claim
	ch      *chaos
	m       *chaosMember
	id      int // per partition, in grant order
	seq     int
	start   orderly.Position
	records chan []*orderly.Record
	ended   chan struct{} // closed when serve returned
	fwd     sync.WaitGroup

	// guarded by ch.mu
	serving     bool
	lastStarted map[string]int64
	completed   []int64
}

func (ch *chaos) granted(m *chaosMember, c orderly.Claim) *chaosClaim {
	cl := &chaosClaim{
		Claim: c, ch: ch, m: m, start: c.Start(),
		records:     make(chan []*orderly.Record),
		ended:       make(chan struct{}),
		serving:     true,
		lastStarted: make(map[string]int64),
	}
	ch.mu.Lock()
	ch.seq++
	cl.seq = ch.seq
	for _, other := range ch.claims {
		if other.Partition() == c.Partition() {
			cl.id++
		}
	}
	ch.claims = append(ch.claims, cl)
	ch.mu.Unlock()
	cl.fwd.Add(1)
	go cl.forward() // owned by the claim; returned waits for it
	return cl
}

func (cl *chaosClaim) forward() {
	defer cl.fwd.Done()
	defer close(cl.records)
	for b := range cl.Claim.Records() {
		for _, r := range b {
			cl.ch.byRecord.Store(r, cl)
		}
		select {
		case cl.records <- b:
		case <-cl.ended:
			for _, r := range b {
				cl.ch.byRecord.Delete(r)
			}
			return
		}
	}
}

func (cl *chaosClaim) returned() {
	close(cl.ended)
	cl.fwd.Wait()
	cl.ch.mu.Lock()
	cl.serving = false
	cl.ch.mu.Unlock()
}

func (cl *chaosClaim) Records() <-chan []*orderly.Record { return cl.records }

func (cl *chaosClaim) revoked() bool {
	select {
	case <-cl.Revoked():
		return true
	default:
		return false
	}
}

func (cl *chaosClaim) Commit(ctx context.Context, next int64, metadata string) error {
	ch := cl.ch
	ch.mu.Lock()
	afterCrash := cl.m.crashed
	cl.m.inflight++
	ch.mu.Unlock()
	err := cl.Claim.Commit(ctx, next, metadata)
	ch.mu.Lock()
	defer ch.mu.Unlock()
	cl.m.inflight--
	ch.seq++
	ch.commits = append(ch.commits, chaosCommit{seq: ch.seq, claim: cl, pos: orderly.Position{Offset: next, Metadata: metadata}, err: err, afterCrash: afterCrash})
	return err
}

// vanishingDialer is a member's sarama dialer (Net.Proxy.Dialer): vanish
// closes every connection it made and makes every later dial fail, so the
// member can no longer reach any broker: a process that was killed.
type vanishingDialer struct {
	mu     sync.Mutex
	conns  []net.Conn
	gone   bool
	dialer net.Dialer
}

var errVanished = errors.New("chaos: this member has vanished")

func (d *vanishingDialer) Dial(network, addr string) (net.Conn, error) {
	conn, err := d.dialer.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone {
		_ = conn.Close()
		return nil, errVanished
	}
	d.conns = append(d.conns, conn)
	return conn, nil
}

func (d *vanishingDialer) vanish() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gone = true
	for _, c := range d.conns {
		_ = c.Close()
	}
	d.conns = nil
}
