package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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
	"github.com/orderly-go/orderly/adapters/internal/faultproxy"
	"github.com/orderly-go/orderly/committer"
)

// Scenario is one run of the chaos harness: a consumer group of engines
// under load on a kfake cluster while a scenario of member changes plays
// out, with every claim, record and commit journaled and checked.
type Scenario struct {
	Client   Client
	Strategy string // in Client's vocabulary
	Seed     uint64
	// Partitions and Records: 8 and 20,000 when zero.
	Partitions int32
	Records    int
	// Key draws a record's key; uniform over 100 keys when nil.
	Key func(rng *rand.Rand) func() string
	// Initial names the members started before the first record.
	Initial []string
	// Steps run in order, each when its share of the records has been
	// produced; the harness waits for the group to settle after each.
	Steps []Step
	// Proxied puts a fault proxy between the members and the cluster
	// (see OutageStep).
	Proxied bool
	// Session is the members' session timeout, after which the group
	// expires a member that vanished; 3s when zero.
	Session time.Duration
}

// Step is one member change of a scenario.
type Step struct {
	At   float64 // share of the records produced before it runs
	Name string
	do   func(ch *chaos, rng *rand.Rand)
	// Overlap: the next step may start before the group has settled
	// after this one, so that rebalances overlap.
	Overlap bool
	// flowing: the producer goes on while the step runs (otherwise it
	// waits until the step has been set going).
	flowing bool
}

// Overlapped lets the scenario's next step start before the group has
// settled after s.
func Overlapped(s Step) Step {
	s.Overlap = true
	return s
}

// UniformKeys draws keys uniformly from n.
func UniformKeys(n int) func(rng *rand.Rand) func() string {
	return func(rng *rand.Rand) func() string {
		return func() string { return "k" + strconv.Itoa(rng.IntN(n)) }
	}
}

// ZipfKeys draws keys from n with a Zipf distribution (exponent s): a few
// hot keys carry most records, as real keys do.
func ZipfKeys(n int, s float64) func(rng *rand.Rand) func() string {
	return func(rng *rand.Rand) func() string {
		z := rand.NewZipf(rng, s, 1, uint64(n-1))
		return func() string { return "k" + strconv.FormatUint(z.Uint64(), 10) }
	}
}

// Result sums up a run that passed its checks.
type Result struct {
	Records, Claims, Commits int
	// Duplicates are the extra completions of records completed more than
	// once, by the cause of each: the earlier claim's member vanished
	// (crash) or left or gave the partition up in a rebalance (graceful).
	// The earlier claim may also have been serving when an outage began
	// (outage): its final commit could not reach the cluster.
	CrashDuplicates, OutageDuplicates, GracefulDuplicates int
	// Unsaved: records the vanished member had completed and not committed.
	Unsaved int
	// Logs are the members' log lines.
	Logs *Logs
}

// Summary adds up the results of the runs that passed the harness's checks
// (none lost a record, broke per-key order or moved a commit back), and
// counts the runs that failed a check, the harness's or the test's.
type Summary struct {
	Runs, Failed int
	records      int
	crash        int
	outage       int
	graceful     int
	byStrategy   map[string][2]int // runs, graceful duplicates
}

// Add counts a run that passed.
func (s *Summary) Add(strategy string, r Result) {
	s.Runs++
	s.records += r.Records
	s.crash += r.CrashDuplicates
	s.outage += r.OutageDuplicates
	s.graceful += r.GracefulDuplicates
	if s.byStrategy == nil {
		s.byStrategy = make(map[string][2]int)
	}
	b := s.byStrategy[strategy]
	b[0]++
	b[1] += r.GracefulDuplicates
	s.byStrategy[strategy] = b
}

// Log writes the summary line.
func (s *Summary) Log(t *testing.T) {
	t.Logf("summary: %d runs passed the harness's checks (%d records: none lost, per-key order kept, commits never back), %d runs failed a check; records handled again: %d after a crash, %d after an outage, %d after graceful changes; by strategy, runs and records handled again after graceful changes: %v",
		s.Runs, s.records, s.Failed, s.crash, s.outage, s.graceful, s.byStrategy)
}

