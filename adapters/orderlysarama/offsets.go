package orderlysarama

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// fetchCommitted asks the group coordinator for the partition's committed
// offset and metadata (an OffsetFetch, as sarama's offset manager sends
// when a claim starts; sarama keeps the metadata to itself). It retries
// coordinator errors Metadata.Retry.Max times, Metadata.Retry.Backoff
// apart, and gives up early when ctx is done.
func (h *handler) fetchCommitted(ctx context.Context, topic string, partition int32) (int64, string, error) {
	cfg := h.src.cfg
	var last error
	for attempt := 0; attempt <= cfg.Metadata.Retry.Max; attempt++ {
		if attempt > 0 && !sleep(ctx, cfg.Metadata.Retry.Backoff) {
			break
		}
		coordinator, err := h.client.Coordinator(h.src.group)
		if err != nil {
			last = err
			_ = h.client.RefreshCoordinator(h.src.group)
			continue
		}
		req := sarama.NewOffsetFetchRequest(cfg.Version, h.src.group, map[string][]int32{topic: {partition}})
		resp, err := coordinator.FetchOffset(req)
		if err != nil {
			last = err
			_ = h.client.RefreshCoordinator(h.src.group)
			continue
		}
		block := resp.GetBlock(topic, partition)
		if block == nil {
			last = fmt.Errorf("no offset for %s/%d in the response: %w", topic, partition, responseErr(resp))
			_ = h.client.RefreshCoordinator(h.src.group)
			continue
		}
		if !errors.Is(block.Err, sarama.ErrNoError) {
			last = block.Err
			_ = h.client.RefreshCoordinator(h.src.group)
			continue
		}
		return block.Offset, block.Metadata, nil
	}
	if last == nil {
		last = ctx.Err()
	}
	return 0, "", last
}

// responseErr is an OffsetFetch response's top-level error, from the group
// block on v8 and later.
func responseErr(resp *sarama.OffsetFetchResponse) error {
	if len(resp.Groups) > 0 && !errors.Is(resp.Groups[0].Err, sarama.ErrNoError) {
		return resp.Groups[0].Err
	}
	if !errors.Is(resp.Err, sarama.ErrNoError) {
		return resp.Err
	}
	return sarama.ErrIncompleteResponse
}

// generationPoll is how often a commit waiting for the session to reach
// the coordinator's generation looks again: sarama announces no new
// generation, it only updates the session's.
const generationPoll = 5 * time.Millisecond

// commit stores (next, metadata) for the partition with one OffsetCommit
// to the group coordinator, as the session's member and generation: the
// request sarama's offset manager builds, sent directly so that its
// per-partition result is known when commit returns (session.Commit
// reports errors only later, on the group's Errors channel, and drops them
// when that channel is full).
//
// Generations. The coordinator accepts a commit from a member of its
// current generation, in the Stable and PreparingRebalance states, and
// answers REBALANCE_IN_PROGRESS in CompletingRebalance (between the
// JoinGroup and the leader's SyncGroup) and ILLEGAL_GENERATION to any
// other generation. sarama moves a cooperative session to the next
// generation only when its own SyncGroup has returned, and revokes
// partitions after that, before joining again: so a revoked partition's
// final commit carries the new generation, which is right, but a commit
// sent while the member is rejoining carries the old one, which the
// coordinator rejects as soon as every member has joined. sarama's offset
// manager holds its commits back during a rejoin; this commit instead
// waits, when the coordinator rejects its generation while the session
// lives, until the session reaches the next generation, and sends again
// as a member of it. The coordinator does not check which member owns a
// partition, and sarama hands a revoked partition to its next owner only
// in the generation after the one that revoked it, which this member must
// join first: the commit cannot land on the next owner's claim.
//
// Other retriable errors (coordinator moving or loading, a broken
// connection) are retried Consumer.Offsets.Retry.Max times,
// Metadata.Retry.Backoff apart. A member fenced out of the group (its
// generation rejected and its session over) gets an error wrapping
// ErrFenced.
//
// Every step honours ctx: sarama's requests take no context, so each runs
// on a goroutine of its own and commit returns at ctx's deadline even if
// the coordinator never answers; see send.
func (c *claim) commit(ctx context.Context, next int64, metadata string) error {
	h := c.h
	cfg := h.src.cfg
	fail := func(err error) error { return fmt.Errorf("commit %s/%d at %d: %w", c.topic, c.partition, next, err) }
	var last error
	failures := 0
	for {
		if c.ended.Load() {
			return ErrClaimEnded
		}
		if err := ctx.Err(); err != nil {
			return fail(withLast(err, last))
		}
		generation := c.sess.GenerationID()
		req := sarama.NewOffsetCommitRequest(cfg, h.src.group)
		req.ConsumerGroupGeneration = generation
		req.ConsumerID = c.sess.MemberID()
		if id := cfg.Consumer.Group.InstanceId; id != "" && req.Version >= 7 {
			req.GroupInstanceId = &id
		}
		// -1: no leader epoch, as sarama commits before it has fetched one.
		req.AddBlockWithLeaderEpoch(c.topic, c.partition, next, -1, 0, metadata)
		resp, err := c.send(ctx, req)
		if err != nil && ctx.Err() != nil {
			return fail(withLast(ctx.Err(), last))
		}
		if err == nil {
			kerr, ok := resp.Errors[c.topic][c.partition]
			switch {
			case !ok:
				err = sarama.ErrIncompleteResponse
			case kerr == sarama.ErrNoError:
				return nil
			case kerr == sarama.ErrIllegalGeneration, kerr == sarama.ErrUnknownMemberId, kerr == sarama.ErrRebalanceInProgress:
				// The coordinator is in a generation the session has not
				// reached: wait for the rejoin under way to complete.
				last = kerr
				switch c.awaitGeneration(ctx, generation) {
				case generationMoved, generationWaited:
					continue
				case generationOver:
					if kerr == sarama.ErrRebalanceInProgress {
						return fail(kerr)
					}
					return fail(fmt.Errorf("%w: %w", ErrFenced, kerr))
				case generationClaimEnded:
					return ErrClaimEnded
				}
				return fail(withLast(ctx.Err(), last))
			case kerr == sarama.ErrFencedInstancedId:
				return fail(fmt.Errorf("%w: %w", ErrFenced, kerr))
			case kerr == sarama.ErrNotCoordinatorForConsumer, kerr == sarama.ErrConsumerCoordinatorNotAvailable, kerr == sarama.ErrOffsetsLoadInProgress:
				err = kerr
				c.bounded(ctx, func() { _ = h.client.RefreshCoordinator(h.src.group) })
			default:
				return fail(kerr)
			}
		}
		last = err
		failures++
		if failures > cfg.Consumer.Offsets.Retry.Max {
			return fail(last)
		}
		if !sleep(ctx, cfg.Metadata.Retry.Backoff) {
			return fail(withLast(ctx.Err(), last))
		}
	}
}

