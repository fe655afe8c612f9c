package adaptertest

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/orderly-go/orderly"
)

// Features says what an adapter's Cluster can do and how fast it is. Tests
// that need a feature the adapter lacks are skipped with t.Skip and a
// reason.
type Features struct {
	// Crash: Member.Crash makes a member vanish as a process that died
	// would: when Crash returns, no later Commit of its claims is stored
	// (they may fail or be dropped), its partitions go to the remaining
	// members without waiting for it, and its Consume returns (with any
	// error) once its serve calls have returned.
	Crash bool

	// PlantCommit: Cluster.SetCommitted can store any committed position,
	// with any metadata, for a group that has no live member (as an
	// administrator resetting offsets, or another client, would).
	PlantCommit bool

	// PauseSlack is the most records that may still arrive on a claim's
	// Records after Pause returns (records the adapter had already
	// fetched): the memory adapter's fetch buffer, for sarama its channel
	// buffer plus one fetch response. 0 means the adapter promises no
	// bound; the pause test then only checks that delivery stops.
	PauseSlack int

	// Reread: the adapter's claims implement orderly.Rereader, so that the
	// engine spills keys over their buffer instead of pausing. The
	// re-read tests run only then. (The other engine tests use a claim's
	// Rereader whenever it has one.)
	Reread bool

	// Slow: the cluster is a real network broker (or an in-process one
	// spoken to over TCP, such as kfake): the suite uses longer timeouts,
	// a longer quiet period in the pause test and fewer records.
	Slow bool

	// RecordsPerTest is how many records the larger tests produce. 0 means
	// 400, or 200 when Slow.
	RecordsPerTest int

	// Timeout bounds every wait for progress (records handled, offsets
	// committed, Run returning). 0 means 20 s, or 60 s when Slow. It is
	// a bound on a failure, not an expected duration: a passing test
	// waits only as long as the adapter needs.
	Timeout time.Duration
}

// Message is one record to produce.
type Message struct {
	Key   []byte // nil: no key
	Value []byte
}

// Cluster is the glue between the suite and an adapter: a place to make
// topics, produce records, make group members and read committed
// positions. Every method fails the test (t.Fatal) on an error rather
// than returning it, and must be safe for concurrent use. Only Produce and
// the reads may block, and only briefly.
type Cluster interface {
	// CreateTopic creates topic with the given number of partitions, and
	// returns once producers and consumers can use it. The suite gives
	// every test fresh topic and group names, so one Cluster may be
	// shared by all tests.
	CreateTopic(t *testing.T, topic string, partitions int)

	// Produce appends msgs to the partition, in order, synchronously: when
	// it returns they are readable. It returns the offset of each.
	Produce(t *testing.T, topic string, partition int32, msgs ...Message) (offsets []int64)

	// NewMember returns a new member of group subscribed to topics. It
	// joins the group only when its Consume is called, and leaves it when
	// Consume's context is done. Consume is called at most once.
	NewMember(t *testing.T, group string, topics ...string) Member

	// Committed returns the group's committed position for the
	// partition, and false if there is none.
	Committed(t *testing.T, group, topic string, partition int32) (orderly.Position, bool)

	// SetCommitted stores pos as the group's committed position for the
	// partition, metadata included, while the group has no member. Only
	// called when Features.PlantCommit is set; other adapters may make it
	// t.Fatal.
	SetCommitted(t *testing.T, group, topic string, partition int32, pos orderly.Position)
}

// Member is one consumer group member: an orderly.Source that can also
// crash.
type Member interface {
	orderly.Source

	// Crash makes the member vanish without committing (see
	// Features.Crash). It must not block for long and is only called when
	// Features.Crash is set, at most once, while Consume runs; other
	// adapters may make it panic.
	Crash()
}

// PauseReporter is an optional interface of a Member: the adapter's view
// of whether its claim on a partition is paused (the memory adapter has
// it). When a Member has it, the pause test also checks it.
type PauseReporter interface {
	Paused(topic string, partition int32) bool
}

// settings are the timeouts and sizes one run of the suite uses.
type settings struct {
	features Features
	records  int           // records for the larger tests
	wait     time.Duration // bound on every wait for progress
	quiet    time.Duration // pause test: a gap this long with no record means delivery stopped
	drain    time.Duration // drain/revoke timeout where a test wants handlers cut short
}

func newSettings(f Features) settings {
	s := settings{features: f, records: 400, wait: 20 * time.Second, quiet: 50 * time.Millisecond, drain: 50 * time.Millisecond}
	if f.Slow {
		s.records, s.wait, s.quiet, s.drain = 200, 60*time.Second, time.Second, 500*time.Millisecond
	}
	if f.RecordsPerTest > 0 {
		s.records = f.RecordsPerTest
	}
	if f.Timeout > 0 {
		s.wait = f.Timeout
	}
	return s
}

// test is one entry of the suite's table.
type test struct {
	name string
	// needs returns why the adapter cannot run the test, or "".
	needs func(Features) string
	run   func(e *env)
}

func always(Features) string { return "" }

func needsCrash(f Features) string {
	if !f.Crash {
		return "adapter cannot crash a member (Features.Crash is false)"
	}
	return ""
}

func needsReread(f Features) string {
	if !f.Reread {
		return "adapter's claims cannot re-read (Features.Reread is false)"
	}
	return ""
}

func needsPlantCommit(f Features) string {
	if !f.PlantCommit {
		return "adapter cannot plant a committed position (Features.PlantCommit is false)"
	}
	return ""
}

// tests is the suite. Each test states one guarantee; see its function's
// doc comment.
var tests = []test{
	{"PerKeyOrderUnderConcurrency", always, testPerKeyOrder},
	{"ResumeFromCommittedOffset", always, testResumeFromCommitted},
	{"RestartSkipsOffsetsDoneAboveWatermark", always, testRestartSkipsDone},
	{"CommitAfterRevokeIsNextStart", always, testCommitIsNextStart},
	{"PauseStopsDeliveryResumeRestartsIt", always, testPauseResume},
	{"RebalanceLosesNothingAndKeepsOrder", always, testRebalance},
	{"CrashRedeliversOnlyUncommitted", needsCrash, testCrash},
	{"ForeignAndCorruptMetadataTolerated", needsPlantCommit, testForeignMetadata},
	{"RereadFromAnyOffset", needsReread, testReread},
	{"HotKeySpillsWithoutStallingOthers", needsReread, testHotKeySpills},
}

// TestSource runs the conformance suite against an adapter: one subtest
// per guarantee, each on a fresh topic and group made on the Cluster that
// newCluster returns for it (newCluster is called once per subtest, with
// the subtest's t, so it may register cleanups there or return a shared
// Cluster). Tests that need what features says the adapter lacks are
// skipped. See the package documentation for an example.
func TestSource(t *testing.T, features Features, newCluster func(t *testing.T) Cluster) {
	s := newSettings(features)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if why := tc.needs(features); why != "" {
				t.Skip(why)
			}
			e := newEnv(t, s, newCluster(t), tc.name)
			tc.run(e)
		})
	}
}

// freshName returns a topic or group name no other test uses: the test's
// name and a random suffix, in the characters Kafka allows.
func freshName(kind, test string) string {
	return "adaptertest." + kind + "." + test + "." + strings.ToLower(rand.Text()[:10])
}
