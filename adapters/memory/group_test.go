package memory_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
)

// The tests in this file run in a synctest bubble: synctest.Wait returns
// once every goroutine of the log and the members is blocked, so "nothing
// more happens" is observable without sleeping, and synctest.Test fails if
// any goroutine (a fetcher, a serve call) is left running at the end.

func produceN(t tb, l *memory.Log, topic string, n int) {
	t.Helper()
	for i := range n {
		_, _, err := l.Produce(topic, fmt.Appendf(nil, "key-%d", i), []byte("v"))
		require.NoError(t, err)
	}
}

func requireAllCommitted(t tb, l *memory.Log, group, topic string) {
	t.Helper()
	n, err := l.Partitions(topic)
	require.NoError(t, err)
	for p := range int32(n) {
		end, err := l.EndOffset(topic, p)
		require.NoError(t, err)
		if end == 0 {
			continue
		}
		pos, ok := l.Committed(group, topic, p)
		require.True(t, ok, "%s/%d has no commit", topic, p)
		require.Equal(t, end, pos.Offset, "%s/%d", topic, p)
	}
}

func TestRoundTrip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := memory.NewLog()
		require.NoError(t, l.CreateTopic("t", 4))
		produceN(t, l, "t", 100)
		rec := newRecorder()
		r := consume(l.Member("g", []string{"t"}, memory.WithID("a")), rec.serve("a"))
		synctest.Wait()
		produceN(t, l, "t", 100) // appended while the fetchers wait at the end
		synctest.Wait()

		assert.Empty(t, rec.missing(t, l, "t"))
		requireAllCommitted(t, l, "g", "t")
		requireMonotonicCommits(t, l, "g", "t")
		for p := range int32(4) {
			start, ok := rec.lastStart("a", tp("t", p))
			require.True(t, ok)
			assert.Equal(t, orderly.Position{Offset: orderly.NoOffset}, start, "no commit yet: NoOffset")
		}
		require.NoError(t, r.stop())
		rec.check(t)
	})
}

func TestZeroCopyDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := memory.NewLog()
		require.NoError(t, l.CreateTopic("t", 1))
		stored, err := l.ProduceRecord(orderly.Record{Topic: "t", Key: []byte("k")})
		require.NoError(t, err)
		got := make(chan *orderly.Record, 1)
		r := consume(l.Member("g", []string{"t"}), func(c orderly.Claim) {
			got <- (<-c.Records())[0]
			<-c.Revoked()
		})
		assert.Same(t, stored, <-got)
		require.NoError(t, r.stop())
	})
}

func TestNoOffsetReadsFromZero(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := memory.NewLog()
		require.NoError(t, l.CreateTopic("t", 1))
		for range 3 {
			_, err := l.ProduceTo("t", 0, nil, []byte("v"))
			require.NoError(t, err)
		}
		type first struct {
			start  orderly.Position
			offset int64
		}
		got := make(chan first, 1)
		r := consume(l.Member("g", []string{"t"}), func(c orderly.Claim) {
			got <- first{c.Start(), (<-c.Records())[0].Offset}
			<-c.Revoked()
		})
		f := <-got
		assert.Equal(t, orderly.NoOffset, f.start.Offset)
		assert.Equal(t, int64(0), f.offset)
		require.NoError(t, r.stop())
	})
}

func TestSetCommittedShowsInStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := memory.NewLog()
		require.NoError(t, l.CreateTopic("t", 2))
		for range 10 {
			_, err := l.ProduceTo("t", 1, nil, []byte("v"))
			require.NoError(t, err)
		}
		planted := orderly.Position{Offset: 7, Metadata: "\x00foreign\xffmetadata"}
		l.SetCommitted("g", "t", 1, planted)

		rec := newRecorder()
		r := consume(l.Member("g", []string{"t"}, memory.WithID("a")), rec.serve("a"))
		synctest.Wait()
		start, ok := rec.lastStart("a", tp("t", 1))
		require.True(t, ok)
		assert.Equal(t, planted, start)
		require.NoError(t, r.stop())
		rec.check(t) // the first record delivered was 7
		h := l.CommitHistory("g", "t", 1)
		require.Len(t, h, 3, "offsets 7, 8, 9; SetCommitted is not in the history")
		assert.Equal(t, int64(8), h[0].Offset)
	})
}

func TestStartAboveEndWaitsForTheLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := memory.NewLog()
		require.NoError(t, l.CreateTopic("t", 1))
		l.SetCommitted("g", "t", 0, orderly.Position{Offset: 2})
		got := make(chan int64, 10)
		r := consume(l.Member("g", []string{"t"}), func(c orderly.Claim) {
			for rec := range each(c) {
				got <- rec.Offset
			}
		})
		for range 3 {
			_, err := l.ProduceTo("t", 0, nil, nil)
			require.NoError(t, err)
		}
		synctest.Wait()
		require.NoError(t, r.stop())
		close(got)
		var offsets []int64
		for o := range got {
			offsets = append(offsets, o)
		}
		assert.Equal(t, []int64{2}, offsets)
	})
}

