package orderlysarama

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/IBM/sarama"

	"github.com/orderly-go/orderly"
)

var _ orderly.BatchCommitter = (*Source)(nil)

// CommitBatch implements orderly.BatchCommitter: the engine's periodic
// commits of every partition that moved go out as one OffsetCommit request
// per group session (a member's claims share one session, except across
// an eager rebalance) instead of one per partition.
//
// Each error means what the claim's Commit would have returned. The
// request is sent as the session's member and generation; a partition the
// coordinator rejects (a rejoin under way, a coordinator moving) and every
// partition of a request that failed as a whole take Commit's path for
// that claim alone: its generation waits and retries. Commits of one claim
// stay in order with its other commits, abandoned ones included: the
// batch holds each claim's slot for in-flight requests (see Commit) until
// its request completes. A claim this source did not grant is committed
// with its own Commit.
func (s *Source) CommitBatch(ctx context.Context, commits []orderly.ClaimCommit) []error {
	errs := make([]error, len(commits))
	bySession := make(map[sarama.ConsumerGroupSession][]int)
	var sessions []sarama.ConsumerGroupSession // in first-seen order
	for i, cc := range commits {
		c, ok := cc.Claim.(*claim)
		switch {
		case cc.Claim == nil:
			errs[i] = invalid("CommitBatch: nil claim")
		case !ok || c.h.src != s:
			errs[i] = cc.Claim.Commit(ctx, cc.Next, cc.Metadata)
		default:
			if _, seen := bySession[c.sess]; !seen {
				sessions = append(sessions, c.sess)
			}
			bySession[c.sess] = append(bySession[c.sess], i)
		}
	}
	for _, sess := range sessions {
		s.commitSession(ctx, sess, commits, bySession[sess], errs)
	}
	return errs
}

// commitSession commits commits[at...], all of claims of sess, setting
// errs at the same indexes.
func (s *Source) commitSession(ctx context.Context, sess sarama.ConsumerGroupSession, commits []orderly.ClaimCommit, at []int, errs []error) {
	one := func(i int) {
		cc := commits[i]
		errs[i] = cc.Claim.Commit(ctx, cc.Next, cc.Metadata)
	}
	// One request per session needs two claims or more, each once.
	claims := make([]*claim, 0, len(at))
	for _, i := range at {
		c := commits[i].Claim.(*claim)
		if slices.Contains(claims, c) {
			for _, i := range at {
				one(i)
			}
			return
		}
		claims = append(claims, c)
	}
	if len(at) == 1 {
		one(at[0])
		return
	}
	if err := ctx.Err(); err != nil {
		for _, i := range at {
			errs[i] = err
		}
		return
	}

	// Take every claim's in-flight slot, in one order (topic, partition)
	// so that concurrent batches cannot deadlock; a claim that has ended
	// is answered at once.
	order := slices.Clone(at)
	slices.SortFunc(order, func(a, b int) int {
		ca, cb := commits[a].Claim.(*claim), commits[b].Claim.(*claim)
		return cmp.Or(cmp.Compare(ca.topic, cb.topic), cmp.Compare(ca.partition, cb.partition))
	})
	var (
		held  []int    // indexes of the claims whose slot is taken
		slots []*claim // the same claims: the request's goroutine frees them without reading commits, the caller's
	)
	release := func(cs []*claim) {
		for _, c := range cs {
			<-c.sending
		}
	}
	for _, i := range order {
		c := commits[i].Claim.(*claim)
		if c.ended.Load() {
			errs[i] = ErrClaimEnded
			continue
		}
		select {
		case c.sending <- struct{}{}:
			held = append(held, i)
			slots = append(slots, c)
		case <-ctx.Done():
			release(slots)
			for _, i := range order {
				if errs[i] == nil {
					errs[i] = ctx.Err()
				}
			}
			return
		}
	}
	if len(held) == 0 {
		return
	}

	h := claims[0].h
	cfg := s.cfg
	req := sarama.NewOffsetCommitRequest(cfg, s.group)
	req.ConsumerGroupGeneration = sess.GenerationID()
	req.ConsumerID = sess.MemberID()
	if id := cfg.Consumer.Group.InstanceId; id != "" && req.Version >= 7 {
		req.GroupInstanceId = &id
	}
	for _, i := range held {
		c := commits[i].Claim.(*claim)
		// -1: no leader epoch, as in commit.
		req.AddBlockWithLeaderEpoch(c.topic, c.partition, commits[i].Next, -1, 0, commits[i].Metadata)
	}
	type result struct {
		resp *sarama.OffsetCommitResponse
		err  error
	}
	done := make(chan result, 1)
	// Owned by commitSession, or by no one once abandoned at ctx's
	// deadline: it ends with sarama's request (bounded by the Net
	// timeouts, or by closing the client) and frees the claims' slots.
	go func() {
		defer release(slots)
		resp, err := h.offsetCommit(req)
		done <- result{resp, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		select {
		case r = <-done:
		default:
			for _, i := range held {
				errs[i] = ctx.Err()
			}
			return
		}
	}

	// Stored partitions are done; the others go through Commit alone.
	var again []int
	for _, i := range held {
		c := commits[i].Claim.(*claim)
		if r.err == nil && r.resp.Errors[c.topic][c.partition] == sarama.ErrNoError {
			continue
		}
		again = append(again, i)
	}
	var wg sync.WaitGroup
	for _, i := range again {
		wg.Go(func() { one(i) })
	}
	wg.Wait()
}
