package orderlykgo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/orderly-go/orderly"
)

// Commit retries: partition errors that a retry can fix (a rebalance
// completing, the coordinator moving or loading) are retried up to
// commitAttempts times in all, the wait doubling from commitBackoff to
// commitMaxBackoff, while ctx allows. Request errors are not retried here:
// kgo has already retried them (kgo.RequestRetries, kgo.RetryTimeout).
const (
	commitAttempts   = 8
	commitBackoff    = 50 * time.Millisecond
	commitMaxBackoff = time.Second
)

// commitRequest is one claim's position to store and, once commit
// returns, its outcome.
type commitRequest struct {
	c        *claim
	next     int64
	metadata string
	err      error
	done     bool
}

// CommitBatch stores the positions of several claims with one
// OffsetCommit request (the partitions that still need it are retried
// together), making the Source an orderly.BatchCommitter. It returns one
// error per commit, in order, each with the meaning Claim.Commit gives it.
// A claim this Source did not grant (one wrapped by a caller, say) is
// committed through its own Commit method instead. CommitBatch blocks
// until every commit is answered or ctx is done and is safe for
// concurrent use.
func (s *Source) CommitBatch(ctx context.Context, commits []orderly.ClaimCommit) []error {
	errs := make([]error, len(commits))
	reqs := make([]*commitRequest, 0, len(commits))
	at := make([]int, 0, len(commits))
	for i, cc := range commits {
		c, ok := cc.Claim.(*claim)
		if !ok || c.src != s {
			if cc.Claim == nil {
				errs[i] = invalid("CommitBatch: nil claim")
				continue
			}
			errs[i] = cc.Claim.Commit(ctx, cc.Next, cc.Metadata)
			continue
		}
		reqs = append(reqs, &commitRequest{c: c, next: cc.Next, metadata: cc.Metadata})
		at = append(at, i)
	}
	s.commit(ctx, reqs)
	for k, r := range reqs {
		errs[at[k]] = r.err
	}
	return errs
}

// commit stores each request's position with kgo's CommitOffsetsSync, the
// metadata set on the request by kgo.PreCommitFnContext (kgo commits its
// member id as metadata otherwise). kgo builds the request as the member's
// current id and generation and blocks it while a join and sync is in
// flight, which keeps it from failing with REBALANCE_IN_PROGRESS.
//
// A fenced or ended claim sends nothing. Per partition, the answer decides:
// none means stored; ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID is retried if
// kgo's generation moved on since the request was built (a cooperative
// rebalance completed) and means ErrFenced otherwise, as does
// FENCED_INSTANCE_ID; coordinator and rebalance errors are retried (see
// commitAttempts); anything else is returned. Every request ends with its
// err set.
func (s *Source) commit(ctx context.Context, reqs []*commitRequest) {
	if len(reqs) == 0 {
		return
	}
	// One claim's commits stay in order: hold each claim's commitMu, in
	// one order, for the whole exchange.
	locked := make([]*claim, 0, len(reqs))
	for _, r := range reqs {
		if !slices.Contains(locked, r.c) {
			locked = append(locked, r.c)
		}
	}
	slices.SortFunc(locked, claimOrder)
	for _, c := range locked {
		c.commitMu.Lock()
		defer c.commitMu.Unlock()
	}

	backoff := commitBackoff
	for attempt := 1; ; attempt++ {
		pending := reqs[:0:0]
		for _, r := range reqs {
			switch {
			case r.done:
			case r.c.ended.Load():
				r.err, r.done = ErrClaimEnded, true
			case r.c.fenced.Load():
				r.err, r.done = fmt.Errorf("commit %s/%d at %d: %w: partition lost", r.c.topic, r.c.partition, r.next, ErrFenced), true
			case ctx.Err() != nil:
				r.err, r.done = ctx.Err(), true
			default:
				pending = append(pending, r)
			}
		}
		if len(pending) == 0 {
			return
		}
		cl := pending[0].c.cl
		codes, generation, err := commitOnce(ctx, cl, pending)
		if err != nil {
			for _, r := range pending {
				r.err, r.done = fmt.Errorf("commit %s/%d at %d: %w", r.c.topic, r.c.partition, r.next, err), true
			}
			return
		}
		_, current := cl.GroupMetadata()
		retry := false
		for _, r := range pending {
			code, ok := codes[topicPartition{r.c.topic, r.c.partition}]
			if !ok {
				r.err = fmt.Errorf("commit %s/%d at %d: no answer for the partition", r.c.topic, r.c.partition, r.next)
				retry = true
				continue
			}
			kerrv := kerr.ErrorForCode(code)
			switch {
			case kerrv == nil:
				r.err, r.done = nil, true
			case errors.Is(kerrv, kerr.IllegalGeneration), errors.Is(kerrv, kerr.UnknownMemberID):
				if current == generation {
					r.err, r.done = fmt.Errorf("commit %s/%d at %d: %w: %w", r.c.topic, r.c.partition, r.next, ErrFenced, kerrv), true
					continue
				}
				r.err, retry = kerrv, true // a rebalance moved the member on: commit as the new generation
			case errors.Is(kerrv, kerr.FencedInstanceID):
				r.err, r.done = fmt.Errorf("commit %s/%d at %d: %w: %w", r.c.topic, r.c.partition, r.next, ErrFenced, kerrv), true
			case errors.Is(kerrv, kerr.RebalanceInProgress), errors.Is(kerrv, kerr.NotCoordinator),
				errors.Is(kerrv, kerr.CoordinatorNotAvailable), errors.Is(kerrv, kerr.CoordinatorLoadInProgress),
				errors.Is(kerrv, kerr.RequestTimedOut):
				r.err, retry = kerrv, true
			default:
				r.err, r.done = fmt.Errorf("commit %s/%d at %d: %w", r.c.topic, r.c.partition, r.next, kerrv), true
			}
		}
		if !retry {
			return
		}
		if attempt == commitAttempts || !sleep(ctx, backoff) {
			for _, r := range pending {
				if !r.done {
					if ctx.Err() != nil {
						r.err = ctx.Err()
					} else {
						r.err = fmt.Errorf("commit %s/%d at %d after %d attempts: %w", r.c.topic, r.c.partition, r.next, attempt, r.err)
					}
					r.done = true
				}
			}
			return
		}
		backoff = min(2*backoff, commitMaxBackoff)
	}
}