// withLast joins ctx's error with the last error seen before it, if any.
func withLast(ctxErr, last error) error {
	if last == nil {
		return ctxErr
	}
	return fmt.Errorf("%w (last error: %w)", ctxErr, last)
}

// What awaitGeneration saw.
const (
	generationMoved      = iota // the session is in a later generation: send again in it
	generationWaited            // a heartbeat interval passed unchanged: send again
	generationOver              // the session ended in this generation: the member is out of the group
	generationClaimEnded        // serve returned
	generationCtxDone           // ctx is done
)

// awaitGeneration waits until the session has left generation (a
// cooperative rejoin completed), the session ends without leaving it, the
// claim ends, ctx is done, or a heartbeat interval has passed. sarama's
// heartbeat ends the session of a member the coordinator no longer counts,
// so a generation that stays rejected without the session ending means a
// rejoin under way; sending again each heartbeat interval keeps the wait
// bounded by the coordinator's own answers.
func (c *claim) awaitGeneration(ctx context.Context, generation int32) int {
	timeout := time.NewTimer(c.h.src.cfg.Consumer.Group.Heartbeat.Interval)
	defer timeout.Stop()
	tick := time.NewTicker(generationPoll)
	defer tick.Stop()
	for {
		if c.sess.GenerationID() != generation {
			return generationMoved
		}
		select {
		case <-c.sess.Context().Done():
			if c.sess.GenerationID() != generation {
				return generationMoved
			}
			return generationOver
		default:
		}
		if c.ended.Load() {
			return generationClaimEnded
		}
		select {
		case <-ctx.Done():
			return generationCtxDone
		case <-c.sess.Context().Done():
		case <-timeout.C:
			return generationWaited
		case <-tick.C:
		}
	}
}

// send sends req to the group coordinator and returns its response, or
// ctx's error as soon as ctx is done.
//
// sarama's broker requests take no context (a request waits for its
// answer up to Net.ReadTimeout), so the request runs on a goroutine of its
// own, which send abandons at ctx's deadline. The abandoned request may
// still be stored; to keep the claim's commits in order, one request of a
// claim is in flight at a time: the next send waits (within its own ctx)
// until the abandoned one has completed, and so reaches the coordinator
// after it. sarama sends a broker's requests one after the other on one
// connection, so the member's later JoinGroup or LeaveGroup, and thus any
// later owner of the partition, also come after it.
func (c *claim) send(ctx context.Context, req *sarama.OffsetCommitRequest) (*sarama.OffsetCommitResponse, error) {
	select {
	case c.sending <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	type result struct {
		resp *sarama.OffsetCommitResponse
		err  error
	}
	done := make(chan result, 1)
	// Owned by send, or by no one once abandoned: it ends with sarama's
	// request (bounded by the Net timeouts, or by closing the client) and
	// frees the claim's sending slot.
	go func() {
		defer func() { <-c.sending }()
		resp, err := c.h.offsetCommit(req)
		done <- result{resp, err}
	}()
	select {
	case r := <-done:
		return r.resp, r.err
	case <-ctx.Done():
		select {
		case r := <-done: // answered meanwhile: report it
			return r.resp, r.err
		default:
			return nil, ctx.Err()
		}
	}
}

// offsetCommit sends req to the group coordinator and waits for its
// answer (up to Net.ReadTimeout); a failed request refreshes the
// coordinator.
func (h *handler) offsetCommit(req *sarama.OffsetCommitRequest) (*sarama.OffsetCommitResponse, error) {
	coordinator, err := h.client.Coordinator(h.src.group)
	if err != nil {
		_ = h.client.RefreshCoordinator(h.src.group)
		return nil, err
	}
	resp, err := coordinator.CommitOffset(req)
	if err != nil {
		_ = coordinator.Close() // sarama reopens it on the next request
		_ = h.client.RefreshCoordinator(h.src.group)
	}
	return resp, err
}

// bounded runs f, a sarama call that takes no context, on a goroutine of
// its own and waits for it until ctx is done.
func (c *claim) bounded(ctx context.Context, f func()) {
	done := make(chan struct{})
	// Owned by bounded, or by no one once abandoned: it ends with f.
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