// A partition that moves waits for its old owner's serve call to return,
// and the new owner starts from the old owner's final commit.
func TestHandoverWaitsForTheOldOwner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := memory.NewLog()
		require.NoError(t, l.CreateTopic("t", 2))
		for range 10 {
			_, err := l.ProduceTo("t", 1, nil, []byte("v"))
			require.NoError(t, err)
		}
		revoked := make(chan struct{})
		release := make(chan struct{})
		finalErr := make(chan error, 1)
		a := l.Member("g", []string{"t"}, memory.WithID("a"))
		ra := consume(a, func(c orderly.Claim) {
			for rec := range each(c) {
				_ = c.Commit(context.Background(), rec.Offset+1, "a")
			}
			if c.Partition() == 1 {
				close(revoked)
				<-release
				// Allowed: Revoked is closed but serve has not returned.
				finalErr <- c.Commit(context.Background(), 10, "final")
			}
		})
		synctest.Wait()
		assert.Equal(t, []memory.TopicPartition{tp("t", 0), tp("t", 1)}, a.Assigned())

		rec := newRecorder()
		b := l.Member("g", []string{"t"}, memory.WithID("b"))
		rb := consume(b, rec.serve("b"))
		<-revoked
		synctest.Wait()
		assert.Equal(t, []memory.TopicPartition{tp("t", 0)}, a.Assigned(), "t/0 did not move")
		assert.Empty(t, b.Assigned(), "t/1 is granted only after a's serve returns")
		assert.Zero(t, rec.serveCalls())

		close(release)
		require.NoError(t, <-finalErr)
		synctest.Wait()
		assert.Equal(t, []memory.TopicPartition{tp("t", 1)}, b.Assigned())
		start, ok := rec.lastStart("b", tp("t", 1))
		require.True(t, ok)
		assert.Equal(t, orderly.Position{Offset: 10, Metadata: "final"}, start)

		_, err := l.ProduceTo("t", 1, nil, []byte("v"))
		require.NoError(t, err)
		synctest.Wait()
		pos, _ := l.Committed("g", "t", 1)
		assert.Equal(t, orderly.Position{Offset: 11, Metadata: "b"}, pos)

		require.NoError(t, ra.stop())
		require.NoError(t, rb.stop())
		requireMonotonicCommits(t, l, "g", "t")
		rec.check(t)
	})
}

// Members share the partitions by join order, a partition is never served
// by two members at once, every record is seen, and leaving members hand
// their partitions over to the others.
func TestMembersSplitPartitions(t *testing.T) {
	for _, members := range []int{2, 3} {
		t.Run(fmt.Sprint(members), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const partitions = 6
				l := memory.NewLog()
				require.NoError(t, l.CreateTopic("t", partitions))
				rec := newRecorder()
				var ms []*memory.Member
				var rs []*running
				for i := range members {
					produceN(t, l, "t", 50)
					id := fmt.Sprintf("m%d", i)
					m := l.Member("g", []string{"t"}, memory.WithID(id), memory.WithFetchBuffer(3))
					ms = append(ms, m)
					rs = append(rs, consume(m, rec.serve(id)))
					produceN(t, l, "t", 50)
					synctest.Wait()
				}
				for i, m := range ms {
					var want []memory.TopicPartition
					for p := i; p < partitions; p += members {
						want = append(want, tp("t", int32(p)))
					}
					assert.Equal(t, want, m.Assigned(), "member %d", i)
				}
				assert.Empty(t, rec.missing(t, l, "t"))
				requireAllCommitted(t, l, "g", "t")

				// Members leave one by one; the last one ends up with all.
				for i := range members - 1 {
					require.NoError(t, rs[i].stop())
					assert.Empty(t, ms[i].Assigned())
					produceN(t, l, "t", 50)
					synctest.Wait()
					assert.Empty(t, rec.missing(t, l, "t"))
					requireAllCommitted(t, l, "g", "t")
				}
				assert.Len(t, ms[members-1].Assigned(), partitions)
				require.NoError(t, rs[members-1].stop())

				requireMonotonicCommits(t, l, "g", "t")
				rec.check(t)
			})
		})
	}
}