// SeedsFromEnv returns the seeds to run: the one in replayEnv if set,
// otherwise countEnv's number (ciDefault when unset) of random seeds.
func SeedsFromEnv(t *testing.T, replayEnv, countEnv string, ciDefault int) []uint64 {
	t.Helper()
	if s := os.Getenv(replayEnv); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "%s", replayEnv)
		return []uint64{seed}
	}
	n := ciDefault
	if s := os.Getenv(countEnv); s != "" {
		var err error
		n, err = strconv.Atoi(s)
		require.NoError(t, err, "%s", countEnv)
		require.Positive(t, n, "%s", countEnv)
	}
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = rand.Uint64()
	}
	return seeds
}

// Run plays the scenario and checks the properties listed in the
// package documentation.
func (r Scenario) Run(t *testing.T) Result {
	t.Helper()
	if r.Partitions == 0 {
		r.Partitions = 8
	}
	if r.Records == 0 {
		r.Records = 20000
	}
	if r.Key == nil {
		r.Key = UniformKeys(100)
	}
	if r.Session == 0 {
		r.Session = 3 * time.Second
	}
	const topic, group = "chaos", "chaos"
	rng := rand.New(rand.NewPCG(r.Seed, 0xc4a05))
	var (
		c     *kfake.Cluster
		proxy *faultproxy.Proxy
	)
	if r.Proxied {
		proxy = faultproxy.New()
		t.Cleanup(func() { _ = proxy.Close() })
		c = Cluster(t, 3, r.Partitions, []string{topic}, kfake.ListenFn(proxy.Listen))
	} else {
		c = Cluster(t, 3, r.Partitions, []string{topic})
	}
	ch := newChaos(t, c, r.Client, r.Strategy, group, topic, r.Partitions)
	ch.session = r.Session
	ch.proxy = proxy
	go ch.pollCommitted()
	for _, name := range r.Initial {
		ch.join(name)
	}
	// The scenario plays out under load: records flow once the group has
	// formed.
	ch.waitSettled("the initial members join")

	gate := make(chan chan struct{})
	produced := make(chan error, 1)
	keys := r.Key(rand.New(rand.NewPCG(rng.Uint64(), 1)))
	go func() {
		produced <- ch.produce(r.Records, keys, func(n int, next int) bool { return n >= int(r.Steps[next].At*float64(r.Records)) }, len(r.Steps), gate)
	}()
	for _, s := range r.Steps {
		var resume chan struct{}
		select {
		case resume = <-gate:
		case err := <-produced:
			t.Fatalf("producer ended before step %q: %v", s.Name, err)
		}
		t.Logf("%s: %s (handled %d)", time.Now().Format("15:04:05.000"), s.Name, ch.completedCount())
		if s.flowing {
			close(resume)
		}
		s.do(ch, rng)
		if !s.flowing {
			close(resume)
		}
		if !s.Overlap {
			ch.waitSettled(s.Name)
		}
	}
	require.NoError(t, <-produced)
	ch.waitFor("every record handled and committed to the end of every partition", ch.allDoneAndCommitted)
	ch.leave(ch.liveMembers()...)
	ch.stopAll()
	return ch.check()
}

// The scenario's member changes.

func JoinStep(at float64, name string) Step {
	return Step{At: at, Name: name + " joins", do: func(ch *chaos, _ *rand.Rand) { ch.join(name) }}
}

func LeaveStep(at float64) Step {
	return Step{At: at, Name: "a member leaves", do: func(ch *chaos, rng *rand.Rand) { ch.leave(pick(rng, ch.liveMembers())) }}
}