// commitOnce sends one OffsetCommit for reqs and returns each partition's
// error code and the generation the request was sent as.
func commitOnce(ctx context.Context, cl *kgo.Client, reqs []*commitRequest) (map[topicPartition]int16, int32, error) {
	offsets := make(map[string]map[int32]kgo.EpochOffset)
	metadata := make(map[topicPartition]string, len(reqs))
	for _, r := range reqs {
		ps := offsets[r.c.topic]
		if ps == nil {
			ps = make(map[int32]kgo.EpochOffset)
			offsets[r.c.topic] = ps
		}
		ps[r.c.partition] = kgo.EpochOffset{Epoch: -1, Offset: r.next}
		metadata[topicPartition{r.c.topic, r.c.partition}] = r.metadata
	}
	withMetadata := kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			t := &req.Topics[i]
			for j := range t.Partitions {
				p := &t.Partitions[j]
				m := metadata[topicPartition{t.Topic, p.Partition}]
				p.Metadata = &m
			}
		}
		return nil
	})
	var (
		codes      map[topicPartition]int16
		generation int32
		rerr       error
	)
	cl.CommitOffsetsSync(withMetadata, offsets, func(_ *kgo.Client, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		generation = req.Generation
		if err != nil {
			rerr = err
			return
		}
		// v10+ answers name topics by ID only.
		names := make(map[[16]byte]string, len(req.Topics))
		for _, t := range req.Topics {
			names[t.TopicID] = t.Topic
		}
		codes = make(map[topicPartition]int16, len(reqs))
		for _, t := range resp.Topics {
			name := t.Topic
			if name == "" {
				name = names[t.TopicID]
			}
			for _, p := range t.Partitions {
				codes[topicPartition{name, p.Partition}] = p.ErrorCode
			}
		}
	})
	if rerr != nil {
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		return nil, 0, rerr
	}
	return codes, generation, nil
}

// claimOrder orders claims by topic and partition: the order commit locks
// them in.
func claimOrder(a, b *claim) int {
	return cmp.Or(cmp.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
}

// sleep waits for d or ctx, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