func TestCrashReassignsAtOnceAndFences(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := memory.NewLog()
		require.NoError(t, l.CreateTopic("t", 2))
		rec := newRecorder()
		b := l.Member("g", []string{"t"}, memory.WithID("b"))
		rb := consume(b, rec.serve("b"))
		synctest.Wait() // b joins first: t/0

		a := l.Member("g", []string{"t"}, memory.WithID("a"))
		release := make(chan struct{})
		ghost := make(chan error, 1)
		aSeen := 0
		ra := consume(a, func(c orderly.Claim) { // joins second: t/1
			for rec := range each(c) {
				aSeen++
				_ = c.Commit(context.Background(), rec.Offset+1, "a")
			}
			ghost <- c.Commit(context.Background(), 999, "ghost")
			<-release
		})
		synctest.Wait()
		require.Equal(t, []memory.TopicPartition{tp("t", 1)}, a.Assigned())
		for range 5 {
			_, err := l.ProduceTo("t", 1, nil, []byte("v"))
			require.NoError(t, err)
		}
		synctest.Wait()
		require.Equal(t, 5, aSeen)

		a.Crash()
		a.Crash() // idempotent
		require.ErrorIs(t, <-ghost, memory.ErrFenced)
		synctest.Wait()
		// a's serve call is still blocked, yet b has t/1 already.
		assert.Empty(t, a.Assigned())
		assert.Equal(t, []memory.TopicPartition{tp("t", 0), tp("t", 1)}, b.Assigned())
		start, ok := rec.lastStart("b", tp("t", 1))
		require.True(t, ok)
		assert.Equal(t, orderly.Position{Offset: 5, Metadata: "a"}, start, "the ghost commit was not stored")
		select {
		case err := <-ra.done:
			t.Fatalf("Consume returned %v before its serve call", err)
		default:
		}

		for range 3 {
			_, err := l.ProduceTo("t", 1, nil, []byte("v"))
			require.NoError(t, err)
		}
		synctest.Wait()
		assert.Equal(t, 5, aSeen, "a's fetcher stopped")
		pos, _ := l.Committed("g", "t", 1)
		assert.Equal(t, orderly.Position{Offset: 8, Metadata: "b"}, pos)

		close(release)
		require.ErrorIs(t, <-ra.done, memory.ErrCrashed)
		require.NoError(t, rb.stop())
		requireMonotonicCommits(t, l, "g", "t")
		rec.check(t)
	})
}

func TestCrashBeforeConsume(t *testing.T) {
	l := memory.NewLog()
	m := l.Member("g", []string{"t"})
	m.Crash()
	err := m.Consume(context.Background(), func(orderly.Claim) {})
	assert.ErrorIs(t, err, memory.ErrCrashed)
}

func TestPauseResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const buffer = 4
		l := memory.NewLog()
		require.NoError(t, l.CreateTopic("t", 1))
		for range 20 {
			_, err := l.ProduceTo("t", 0, nil, []byte("v"))
			require.NoError(t, err)
		}
		claims := make(chan orderly.Claim, 1)
		m := l.Member("g", []string{"t"}, memory.WithFetchBuffer(buffer))
		r := consume(m, func(c orderly.Claim) {
			claims <- c
			<-c.Revoked()
		})
		c := <-claims
		next := int64(0)
		var unread []*orderly.Record // the rest of the last batch
		take := func(b []*orderly.Record) {
			t.Helper()
			require.NotEmpty(t, b)
			require.LessOrEqual(t, len(b), buffer, "a batch holds at most the fetch buffer")
			unread = b
		}
		receive := func() {
			t.Helper()
			if len(unread) == 0 {
				take(<-c.Records())
			}
			require.Equal(t, next, unread[0].Offset)
			unread = unread[1:]
			next++
		}
		// drain receives what is buffered once the fetcher is idle.
		drain := func() int {
			n := 0
			for {
				synctest.Wait()
				select {
				case b := <-c.Records():
					take(b)
					for len(unread) > 0 {
						receive()
						n++
					}
				default:
					return n
				}
			}
		}

		synctest.Wait()
		require.Len(t, c.Records(), 1, "the fetcher fills the buffer")
		receive()
		receive()
		for len(unread) > 0 {
			receive() // the rest of the first batch: delivered before the pause
		}

		c.Pause()
		c.Pause() // idempotent
		assert.True(t, m.Paused("t", 0))
		assert.LessOrEqual(t, drain(), buffer, "at most the buffer arrives after Pause")
		synctest.Wait()
		assert.Empty(t, c.Records(), "nothing more while paused")

		c.Resume()
		c.Resume()
		assert.False(t, m.Paused("t", 0))
		for next < 20 {
			receive()
		}

		// Paused while waiting at the end of the log.
		c.Pause()
		for range 10 {
			_, err := l.ProduceTo("t", 0, nil, []byte("v"))
			require.NoError(t, err)
		}
		assert.Zero(t, drain())
		c.Resume()
		assert.Equal(t, 10, drain())

		require.NoError(t, r.stop())
		assert.False(t, m.Paused("t", 0), "no claim any more")
	})
}