// OutageStep cuts every connection between the members and the cluster
// for d, then lets them through again (the producer waits meanwhile). The
// outage must show in every live member's Stats: its claims are handed
// back (no partition listed) before it takes partitions up again.
func OutageStep(at float64, d time.Duration) Step {
	return Step{At: at, Name: fmt.Sprintf("the cluster is unreachable for %v", d), do: func(ch *chaos, _ *rand.Rand) {
		live := ch.liveMembers()
		began := time.Now()
		ch.mu.Lock()
		ch.outage = true
		for _, cl := range ch.claims {
			if cl.serving {
				cl.hitByOutage = true
			}
		}
		ch.mu.Unlock()
		ch.proxy.Cut()
		// Owned by the step, which stops it and waits for it: it notes
		// each member whose Stats lists no partition.
		var (
			seenMu sync.Mutex
			seen   = make(map[*chaosMember]time.Duration)
			stop   = make(chan struct{})
			done   = make(chan struct{})
		)
		go func() {
			defer close(done)
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for {
				for _, m := range live {
					if len(m.eng.Stats().Partitions) == 0 {
						seenMu.Lock()
						if _, ok := seen[m]; !ok {
							seen[m] = time.Since(began)
						}
						seenMu.Unlock()
					}
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
		time.Sleep(d) // the outage's length, not a wait for an event
		ch.proxy.Restore()
		ch.mu.Lock()
		ch.outage = false
		ch.mu.Unlock()
		ch.t.Logf("%s: the cluster is reachable again; %d connections were refused meanwhile", time.Now().Format("15:04:05.000"), ch.proxy.Refused())
		ch.waitFor("every member's Stats to have shown its partitions handed back", func() (bool, string) {
			seenMu.Lock()
			defer seenMu.Unlock()
			for _, m := range live {
				if _, ok := seen[m]; !ok {
					return false, m.name + " still lists partitions"
				}
			}
			return true, ""
		})
		close(stop)
		<-done
		for _, m := range live {
			ch.t.Logf("%s's Stats listed no partition %v after the cut", m.name, seen[m].Round(time.Millisecond))
			select {
			case err := <-m.ran:
				m.ran <- err
				ch.t.Fatalf("%s: Run returned during the outage: %v", m.name, err)
			default:
			}
		}
	}}
}

// CrashStep makes a member vanish while it holds completed records its
// last commit does not cover: records flow meanwhile, or there would be
// none once it had caught up and committed.
func CrashStep(at float64) Step {
	return Step{At: at, Name: "a member vanishes", flowing: true,
		do: func(ch *chaos, rng *rand.Rand) { ch.crash(pick(rng, ch.liveMembers())) }}
}

// ReplaceStep stops the oldest live member and starts name in its place,
// in either order (stop then start, or start then stop, as a rolling
// deploy with a surge does).
func ReplaceStep(at float64, name string) Step {
	return Step{At: at, Name: name + " replaces the oldest member", do: func(ch *chaos, rng *rand.Rand) {
		old := ch.liveMembers()[0]
		if rng.IntN(2) == 0 {
			ch.t.Logf("stop %s, then start %s", old.name, name)
			ch.leave(old)
			ch.join(name)
			return
		}
		ch.t.Logf("start %s, then stop %s", name, old.name)
		ch.join(name)
		ch.leave(old)
	}}
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
	client     Client
	strategy   string
	group      string
	topic      string
	partitions int32
	logs       *Logs
	proxy      *faultproxy.Proxy // nil unless Scenario.proxied
	session    time.Duration     // members' session timeout
	// byRecord maps a record handed to the engine to the claim it came
	// from (records of different claims are different values).
	byRecord sync.Map

	// mu guards everything below. Lock order: a member's vanish may be
	// called while holding mu (it takes the dialer's lock), never the
	// other way round.
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
	// outage: the proxy is cutting the members off the cluster; claims
	// granted meanwhile are hit by it.
	outage bool
}

func newChaos(t *testing.T, c *kfake.Cluster, client Client, strategy, group, topic string, partitions int32) *chaos {
	ch := &chaos{
		t: t, c: c, client: client, strategy: strategy, group: group, topic: topic, partitions: partitions,
		logs:     newLogs(t),
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

// chaosMember is one engine over one Source that can vanish.
type chaosMember struct {
	name    string
	eng     *orderly.Engine
	vanish  func()
	cancel  context.CancelFunc
	ran     chan error
	left    bool // Run's context was cancelled (a graceful leave); guarded by chaos.mu
	crashed bool // vanished; guarded by chaos.mu
	// inflight counts Commit and CommitBatch calls running; guarded by chaos.mu.
	inflight int
}

func (ch *chaos) join(name string) {
	t := ch.t
	log := ch.logs.logger(name)
	src, vanish := ch.client.Member(t, ch.c, ch.group, ch.topic, ch.strategy, ch.session, log)
	m := &chaosMember{name: name, vanish: vanish, ran: make(chan error, 1)}
	var journaled orderly.Source = chaosSource{Source: src, ch: ch, m: m}
	if bc, ok := src.(orderly.BatchCommitter); ok {
		journaled = chaosBatchSource{chaosSource{Source: src, ch: ch, m: m}, bc}
	}
	eng, err := orderly.New(journaled, orderly.HandlerFunc(ch.handle),
		orderly.WithLogger(log),
		orderly.WithCommitInterval(100*time.Millisecond),
		// Handlers take under a millisecond; the drain timeout also bounds
		// a final commit, which may wait for a rejoin under way (sarama's
		// Rebalance.Retry.Backoff, then a JoinGroup and a SyncGroup).
		orderly.WithRevokeTimeout(5*time.Second),
		orderly.WithDrainTimeout(10*time.Second))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	ch.mu.Lock()
	ch.members = append(ch.members, m)
	ch.mu.Unlock()
	m.eng = eng
	go func() { m.ran <- eng.Run(ctx) }()
}

// leave cancels the members' Run (drain, final commits, leave the group),
// all at once, and waits for each to return.
func (ch *chaos) leave(ms ...*chaosMember) {
	ch.mu.Lock()
	for _, m := range ms {
		m.left = true
	}
	ch.mu.Unlock()
	for _, m := range ms {
		m.cancel()
	}
	for _, m := range ms {
		select {
		case err := <-m.ran:
			require.NoError(ch.t, err, "%s: Run", m.name)
			m.ran <- err // for stopAll
		case <-time.After(30 * time.Second):
			ch.t.Fatalf("%s: Run did not return within 30s of leaving", m.name)
		}
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
		// Under mu no Commit of m can start (commitStarted counts
		// itself in inflight under mu first): nothing is stored after
		// this point.
		m.vanish()
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

// produce sends n records with keys drawn by key, in batches. Before
// each batch it asks atStep whether the next step is due; if so it hands
// the scenario a channel on gate and waits for it to be closed.
func (ch *chaos) produce(n int, key func() string, atStep func(produced, step int) bool, steps int, gate chan<- chan struct{}) error {
	p, err := sarama.NewSyncProducer(ch.c.ListenAddrs(), toolConfig())
	if err != nil {
		return err
	}
	defer p.Close()
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
			msgs[i] = &sarama.ProducerMessage{Topic: ch.topic, Key: sarama.StringEncoder(key()), Value: sarama.StringEncoder(strconv.Itoa(sent + i))}
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
	want, produced := ch.expected[rec]
	if !produced || want != string(r.Key) {
		ch.problems = append(ch.problems, fmt.Sprintf("record %d@%d key %q: produced %v with key %q", rec.p, rec.o, r.Key, produced, want))
	}
	if slices.Contains(ch.done[rec], cl) {
		ch.problems = append(ch.problems, fmt.Sprintf("%s, claim #%d: record %d@%d completed twice in one claim", cl.m.name, cl.id, rec.p, rec.o))
	}
	if len(ch.done[rec]) == 0 && produced {
		ch.doneCount++ // produced records done: what the end of a run waits for
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
	if len(ch.problems) > 0 {
		return true, "" // the checks report them
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
	admin, err := sarama.NewClusterAdmin(ch.c.ListenAddrs(), toolConfig())
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

// check asserts the properties listed in the package documentation over
// the whole run and sums it up.
func (ch *chaos) check() Result {
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
	res := Result{Records: len(ch.expected), Claims: len(ch.claims), Commits: len(ch.commits), Unsaved: len(ch.unsaved), Logs: ch.logs}
	gracefulBy := make(map[*chaosClaim]int)
	for rec := range ch.expected {
		by := ch.done[rec]
		require.NotEmpty(t, by, "record %d@%d never handled", rec.p, rec.o)
		if len(by) < 2 {
			continue
		}
		grants := slices.Clone(by)
		slices.SortFunc(grants, func(a, b *chaosClaim) int { return a.seq - b.seq })
		for _, cl := range grants[:len(grants)-1] {
			if cl.m.crashed {
				res.CrashDuplicates++
			} else if cl.hitByOutage {
				res.OutageDuplicates++
			} else {
				res.GracefulDuplicates++
				gracefulBy[cl]++
			}
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
	// Why graceful owners' records were handled again: their claims'
	// failed commits.
	for cl, n := range gracefulBy {
		var failed []string
		for _, ev := range ch.commits {
			if ev.claim == cl && ev.err != nil {
				failed = append(failed, fmt.Sprintf("%d: %v", ev.pos.Offset, ev.err))
			}
		}
		last, _ := ch.lastCommitLocked(cl)
		t.Logf("%s's claim #%d of partition %d (left: %v): %d of its records handled again by a later owner; last successful commit %d; failed commits %q",
			cl.m.name, cl.id, cl.Partition(), cl.m.left, n, last.Offset, failed)
	}
	failed := make(map[string]int)
	for _, ev := range ch.commits {
		if ev.err != nil && !ev.afterCrash {
			failed[ch.commitErrorKind(ev.err)]++
		}
	}
	t.Logf("%d records, %d claims, %d commits; handled again: %d after a crash, %d after an outage, %d after graceful changes; the vanished member had %d records not committed and started %d commits after vanishing (all failed); commits of live members that failed: %v, final ones among them: %d",
		res.Records, res.Claims, res.Commits, res.CrashDuplicates, res.OutageDuplicates, res.GracefulDuplicates, res.Unsaved, crashedCommits, failed, ch.logs.Warnings("final commit failed"))
	return res
}

// commitErrorKind names a failed commit's cause for the run's summary.
func (ch *chaos) commitErrorKind(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	if kind := ch.client.CommitErrorKind(err); kind != "" {
		return kind
	}
	return "other"
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

// chaosBatchSource is a chaosSource over a BatchCommitter: the journal
// sees the batch's commits, and the engine commits through the adapter's
// CommitBatch as it would without the harness.
type chaosBatchSource struct {
	chaosSource
	bc orderly.BatchCommitter
}

func (s chaosBatchSource) CommitBatch(ctx context.Context, commits []orderly.ClaimCommit) []error {
	inner := make([]orderly.ClaimCommit, len(commits))
	for i, cc := range commits {
		inner[i] = cc
		if cl, ok := cc.Claim.(*chaosClaim); ok {
			inner[i].Claim = cl.Claim
		}
	}
	afterCrash := s.ch.commitStarted(s.m)
	errs := s.bc.CommitBatch(ctx, inner)
	s.ch.commitsReturned(s.m, commits, errs, afterCrash)
	return errs
}

// commitStarted counts a Commit or CommitBatch call of m in flight (so
// that crash waits for it) and reports whether m has vanished.
func (ch *chaos) commitStarted(m *chaosMember) (afterCrash bool) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	m.inflight++
	return m.crashed
}

// commitsReturned journals the commits of one call of m, with their
// errors, in the order they were given.
func (ch *chaos) commitsReturned(m *chaosMember, commits []orderly.ClaimCommit, errs []error, afterCrash bool) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	m.inflight--
	for i, cc := range commits {
		cl, ok := cc.Claim.(*chaosClaim)
		if !ok {
			ch.problems = append(ch.problems, fmt.Sprintf("a commit of a claim the harness did not grant: %T", cc.Claim))
			continue
		}
		ch.seq++
		ch.commits = append(ch.commits, chaosCommit{seq: ch.seq, claim: cl, pos: orderly.Position{Offset: cc.Next, Metadata: cc.Metadata}, err: errs[i], afterCrash: afterCrash})
	}
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
	hitByOutage bool // serving when the proxy cut the cluster off, or granted while it did
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
	cl.hitByOutage = ch.outage
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
	afterCrash := cl.ch.commitStarted(cl.m)
	err := cl.Claim.Commit(ctx, next, metadata)
	cl.ch.commitsReturned(cl.m, []orderly.ClaimCommit{{Claim: cl, Next: next, Metadata: metadata}}, []error{err}, afterCrash)
	return err
}
