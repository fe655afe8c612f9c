package orderlysarama

import (
	"context"
	"errors"
	"fmt"

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

// commit stores (next, metadata) for the partition with one OffsetCommit
// to the group coordinator, as the session's member and generation: the
// request sarama's offset manager builds, sent directly so that its
// per-partition result is known when commit returns (session.Commit
// reports errors only later, on the group's Errors channel, and drops them
// when that channel is full).
//
// Retriable errors (coordinator moving or loading, a rebalance completing,
// a generation that changed under the request, a broken connection) are
// retried Consumer.Offsets.Retry.Max times, Metadata.Retry.Backoff apart,
// while ctx allows; the generation and member id are read again for each
// attempt. A member fenced out of the group gets an error wrapping
// ErrFenced.
func (c *claim) commit(ctx context.Context, next int64, metadata string) error {
	h := c.h
	cfg := h.src.cfg
	var last error
	for attempt := 0; attempt <= cfg.Consumer.Offsets.Retry.Max; attempt++ {
		if attempt > 0 && !sleep(ctx, cfg.Metadata.Retry.Backoff) {
			break
		}
		if c.ended.Load() {
			return ErrClaimEnded
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
		coordinator, err := h.client.Coordinator(h.src.group)
		if err != nil {
			last = err
			_ = h.client.RefreshCoordinator(h.src.group)
			continue
		}
		resp, err := coordinator.CommitOffset(req)
		if err != nil {
			last = err
			_ = coordinator.Close() // sarama reopens it on the next request
			_ = h.client.RefreshCoordinator(h.src.group)
			continue
		}
		kerr, ok := resp.Errors[c.topic][c.partition]
		if !ok {
			last = sarama.ErrIncompleteResponse
			continue
		}
		switch kerr {
		case sarama.ErrNoError:
			return nil
		case sarama.ErrNotCoordinatorForConsumer, sarama.ErrConsumerCoordinatorNotAvailable, sarama.ErrOffsetsLoadInProgress:
			last = kerr
			_ = h.client.RefreshCoordinator(h.src.group)
		case sarama.ErrRebalanceInProgress:
			last = kerr // a cooperative rejoin is completing: the generation changes next
		case sarama.ErrIllegalGeneration, sarama.ErrUnknownMemberId:
			if c.sess.GenerationID() == generation {
				return fmt.Errorf("commit %s/%d at %d: %w: %w", c.topic, c.partition, next, ErrFenced, kerr)
			}
			last = kerr // a cooperative rebalance moved the session on: retry in the new generation
		case sarama.ErrFencedInstancedId:
			return fmt.Errorf("commit %s/%d at %d: %w: %w", c.topic, c.partition, next, ErrFenced, kerr)
		default:
			return fmt.Errorf("commit %s/%d at %d: %w", c.topic, c.partition, next, kerr)
		}
	}
	if last == nil {
		last = ctx.Err()
	}
	return fmt.Errorf("commit %s/%d at %d: %w", c.topic, c.partition, next, last)
}