func TestRecordsCloseOnRevoke(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := memory.NewLog()
		require.NoError(t, l.CreateTopic("t", 2))
		for range 100 {
			_, err := l.ProduceTo("t", 1, nil, []byte("v"))
			require.NoError(t, err)
		}
		ended := make(chan orderly.Claim, 2)
		a := l.Member("g", []string{"t"}, memory.WithFetchBuffer(8))
		ra := consume(a, func(c orderly.Claim) {
			<-c.Revoked() // read nothing: the fetcher is blocked on a full channel
			for range c.Records() {
			}
			ended <- c
		})
		synctest.Wait()
		rb := consume(l.Member("g", []string{"t"}), newRecorder().serve("b"))
		c := <-ended
		assert.Equal(t, int32(1), c.Partition())
		synctest.Wait()
		err := c.Commit(context.Background(), 1, "late")
		assert.ErrorIs(t, err, memory.ErrClaimEnded, "serve returned")
		pos, _ := l.Committed("g", "t", 1)
		assert.Equal(t, int64(100), pos.Offset, "b read everything; the late commit was not stored")

		require.NoError(t, ra.stop())
		<-ended
		require.NoError(t, rb.stop())
	})
}

func TestCommitHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := memory.NewLog()
		require.NoError(t, l.CreateTopic("t", 1))
		errs := make(chan error, 1)
		r := consume(l.Member("g", []string{"t"}), func(c orderly.Claim) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			errs <- c.Commit(ctx, 5, "")
			<-c.Revoked()
		})
		assert.ErrorIs(t, <-errs, context.Canceled)
		_, ok := l.Committed("g", "t", 0)
		assert.False(t, ok)
		require.NoError(t, r.stop())
	})
}

func TestConsumeTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := memory.NewLog()
		m := l.Member("g", []string{"t"})
		r := consume(m, func(orderly.Claim) {})
		synctest.Wait()
		err := m.Consume(context.Background(), func(orderly.Claim) {})
		assert.ErrorIs(t, err, memory.ErrAlreadyConsumed)
		require.NoError(t, r.stop())
		err = m.Consume(context.Background(), func(orderly.Claim) {})
		assert.ErrorIs(t, err, memory.ErrAlreadyConsumed)
	})
}

func TestTopicCreatedAfterJoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := memory.NewLog()
		m := l.Member("g", []string{"later"})
		rec := newRecorder()
		r := consume(m, rec.serve("a"))
		synctest.Wait()
		assert.Empty(t, m.Assigned())
		require.NoError(t, l.CreateTopic("later", 2))
		produceN(t, l, "later", 20)
		synctest.Wait()
		assert.Len(t, m.Assigned(), 2)
		assert.Empty(t, rec.missing(t, l, "later"))
		require.NoError(t, r.stop())
		rec.check(t)
	})
}

// A serve call that returns on its own ends its claim; the partition is
// not granted again until the next rebalance.
func TestEarlyReturnParksThePartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := memory.NewLog()
		require.NoError(t, l.CreateTopic("t", 1))
		calls := 0
		a := l.Member("g", []string{"t"})
		ra := consume(a, func(orderly.Claim) { calls++ })
		synctest.Wait()
		assert.Equal(t, 1, calls)
		assert.Empty(t, a.Assigned())

		rb := consume(l.Member("g", []string{"other"}), func(orderly.Claim) {})
		synctest.Wait()
		assert.Equal(t, 2, calls, "a rebalance grants it again")
		require.NoError(t, ra.stop())
		require.NoError(t, rb.stop())
	})
}

// Members subscribed to different topics share only what they subscribe to.
func TestMixedSubscriptions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := memory.NewLog()
		require.NoError(t, l.CreateTopic("x", 2))
		require.NoError(t, l.CreateTopic("y", 2))
		a := l.Member("g", []string{"x", "y", "x"})
		b := l.Member("g", []string{"y"})
		ra := consume(a, func(c orderly.Claim) { <-c.Revoked() })
		synctest.Wait()
		rb := consume(b, func(c orderly.Claim) { <-c.Revoked() })
		synctest.Wait()
		assert.Equal(t, []memory.TopicPartition{tp("x", 0), tp("x", 1), tp("y", 0)}, a.Assigned())
		assert.Equal(t, []memory.TopicPartition{tp("y", 1)}, b.Assigned())
		require.NoError(t, ra.stop())
		synctest.Wait()
		assert.Equal(t, []memory.TopicPartition{tp("y", 0), tp("y", 1)}, b.Assigned())
		require.NoError(t, rb.stop())
	})
}
